"""The channel between the pipeline's process and the API's child process (``api/process.py``).

One connected Unix socket, newline-delimited JSON frames, bus messages in the bus codec (only
registered domain types decode). The API end (``BridgeBus``) is the API's ``Bus``: it publishes what
the API's transactions put in their outbox, and listens to the live topics for server-sent events;
it also asks the pipeline for its readiness and liveness (``RemoteHealth``), for the store's
availability as its writes see it (``RemoteStoreHealth``) and for its metrics, and has it execute Safe
transactions whose threshold is met (the API's process holds no guardian key; the pipeline's
relayer owns the key's nonces and tracks the receipt). The
pipeline end (``BridgeServer``) publishes on the real bus only the topics the API writes to
(``API_TOPICS``: never findings, so a compromised API process cannot make the responder act),
relays the live topics, and answers the questions. Either end closing ends the other's reads: an
API process whose pipeline died exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from breakglass.bus import Bus, Topics
from breakglass.bus.codec import CodecError, decode, encode
from breakglass.errors import BreakglassError, ResponseError
from breakglass.health import CheckResult, Health, Report
from breakglass.logs import get_logger
from breakglass.messages.actions import ActionEvent
from breakglass.respond.safe import SafeService
from breakglass.store.health import StoreHealth

__all__ = ["API_TOPICS", "BridgeBus", "BridgeServer", "RemoteHealth", "RemoteStoreHealth", "exposition"]

log = get_logger(__name__)

API_TOPICS = frozenset({Topics.ALERTS, Topics.INCIDENTS, Topics.TIMELINE, Topics.ACTIONS})
"""What the API process may publish (its transactions' outbox); anything else is refused."""
LINE_LIMIT = 64 * 1024 * 1024
"""Largest frame (a metrics exposition of a big deployment fits many times over)."""
API_METRICS = "breakglass_api_"
"""Metric families the API process owns (its requests); the pipeline's process owns every other one,
``breakglass_serve_api_deaths`` included."""


def exposition(keep: Callable[[str], bool]) -> bytes:
    """This process's metrics in the Prometheus text format, only the families ``keep`` accepts."""

    class _Only:
        def collect(self) -> list[Any]:
            return [family for family in REGISTRY.collect() if keep(family.name)]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Only())
    return generate_latest(registry)


