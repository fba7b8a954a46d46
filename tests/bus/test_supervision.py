"""Every stage's bus consumer is supervised: whatever its subscription raises, the failure is logged
with the topic and durable name, the consumer subscribes again, and a finding published afterwards
still becomes an alert. A consumer that is not running makes readiness fail and shows in metrics.

The wired incident stage on a real SQLite store, over the in-process bus (faults injected in the
subscription's wait, ``FaultyBus``) and over a real JetStream server (faults raised by nats-py's own
``PullSubscription.fetch``, the call that raised a bare ``asyncio.TimeoutError`` under load).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from structlog.testing import capture_logs

from breakglass.alerts.models import AlertRow
from breakglass.app import App, build_app
from breakglass.bus import Bus, InProcessBus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.config import load_config
from breakglass.roles.incidents import IncidentStage
from breakglass.testing import FaultyBus, eventually, make_finding, service_url, wait_until


def _error_classes() -> list[type[BaseException]]:
    """Every exception class nats-py defines (nats.errors, nats.js.errors), and what it lets through
    from below: asyncio's TimeoutError, socket errors, a ValueError of an invalid subscription."""
    found: list[type[BaseException]] = []

    def walk(cls: type[BaseException]) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__ in ("nats.errors", "nats.js.errors") and sub not in found:
                found.append(sub)
            walk(sub)

    walk(nats.errors.Error)
    return [nats.errors.Error, *found, TimeoutError, ConnectionResetError, OSError, ValueError, RuntimeError]


def _instance(cls: type[BaseException]) -> BaseException:
    if cls is nats.errors.SlowConsumerError:
        return cls(subject="breakglass.findings", reply="", sid=1, sub=None)  # type: ignore[call-arg]
    return cls()


ERRORS = _error_classes()


def _fast(consumers: list[Consumer]) -> None:
    for consumer in consumers:  # restart at once: the test goes through every error class
        consumer.backoff = consumer.max_backoff = 0.01


@contextlib.asynccontextmanager
async def wired(tmp_path: Path, bus: Any) -> AsyncIterator[tuple[App, IncidentStage]]:
    config = tmp_path / "breakglass.yaml"
    config.write_text(f"protocol: perp\nstore:\n  url: sqlite:///{tmp_path / 'bg.db'}\n", encoding="utf-8")
    app = build_app(load_config(config), bus=bus)
    await app.start()
    stage = app.components.incidents
    assert isinstance(stage, IncidentStage)
    try:
        await stage.start()
        _fast(stage.consumers)
        yield app, stage
    finally:
        await app.close()


async def _alerts(app: App, fingerprint: str) -> int:
    async with app.components.store.sessions() as session:
        query = select(func.count()).select_from(AlertRow).where(AlertRow.fingerprint == fingerprint)
        return int((await session.scalar(query)) or 0)


async def _survives_each(app: App, errors: list[type[BaseException]], fire: Callable[[BaseException], Any],
                         fired: Callable[[], int]) -> None:  # fmt: skip
    """For each error: raise it in the alert stage's findings subscription, then publish a finding
    and wait (generously) until it is an alert."""
    for n, cls in enumerate(errors, start=1):
        fire(_instance(cls))
        await wait_until(lambda n=n: fired() >= n, within=30, what=f"{cls.__name__} raised")  # type: ignore[misc]
        finding = make_finding("supervised", block=1000 + n)
        await app.bus.publish(Topics.FINDINGS, finding)

        async def alerted(fp: str = finding.fingerprint) -> bool:
            return await _alerts(app, fp) == 1

        await eventually(alerted, within=30, what=f"the finding published after {cls.__name__} alerted")


def _restarts(topic: str, durable: str) -> float:
    labels = {"topic": topic, "consumer": durable}
    return REGISTRY.get_sample_value("breakglass_bus_consumer_restarts_total", labels) or 0.0


async def test_the_alert_stage_survives_every_error_on_the_in_process_bus(tmp_path: Path) -> None:
    faulty = FaultyBus(InProcessBus())
    before = _restarts(Topics.FINDINGS, "alerts")
    async with wired(tmp_path, faulty) as (app, stage):
        with capture_logs() as logs:
            await _survives_each(app, ERRORS, lambda exc: faulty.fail(Topics.FINDINGS, "alerts", exc),
                                 lambda: faulty.fired)  # fmt: skip
        (consumer,) = [c for c in stage.consumers if c.topic == Topics.FINDINGS]
        assert consumer.restarts == len(ERRORS)
        assert _restarts(Topics.FINDINGS, "alerts") - before == len(ERRORS)
        failures = [e for e in logs if e["event"] == "bus.consumer_failed"]
        assert [e["error"] for e in failures] == [cls.__name__ for cls in ERRORS]
        assert all(e["topic"] == "findings" and e["durable"] == "alerts" for e in failures)
        assert (await app.health.readiness()).checks["bus"].ok


@pytest.fixture
async def jetstream() -> AsyncIterator[Bus]:
    url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    from breakglass.bus.jetstream import JetStreamBus

    prefix = f"bgtest_{uuid.uuid4().hex[:10]}"
    yield JetStreamBus(url, prefix=prefix, ack_wait=2.0)
    probe = await JetStreamBus(url, prefix=prefix).connect()  # the app closed its own connection
    try:
        await probe._context().delete_stream(prefix)
    finally:
        await probe.close()


