"""The channel between the pipeline's process and the API's: both ends over a real socket pair, in
one event loop. The API may publish its outbox topics only; it hears the live topics; it asks the
pipeline's readiness and metrics, and sees it gone when its end closes."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from breakglass.api.bridge import BridgeBus, BridgeServer, RemoteHealth
from breakglass.bus import InProcessBus, Topics
from breakglass.errors import ResponseError
from breakglass.health import CheckResult, Health
from breakglass.incidents.models import IncidentChange
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.testing import make_finding, wait_until

Ends = tuple[InProcessBus, Health, BridgeBus, "asyncio.Task[None]"]


@pytest.fixture
async def ends() -> AsyncIterator[Ends]:
    bus = InProcessBus()
    health = Health()

    async def store() -> CheckResult:
        return CheckResult(True)

    async def follower() -> CheckResult:
        return CheckResult(False, "12 blocks behind")

    health.add_readiness("store", store)
    health.add_readiness("follower", follower)
    ours, theirs = socket.socketpair()
    serving = asyncio.create_task(BridgeServer(bus, health).serve(ours))
    api = await BridgeBus().connect(theirs)
    reading = asyncio.create_task(api.run())
    yield bus, health, api, serving
    await api.close()
    for task in (serving, reading):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await bus.close()


def _change(n: int) -> IncidentChange:
    return IncidentChange(incident_id=f"INC-{n}", change="opened")


async def test_the_api_publishes_its_outbox_topics_and_never_findings(ends: Ends) -> None:
    bus, _health, api, _serving = ends
    incidents = bus.subscribe(Topics.INCIDENTS, "notify")
    findings = bus.subscribe(Topics.FINDINGS, "respond")
    await api.publish(Topics.FINDINGS, make_finding("forged"))
    await api.publish(Topics.INCIDENTS, _change(1))
    assert await asyncio.wait_for(anext(incidents), 5) == _change(1)
    assert (await bus.lag())[(Topics.FINDINGS, "respond")] == 0  # the forged finding never arrived
    del findings


async def test_the_api_hears_the_live_topics(ends: Ends) -> None:
    bus, _health, api, _serving = ends
    heard = api.listen(Topics.INCIDENTS)
    first = asyncio.ensure_future(anext(heard))
    await wait_until(lambda: bus.listening(Topics.INCIDENTS) == 1, what="the pipeline relays the topic")
    await bus.publish(Topics.INCIDENTS, _change(2))
    assert await asyncio.wait_for(first, 5) == _change(2)
    await heard.aclose()


async def test_the_api_reports_the_pipelines_health_and_its_absence(ends: Ends) -> None:
    _bus, _health, api, serving = ends
    remote = RemoteHealth(api)
    report = await remote.readiness()
    assert report.as_dict() == {
        "status": "fail",
        "checks": {"store": "ok", "follower": "fail: 12 blocks behind"},
    }
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)
    await wait_until(lambda: api.lost.is_set(), what="the API sees the pipeline gone")
    gone = await remote.readiness()
    assert not gone.ok and gone.checks["pipeline"].detail.startswith("unreachable")


async def test_metrics_come_from_the_pipeline_but_the_apis_own(ends: Ends) -> None:
    from breakglass.api.routes.metrics import REQUESTS

    REQUESTS.labels("GET", "/bridge-test", "200").inc()
    _bus, _health, api, _serving = ends
    text = (await api.ask("metrics"))["text"]
    assert "breakglass_bus_consumer_lag_messages" in text or "breakglass_ready" in text
    assert "breakglass_api_requests_total" not in text  # the API's process reports its own


async def test_the_api_sees_the_store_as_the_pipelines_writes_do() -> None:
    from breakglass.api.bridge import RemoteStoreHealth
    from breakglass.store.health import StoreHealth

    store = StoreHealth()
    store.track("checkpoints", lambda: 3)
    ours, theirs = socket.socketpair()
    serving = asyncio.create_task(BridgeServer(InProcessBus(), Health(), store).serve(ours))
    api = await BridgeBus().connect(theirs)
    reading = asyncio.create_task(api.run())
    try:
        remote = RemoteStoreHealth(api)
        await remote.refresh()
        assert remote.available and remote.since is None
        store.failed("alerts.process", OSError("database is locked"))
        await remote.refresh()
        assert not remote.available and remote.since == store.since
        assert remote.backlog() == {"checkpoints": 3}
    finally:
        store.succeeded("alerts.process")  # the process-wide availability gauge back to 1
        await api.close()
        for task in (serving, reading):
            task.cancel()
        await asyncio.gather(serving, reading, return_exceptions=True)


class _Safes:
    """The pipeline's Safe service, as far as the bridge uses it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def execute_if_ready(self, safe_tx_hash: str) -> ActionEvent | None:
        self.asked.append(safe_tx_hash)
        if safe_tx_hash == "0xbelow":
            return None
        if safe_tx_hash == "0xrefused":
            raise ResponseError("no guardian relayer configured to submit Safe executions")
        return ActionEvent(ActionStep.SUBMITTED, "safe-exec/" + safe_tx_hash, "p", "a", "t", "",
                           tx_hash="0x" + "ab" * 32)  # fmt: skip


async def test_safe_executions_are_sent_by_the_pipelines_process() -> None:
    safes = _Safes()
    ours, theirs = socket.socketpair()
    serving = asyncio.create_task(BridgeServer(InProcessBus(), Health(), safes=safes).serve(ours))  # type: ignore[arg-type]
    api = await BridgeBus().connect(theirs)
    reading = asyncio.create_task(api.run())
    try:
        sent = await api.execute_safe("0xready")
        assert sent is not None and sent.step is ActionStep.SUBMITTED and sent.key == "safe-exec/0xready"
        assert await api.execute_safe("0xbelow") is None
        with pytest.raises(ResponseError, match="no guardian relayer"):
            await api.execute_safe("0xrefused")
        assert safes.asked == ["0xready", "0xbelow", "0xrefused"]
    finally:
        await api.close()
        for task in (serving, reading):
            task.cancel()
        await asyncio.gather(serving, reading, return_exceptions=True)


SILENT_CHILD = """
import socket, sys, time
sock = socket.socket(fileno=int(sys.argv[1]))
sock.sendall(b'{"op":"listening"}\\n')
time.sleep(600)  # listening, then never a heartbeat: its event loop would be stuck
"""


async def test_an_api_process_that_goes_silent_is_killed_and_replaced() -> None:
    from breakglass.api import process

    bridge = BridgeServer(InProcessBus(), Health())
    stop = asyncio.Event()
    with capture_logs() as logs:
        supervising = asyncio.create_task(
            process._supervise(
                bridge, [sys.executable, "-c", SILENT_CHILD], dict(os.environ), stop, hang_seconds=1
            )
        )
        try:
            await wait_until(lambda: sum(e["event"] == "api.process_started" for e in logs) >= 2,
                             within=60, what="a second API process")  # fmt: skip
        finally:
            stop.set()
            assert await asyncio.wait_for(supervising, 30) is None
    hung = next(e for e in logs if e["event"] == "api.process_hung")
    died = next(e for e in logs if e["event"] == "api.process_died")
    assert died["pid"] == hung["pid"] and died["signal"] == "SIGKILL"
