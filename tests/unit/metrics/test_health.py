"""Readiness and liveness checks: results, failures, exceptions and timeouts, and the ready gauge."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from breakglass.health import CheckResult, Health


async def _ok() -> CheckResult:
    return CheckResult(True)


async def _behind() -> CheckResult:
    return CheckResult(False, "12 blocks behind")


async def _raises() -> CheckResult:
    raise OSError("postgresql://admin:hunter2@db/breakglass unreachable")


async def _hangs() -> CheckResult:
    await asyncio.sleep(60)
    return CheckResult(True)


async def test_ready_only_when_every_readiness_check_passes_and_the_gauge_says_which() -> None:
    health = Health()
    health.add_readiness("unit-store", _ok)
    assert (await health.readiness()).ok
    health.add_readiness("unit-follower", _behind)
    report = await health.readiness()
    assert not report.ok
    assert report.as_dict() == {
        "status": "fail",
        "checks": {"unit-store": "ok", "unit-follower": "fail: 12 blocks behind"},
    }
    assert REGISTRY.get_sample_value("breakglass_ready", {"check": "unit-store"}) == 1
    assert REGISTRY.get_sample_value("breakglass_ready", {"check": "unit-follower"}) == 0


async def test_a_check_that_raises_fails_by_its_class_name_only() -> None:
    health = Health()
    health.add_readiness("unit-raises", _raises)
    report = await health.readiness()
    assert not report.ok
    assert str(report.checks["unit-raises"]) == "fail: OSError"  # never the message: it had a password


async def test_a_check_that_hangs_fails_after_the_timeout() -> None:
    health = Health(timeout=0.05)
    health.add_liveness("unit-hangs", _hangs)
    health.add_liveness("unit-ok", _ok)
    report = await health.liveness()
    assert not report.ok
    assert report.checks["unit-hangs"].detail.startswith("no answer within")
    assert report.checks["unit-ok"].ok


async def test_no_checks_is_ready_and_alive() -> None:
    health = Health()
    assert (await health.readiness()).ok
    assert (await health.liveness()).ok