async def test_the_alert_stage_survives_every_error_nats_py_raises_in_a_real_consumer(
    tmp_path: Path, jetstream: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nats.js.client import JetStreamContext

    pull = JetStreamContext.PullSubscription
    original = pull.fetch
    armed: list[BaseException] = []
    wake = asyncio.Event()
    fired = 0

    async def fetch(
        self: Any, batch: int = 1, timeout: float | None = 5, heartbeat: float | None = None
    ) -> Any:
        """nats-py's fetch, which raises the armed error, at once or in the middle of its wait."""
        nonlocal fired
        if self._consumer != "alerts-findings":
            return await original(self, batch, timeout, heartbeat)
        if not armed:
            wake.clear()
            step = asyncio.ensure_future(original(self, batch, timeout, heartbeat))
            waiter = asyncio.ensure_future(wake.wait())
            await asyncio.wait({step, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if step.done():
                return step.result()
            step.cancel()
            with contextlib.suppress(BaseException):
                await step
        fired += 1
        raise armed.pop(0)

    def fire(exc: BaseException) -> None:
        armed.append(exc)
        wake.set()

    monkeypatch.setattr(pull, "fetch", fetch)
    async with wired(tmp_path, jetstream) as (app, stage):
        with capture_logs() as logs:
            await _survives_each(app, ERRORS, fire, lambda: fired)
        (consumer,) = [c for c in stage.consumers if c.topic == Topics.FINDINGS]
        timeouts = sum(1 for cls in ERRORS if issubclass(cls, TimeoutError))
        assert consumer.restarts == len(ERRORS) - timeouts  # a fetch that timed out is an empty one
        failures = [e for e in logs if e["event"] == "bus.consumer_failed"]
        restarted = {c.__name__ for c in ERRORS if not issubclass(c, TimeoutError)}
        assert {e["error"] for e in failures} == restarted
        assert all(e["topic"] == "findings" and e["durable"] == "alerts" for e in failures)


class _Broken:
    """A bus whose every subscription fails at once."""

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        async def messages() -> AsyncIterator[Any]:
            raise nats.errors.ConnectionClosedError
            yield  # an async generator

        return messages()

    async def lag(self) -> dict[tuple[str, str], int]:
        return {}


async def test_a_consumer_that_cannot_subscribe_is_not_ready_and_shows_down(tmp_path: Path) -> None:
    from breakglass.bus.consumer import consumers_ready

    async def handle(message: Any) -> None:
        return None

    consumer = Consumer(_Broken(), "findings", "test-broken", handle, backoff=0.01, max_backoff=0.05)  # type: ignore[arg-type]
    check = consumers_ready(_Broken(), lambda: [consumer])  # type: ignore[arg-type]
    assert (await check()).ok  # not subscribed: not this process's work
    consumer.start()
    try:
        await wait_until(lambda: consumer.restarts >= 3, what="three restarts")
        result = await check()
        assert not result.ok
        assert "test-broken/findings not running after ConnectionClosedError" in result.detail
        labels = {"topic": "findings", "consumer": "test-broken"}
        assert REGISTRY.get_sample_value("breakglass_bus_consumer_up", labels) == 0.0
    finally:
        await consumer.close()


async def test_a_consumer_with_work_waiting_that_handles_nothing_is_not_ready() -> None:
    from breakglass.bus import consumer as module

    bus = InProcessBus()
    release = asyncio.Event()

    async def stuck(message: Any) -> None:
        await release.wait()

    consumer = Consumer(bus, "findings", "test-stuck", stuck)
    check = module.consumers_ready(bus, lambda: [consumer])
    consumer.start()
    try:
        await wait_until(lambda: consumer.running, what="reading")
        await bus.publish("findings", 1)
        await bus.publish("findings", 2)
        assert (await check()).ok  # behind, but not for long yet
        consumer.last_progress_at = (consumer.last_progress_at or 0.0) - module.STALL_SECONDS - 1
        result = await check()
        assert not result.ok and "handled nothing for" in result.detail
        release.set()
        await wait_until(lambda: consumer.last_progress_at is not None and consumer.running, what="progress")
        await eventually(lambda: _ok(check), what="ready again once it handled its backlog")
    finally:
        await consumer.close()
        await bus.close()


async def _ok(check: Any) -> bool:
    return bool((await check()).ok)


async def test_a_handler_that_raises_skips_its_message_without_a_restart() -> None:
    bus = InProcessBus()
    seen: list[int] = []

    async def handle(message: int) -> None:
        if message == 1:
            raise RuntimeError("a bug")
        seen.append(message)

    consumer = Consumer(bus, "findings", "test-handler", handle)
    consumer.start()
    try:
        for n in (1, 2):
            await bus.publish("findings", n)
        await wait_until(lambda: seen == [2], what="the next message handled")
        assert consumer.restarts == 0 and consumer.running
    finally:
        await consumer.close()
        await bus.close()
