"""``breakglass serve``'s process boundary: the pipeline in the main process, the API in a child.

The API parses what anyone with network access sends; detection and containment must not depend on
it. ``serve_supervised`` runs every stage (follower, detection, responder, incidents, notifications,
metrics) in this process and the HTTP server (API, dashboard, ``/metrics``, probes) in a child
process started with ``python -m breakglass.api.process``. The two talk over a connected Unix socket
(``api/bridge.py``): the child publishes its transactions' outbox and listens to the live topics
through it, and asks the pipeline for readiness, liveness and metrics. A child that dies (a
segfault, an out-of-memory kill, a bug) is logged as ``api.process_died`` and started again after a
backoff (1 s doubling to 30 s; back to 1 s after a minute up) and counted in
``breakglass_serve_api_deaths_total{cause}``; the pipeline never notices. A child
whose pipeline dies exits (its end of the socket closes), so a restarted service never has two; one
that stops talking (a heartbeat every 5 s; silent for 60 s: its event loop is stuck) is killed and
replaced (``api.process_hung``).

The child builds the same ``App`` from the same configuration but runs none of its stages; it holds
no bus subscription and no lease. Ctrl-C or SIGTERM stops the child (SIGTERM, then SIGKILL after
10 s), then the stages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

from breakglass.api.bridge import (
    API_METRICS,
    BridgeBus,
    BridgeServer,
    RemoteHealth,
    RemoteStoreHealth,
    exposition,
)
from breakglass.app import App, Components
from breakglass.errors import BreakglassError, StageFailed
from breakglass.logs import get_logger
from breakglass.metrics import API_PROCESS_DEATHS

__all__ = ["SECRET_ENV", "serve_supervised"]

log = get_logger(__name__)

SECRET_ENV = "BREAKGLASS_SESSION_SECRET"  # noqa: S105 (the variable's name, not its value)
_LOG_ENV = "BREAKGLASS_API_CHILD_LOG"
RESTART_BACKOFF = (1.0, 30.0)
STABLE_SECONDS = 60.0
HEARTBEAT_SECONDS = 5.0
"""The API process tells the pipeline's it is alive this often (any frame counts)."""
HANG_SECONDS = 60.0
"""An API process that listened and then sent nothing for this long is stuck: killed, replaced."""