def _frame(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


class _Done:
    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class BridgeServer:
    """The pipeline's end: serves one API process on ``sock`` until it goes away."""

    def __init__(
        self, bus: Bus, health: Health, store: StoreHealth | None = None, safes: SafeService | None = None
    ) -> None:
        self.bus = bus
        self.health = health
        self.store = store or StoreHealth()
        self.safes = safes
        """The responder's Safe service: it executes Safe transactions for the API (one key, one nonce)."""
        self.listened = False
        """An API process served by this bridge told it listened on its address."""
        self.listening = False
        """The API process served now told it listened (reset for each process)."""
        self.last_heard = time.monotonic()
        """``time.monotonic()`` of the last frame from the API process served now."""

    async def serve(self, sock: socket.socket) -> None:
        self.listening, self.last_heard = False, time.monotonic()
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
        lock = asyncio.Lock()
        pumps: dict[str, asyncio.Task[None]] = {}

        async def send(frame: dict[str, Any]) -> None:
            async with lock:
                writer.write(_frame(frame))
                await writer.drain()

        async def relay(topic: str) -> None:
            delay = 0.1
            while True:  # a listener that fails is replaced, as the API's own hub does (api/events.py)
                try:
                    async with contextlib.aclosing(self.bus.listen(topic)) as messages:
                        async for message in messages:
                            delay = 0.1
                            with contextlib.suppress(CodecError):
                                frame = {"op": "event", "topic": topic, "message": encode(message).decode()}
                                await send(frame)
                    return  # the bus closed
                except (ConnectionError, OSError):
                    return  # the API process is gone
                except Exception as exc:
                    log.error("api.bridge_listener_failed", topic=topic, error=type(exc).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

        try:
            while line := await reader.readline():
                self.last_heard = time.monotonic()
                try:
                    await self._answer(json.loads(line), send, relay, pumps)
                except (ValueError, KeyError, TypeError) as exc:  # one bad frame, not the channel
                    log.warning("api.bridge_bad_frame", error=type(exc).__name__)
        except (ConnectionError, OSError):
            pass  # the API process died: its supervisor starts another
        finally:
            for task in pumps.values():
                task.cancel()
            for task in pumps.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(
        self,
        frame: dict[str, Any],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        relay: Callable[[str], Coroutine[Any, Any, None]],
        pumps: dict[str, asyncio.Task[None]],
    ) -> None:
        op = frame["op"]
        if op == "publish":
            topic = str(frame["topic"])
            if topic not in API_TOPICS:
                log.warning("api.bridge_refused_publish", topic=topic[:64])
                return
            dedup = frame.get("dedup")
            message = decode(str(frame["message"]).encode())
            await self.bus.publish(topic, message, dedup=None if dedup is None else str(dedup))
        elif op == "listen":
            topic = str(frame["topic"])
            if topic not in pumps:
                pumps[topic] = asyncio.create_task(relay(topic), name=f"api-bridge-{topic}")
        elif op in ("ready", "live"):
            report = await (self.health.readiness() if op == "ready" else self.health.liveness())
            await send({"op": "reply", "id": frame["id"], "report": report.as_dict()})
        elif op == "alive":
            pass  # its arrival is the news (``last_heard``)
        elif op == "listening":
            self.listened = self.listening = True
            log.info("api.process_listening")
        elif op == "safe_execute":
            await send({"op": "reply", "id": frame["id"], **await self._execute(str(frame["safe_tx_hash"]))})
        elif op == "store":
            status = {"available": self.store.available, "since": self.store.since,
                      "backlog": self.store.backlog()}  # fmt: skip
            await send({"op": "reply", "id": frame["id"], **status})
        elif op == "metrics":
            text = exposition(lambda name: not name.startswith(API_METRICS)).decode()
            await send({"op": "reply", "id": frame["id"], "text": text})
        else:
            raise ValueError(op)

    async def _execute(self, safe_tx_hash: str) -> dict[str, Any]:
        if self.safes is None:
            return {"error": "no guardian relayer configured to submit Safe executions"}
        try:
            event = await self.safes.execute_if_ready(safe_tx_hash)
        except ResponseError as exc:  # the API says why it was not sent
            return {"error": str(exc)}
        return {"event": None if event is None else encode(event).decode()}


class BridgeBus:
    """The API process's ``Bus``: ``await connect(sock)``, then ``run()`` reads until the pipeline's
    end closes (``lost`` is set then)."""

    def __init__(self, *, listener_buffer: int = 10_000, timeout: float = 10.0) -> None:
        self._listener_buffer = listener_buffer
        self._timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._lock = asyncio.Lock()
        self._inboxes: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        self._asked: set[str] = set()
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.lost = asyncio.Event()
        """Set when the pipeline's end of the channel is gone."""

    async def connect(self, sock: socket.socket) -> BridgeBus:
        self._reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
        return self

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._writer is None or self.lost.is_set():
            raise BreakglassError("the pipeline's process is gone", recoverable=True)
        async with self._lock:
            self._writer.write(_frame(frame))
            await self._writer.drain()

    async def run(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                frame = json.loads(line)
                if frame["op"] == "event":
                    message = decode(str(frame["message"]).encode())
                    for inbox in list(self._inboxes.get(frame["topic"], ())):
                        if inbox.full():  # a listener that falls behind loses its oldest message
                            inbox.get_nowait()
                        inbox.put_nowait(message)
                elif frame["op"] == "reply":
                    future = self._replies.pop(int(frame["id"]), None)
                    if future is not None and not future.done():
                        future.set_result(frame)
        except (ConnectionError, OSError, ValueError) as exc:
            log.error("api.bridge_failed", error=type(exc).__name__)
        finally:
            self.lost.set()
            for inboxes in self._inboxes.values():
                for inbox in inboxes:
                    with contextlib.suppress(asyncio.QueueFull):
                        inbox.put_nowait(_END)
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(BreakglassError("the pipeline's process is gone", recoverable=True))

    async def ask(self, op: str, *, within: float | None = None, **fields: Any) -> dict[str, Any]:
        """A question to the pipeline's process (``ready``, ``live``, ``store``, ``metrics``,
        ``safe_execute``) and its answer."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        try:
            await self._send({**fields, "op": op, "id": ident})
            async with asyncio.timeout(within or self._timeout):
                return await future  # the timeout cancels the future
        finally:
            self._replies.pop(ident, None)

    async def execute_safe(self, safe_tx_hash: str) -> ActionEvent | None:
        """``SafeService.execute_if_ready`` in the pipeline's process, whose relayer holds the key."""
        answer = await self.ask("safe_execute", within=120, safe_tx_hash=safe_tx_hash)  # a send, priced
        if "error" in answer:
            raise ResponseError(str(answer["error"]))
        event = answer["event"]
        return None if event is None else decode(str(event).encode())

    async def alive(self) -> None:
        """A heartbeat: the API process's event loop turns (``api/process.py`` kills a silent one)."""
        await self._send({"op": "alive"})

    async def listening_on(self) -> None:
        """Tell the pipeline's process that the HTTP server listens (a later death is a crash)."""
        await self._send({"op": "listening"})

    async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
        frame = {"op": "publish", "topic": topic, "message": encode(message).decode()}
        await self._send(frame if dedup is None else {**frame, "dedup": dedup})

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        raise BreakglassError(
            "the API process reads no durable subscription: its stages run in the pipeline's"
        )

    def settled(self, topic: str) -> Awaitable[None]:
        return _Done()

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        inbox: asyncio.Queue[Any] = asyncio.Queue(self._listener_buffer)
        self._inboxes[topic].add(inbox)

        async def messages() -> AsyncGenerator[Any, None]:
            try:
                if topic not in self._asked:
                    self._asked.add(topic)
                    await self._send({"op": "listen", "topic": topic})
                while (message := await inbox.get()) is not _END:
                    yield message
            finally:
                self._inboxes[topic].discard(inbox)

        return messages()

    def listening(self, topic: str) -> int:
        return len(self._inboxes[topic])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None


_END = object()


def _result(text: str) -> CheckResult:
    word, _, detail = text.partition(": ")
    return CheckResult(word == "ok", detail)


class RemoteHealth(Health):
    """The API process's ``app.health``: the pipeline's checks, asked over the bridge. The pipeline
    unreachable is a failed check of its own, ``pipeline``."""

    def __init__(self, bus: BridgeBus) -> None:
        super().__init__()
        self._bus = bus

    async def readiness(self) -> Report:
        return await self._remote("ready")

    async def liveness(self) -> Report:
        return await self._remote("live")

    async def _remote(self, op: str) -> Report:
        try:
            answer = (await self._bus.ask(op))["report"]
        except (BreakglassError, TimeoutError) as exc:
            return Report(False, {"pipeline": CheckResult(False, f"unreachable ({type(exc).__name__})")})
        checks = {str(name): _result(str(text)) for name, text in answer["checks"].items()}
        return Report(answer["status"] == "ok", checks)


class RemoteStoreHealth(StoreHealth):
    """The pipeline's view of the store's availability (its writes failing or not), for the API's
    ``/api/v1/health``: ``refresh()`` asks it over the bridge; unanswered, the last answer stays."""

    def __init__(self, bus: BridgeBus) -> None:
        super().__init__()
        self._bus = bus
        self._waiting: dict[str, int] = {}

    async def refresh(self) -> None:
        try:
            answer = await self._bus.ask("store")
        except (BreakglassError, TimeoutError):
            return
        self.available = bool(answer["available"])
        self.since = None if answer["since"] is None else float(answer["since"])
        self._waiting = {str(kind): int(n) for kind, n in answer["backlog"].items()}

    def backlog(self) -> dict[str, int]:
        return dict(self._waiting)
