"""Responder replicas as real OS processes (issue 19): one detector (``serve --role detect``) and two
responder replicas (``serve --role respond``) with the same configuration and guardian key, on anvil,
PostgreSQL and JetStream (``benchmarks/ha_respond.py``'s ``Cluster``; ``python -m benchmarks.ha --part
respond`` does the same over more kills and reports the times). The active replica is SIGKILLed as its
guardian transaction is about to leave (signed and claimed, never broadcast), or cut from NATS: the
standby sends what is owed, nothing is sent twice on chain, no breach goes without its pause."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.ha_respond import Cluster, responder_failover

from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]


@pytest.fixture
def servers() -> tuple[str, str]:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    return postgres, nats


def took_over(cluster: Cluster) -> int:
    return sum(r.log.read_bytes().count(b"respond.took_over") for r in cluster.replicas.values())


@pytest.mark.parametrize("lease", ["nats", "postgres"])
def test_a_killed_leader_is_replaced_and_owes_nothing(
    tmp_path: Path, servers: tuple[str, str], lease: str
) -> None:
    postgres, nats = servers
    with Cluster(tmp_path, postgres, nats, lease=lease, ttl=2.0) as cluster:
        cluster.start_replicas()  # both at once: one of them leads
        cluster.start_traffic()
        first = cluster.next_send(0.0)
        assert took_over(cluster) == 1 and first.tag == cluster.leader()
        kills = 2 if lease == "nats" else 1
        figures = responder_failover(cluster, kills)
        # each time, the standby sent the very transaction the dead leader had signed
        assert figures["owed_sent_as_the_same_transaction"] == kills, figures
        settled = cluster.settle()
    assert settled["duplicate_transactions"] == 0, settled
    assert settled["lost_actions"] == 0 and settled["breaches_begun"] >= kills, settled


def test_a_leader_cut_from_nats_stops_sending_and_the_standby_takes_over(
    tmp_path: Path, servers: tuple[str, str]
) -> None:
    postgres, nats = servers
    with Cluster(tmp_path, postgres, nats, lease="nats", ttl=2.0) as cluster:
        cluster.start_replicas()
        cluster.start_traffic()
        cluster.next_send(0.0)
        leader = cluster.leader()
        standby = next(tag for tag in cluster.replicas if tag != leader)
        cut = time.monotonic()
        # its bus and its lease: gone; the chain and the store: still in reach
        cluster.replicas[leader].nats.cut()
        cluster.next_send(cut, tag=standby)
        assert cluster.leader() == standby
        settled = cluster.settle()
        # the partitioned leader, still running with the chain in reach, sent nothing once its lease
        # could have expired
        late = [s for s in cluster.proxy.sends if s.tag == leader and s.at > cut + cluster.ttl]
        assert late == [], late
        assert cluster.replicas[leader].proc is not None and cluster.replicas[leader].proc.poll() is None
    assert settled["duplicate_transactions"] == 0, settled
    assert settled["lost_actions"] == 0, settled