async def serve_supervised(
    app: App,
    config: Path,
    *,
    host: str,
    port: int,
    forwarded_allow_ips: str | None,
    session_secret: str,
    log_settings: str = "console:info",
    stop: asyncio.Event | None = None,
) -> None:
    """Run the stages here and the API in a child process (restarted when it dies) until ``stop`` is
    set, SIGINT or SIGTERM (then return). A stage that fails stops everything, as in one process, and
    raises ``StageFailed`` once all is closed (``breakglass serve`` exits with code 5)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await app.start()
    app.subscribe()  # every consumer before any producer: nothing published is lost while one starts
    tasks: list[asyncio.Task[None]] = []
    stages_failed: list[StageFailed] = []

    def failed(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = app.redactor.text(str(task.exception()))
            log.error("component failed; stopping", component=task.get_name(), error=error)
            stages_failed.append(StageFailed(task.get_name(), error))
            stop.set()

    for name, runner in app.components.runners():
        task = asyncio.create_task(runner.run(stop), name=name)
        task.add_done_callback(failed)
        tasks.append(task)
    argv = [
        sys.executable,
        "-m",
        "breakglass.api.process",
        str(config),
        host,
        str(port),
        forwarded_allow_ips or "",
    ]
    env = {**os.environ, SECRET_ENV: session_secret, _LOG_ENV: log_settings}
    key = app.config.settings.responder.guardian
    if key is not None and key.env is not None:
        env.pop(key.env, None)  # the guardian's hex key: read by this process only (build_app guardian=False)
    responder = app.components.respond
    safes = responder.safes if responder is not None else None
    bridge = BridgeServer(app.bus, app.health, app.components.store.health, safes)
    supervisor = asyncio.create_task(_supervise(bridge, argv, env, stop), name="api-process")
    failure: str | None = None
    try:
        await stop.wait()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            failure = await supervisor
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(10):
                    await task  # the timeout cancels the task
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await app.close()
    if stages_failed:
        raise stages_failed[0]  # the first: the others were most likely stopped by it
    if failure is not None:
        raise BreakglassError(failure)


async def _supervise(
    bridge: BridgeServer,
    argv: list[str],
    env: dict[str, str],
    stop: asyncio.Event,
    *,
    hang_seconds: float = HANG_SECONDS,
) -> str | None:
    """Keep an API process running until ``stop``. The first one failing before it listened (the
    port taken, an address that does not exist) is a mistake to report, not a crash to retry: it
    stops everything and is returned. One that listened and then says nothing for ``hang_seconds``
    (its event loop stuck: it sends a heartbeat every ``HEARTBEAT_SECONDS``) is killed and replaced."""
    delay = RESTART_BACKOFF[0]
    while not stop.is_set():
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            child = await asyncio.create_subprocess_exec(
                *argv[:3], str(theirs.fileno()), *argv[3:], env=env, pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a terminal's Ctrl-C reaches this process, which stops the child
            )  # fmt: skip
        except OSError as exc:
            ours.close()
            theirs.close()
            log.error("api.process_start_failed", error=str(exc), restart_in=delay)  # fd or memory limits
            await _sleep(stop, delay)
            delay = min(delay * 2, RESTART_BACKOFF[1])
            continue
        theirs.close()
        started = time.monotonic()
        log.info("api.process_started", pid=child.pid)
        serving = asyncio.create_task(bridge.serve(ours), name="api-bridge")
        exited = asyncio.create_task(child.wait())
        stopping = asyncio.create_task(stop.wait())
        while True:
            done, _ = await asyncio.wait({exited, stopping}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            if done:
                break
            silent = time.monotonic() - bridge.last_heard
            if bridge.listening and silent > hang_seconds:
                log.error("api.process_hung", pid=child.pid, silent_seconds=round(silent, 1))
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
        stopping.cancel()
        if not exited.done():  # asked to stop: the child first
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await asyncio.shield(exited)  # the timeout cancels the shield, not the wait
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await exited
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await serving
        ours.close()
        if stop.is_set():
            return None
        code = exited.result()
        if not bridge.listened:
            stop.set()
            return f"the API process exited ({code}) before it listened on its address: see its log above"
        if time.monotonic() - started > STABLE_SECONDS:
            delay = RESTART_BACKOFF[0]
        died = {"returncode": code} if code >= 0 else {"signal": signal.Signals(-code).name}
        API_PROCESS_DEATHS.labels(str(died.get("signal", "exit"))).inc()
        log.error("api.process_died", pid=child.pid, restart_in=delay, **died)
        await _sleep(stop, delay)
        delay = min(delay * 2, RESTART_BACKOFF[1])
    return None


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def _child(fd: int, config: Path, host: str, port: int, forwarded: str | None) -> None:
    """The API process: the app built from ``config`` with the bridge as its bus, none of its stages run."""
    from breakglass.api.application import create_api
    from breakglass.api.server import serve
    from breakglass.app import build_app
    from breakglass.config import load_config

    bus = await BridgeBus().connect(socket.socket(fileno=fd))
    app = build_app(load_config(config), bus=bus, guardian=False)  # the key stays with the pipeline
    wired = app.components  # the services the routes use; nothing here runs
    app.components = Components(wired.store, incidents=wired.incidents, respond=wired.respond)
    app.health = RemoteHealth(bus)
    app.components.store.health = RemoteStoreHealth(bus)  # what the pipeline's writes see
    if wired.respond is not None and wired.respond.safes is not None:
        # sent by the pipeline's relayer: one key, one nonce sequence
        wired.respond.safes.execute = bus.execute_safe

    async def metrics() -> bytes:
        pipeline = str((await bus.ask("metrics"))["text"]).encode()
        return pipeline + exposition(lambda name: name.startswith(API_METRICS))

    app.exposition = metrics
    api = create_api(app, session_secret=os.environ.get(SECRET_ENV))
    stop = asyncio.Event()
    reading = asyncio.create_task(bus.run())
    reading.add_done_callback(lambda _t: stop.set())  # the pipeline's process is gone: so are we
    told: list[asyncio.Task[None]] = []

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(BreakglassError, ConnectionError, OSError):
                await bus.alive()

    told.append(asyncio.create_task(heartbeat()))

    def listening(_server: object) -> None:
        told.append(asyncio.get_running_loop().create_task(bus.listening_on()))

    try:
        await serve(app, api, host=host, port=port, forwarded_allow_ips=forwarded, stop=stop, stages=False,
                    on_started=listening)  # fmt: skip
    finally:
        for task in (reading, *told):
            task.cancel()
        await asyncio.gather(reading, *told, return_exceptions=True)


def main(argv: list[str]) -> None:
    """``python -m breakglass.api.process FD CONFIG HOST PORT FORWARDED``: the child's entry point."""
    from breakglass.logs import configure_logging

    kind, _, level = os.environ.get(_LOG_ENV, "console:info").partition(":")
    configure_logging(json=kind == "json", level=level or "info")
    fd, config, host, port, forwarded = argv
    asyncio.run(_child(int(fd), Path(config), host, int(port), forwarded or None))


if __name__ == "__main__":
    main(sys.argv[1:])
