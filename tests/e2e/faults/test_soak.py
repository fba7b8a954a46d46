"""Real ``breakglass serve`` processes SIGKILLed at the worst moments (issue 20): between the ledger
claim and the broadcast, right after the broadcast, and at a random moment, on SQLite with the
in-process bus. The soak benchmark (``python -m benchmarks.faults``) does the same many times; here a
few kills, so that ``make test`` checks the guarantees: no block missed, no finding lost, no on-chain
action repeated. Also on PostgreSQL with JetStream (when their test URLs are set): there the alert
stage's consumer once ended silently on an empty fetch and lost what killed processes held
(``docs/reliability.md``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.faults import soak

from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(900)]


def check(result: dict[str, object], plan: list[str]) -> None:
    assert result["kill_points"] == {point: plan.count(point) for point in set(plan)}, result
    assert result["blocks_missed"] == 0, result
    assert result["findings_lost"] == 0 and result["findings_checked"], result
    assert result["duplicate_actions"] == 0 and result["guardian_transactions"], result


def test_sqlite_and_the_in_process_bus_survive_kills_around_the_guardians_send(tmp_path: Path) -> None:
    plan = ["before", "after", "random"]
    check(soak(0, tmp_path, plan=plan), plan)


def test_postgresql_and_jetstream_survive_kills_around_the_guardians_send(tmp_path: Path) -> None:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    plan = ["after", "before", "random"]
    check(soak(0, tmp_path, postgres=postgres, nats=nats, plan=plan), plan)
