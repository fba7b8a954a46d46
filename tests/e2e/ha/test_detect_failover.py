"""Two ``breakglass serve`` replicas of one chain on PostgreSQL and JetStream (issue 19): the active
detector is SIGKILLed while the chain makes a block every 0.5 s with breaches in them; the standby takes
the ``detect:<chain>`` lease and resumes from the shared checkpoint. ``python -m benchmarks.ha`` does
the same many times and reports the failover times; here two kills, so that ``make test`` checks the
guarantees: no block missed, no finding lost, each breach contained once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.ha_detect import detector_failover

from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_standby_detector_resumes_from_the_checkpoint_when_the_active_one_is_killed(
    tmp_path: Path,
) -> None:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    result = detector_failover(2, tmp_path, postgres=postgres, nats=nats, ttl=2.0)
    assert len(result["takeover_s"]["all"]) == 2, result  # each kill: the other replica took over
    assert result["blocks_missed"] == 0, result
    assert result["findings_lost"] == 0 and result["findings_checked"], result
    assert result["duplicate_actions"] == 0 and result["guardian_transactions"], result
