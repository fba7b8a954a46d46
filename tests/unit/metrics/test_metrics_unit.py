"""Metric labels carry no secrets, and the RPC client counts requests, errors, failovers, give-ups."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from breakglass.chain.rpc import RpcClient
from breakglass.errors import RpcError
from breakglass.metrics import endpoint_label
from breakglass.metrics.collect import MonitorClock
from breakglass.testing import FakeTransport


@pytest.mark.parametrize(
    ("url", "label"),
    [
        (
            "https://user:pw@eth-mainnet.example.com/v2/abcdefabcdefabcdefabcdef?key=s3cret",
            "https://eth-mainnet.example.com",
        ),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("wss://node.example.org/ws/shortkey", "wss://node.example.org"),
        ("http://[::1]:8545/", "http://::1:8545"),
    ],
)
def test_an_endpoint_label_is_scheme_host_and_port_only(url: str, label: str) -> None:
    assert endpoint_label(url) == label


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _answer(method: str, params: list[Any]) -> Any:
    return "0x1"


async def test_the_rpc_client_counts_requests_errors_and_failovers_per_endpoint() -> None:
    first = FakeTransport(_answer, name="unit-a")
    second = FakeTransport(_answer, name="unit-b")
    client = RpcClient([first, second], max_rounds=1)
    requests = _sample("breakglass_rpc_requests_total", {"endpoint": "unit-a"})
    assert await client.call("eth_chainId") == "0x1"
    assert _sample("breakglass_rpc_requests_total", {"endpoint": "unit-a"}) == requests + 1
    assert _sample("breakglass_rpc_request_duration_seconds_count", {"endpoint": "unit-a"}) >= 1

    first.down = True
    errors = _sample("breakglass_rpc_errors_total", {"endpoint": "unit-a", "reason": "transport"})
    failovers = _sample("breakglass_rpc_failovers_total", {"endpoint": "unit-b"})
    assert await client.call("eth_chainId") == "0x1"
    assert _sample("breakglass_rpc_errors_total", {"endpoint": "unit-a", "reason": "transport"}) == errors + 1
    assert _sample("breakglass_rpc_failovers_total", {"endpoint": "unit-b"}) == failovers + 1

    second.down = True
    exhausted = _sample("breakglass_rpc_exhausted_total")
    with pytest.raises(RpcError):
        await client.call("eth_chainId")
    assert _sample("breakglass_rpc_exhausted_total") == exhausted + 1


async def test_a_throttled_answer_counts_as_a_throttled_error() -> None:
    def throttled(method: str, params: list[Any]) -> Any:
        return FakeTransport.error(-32005, "rate limit exceeded")

    client = RpcClient([FakeTransport(throttled, name="unit-throttled")], max_rounds=1)
    with pytest.raises(RpcError):
        await client.call("eth_chainId")
    assert _sample("breakglass_rpc_errors_total", {"endpoint": "unit-throttled", "reason": "throttled"}) == 1


def test_monitor_times_are_summed_over_engines_and_outlive_them() -> None:
    one = MonitorClock(["unit-solvency"])
    two = MonitorClock(["unit-solvency", "unit-drain"])
    one.seconds["unit-solvency"] += 0.5
    one.counts["unit-solvency"] += 2
    two.seconds["unit-solvency"] += 0.25
    two.counts["unit-solvency"] += 1
    del one, two  # an engine closed: its monitors' totals stay, as a counter's would
    labels = {"monitor": "unit-solvency"}
    assert _sample("breakglass_monitor_evaluation_seconds_sum", labels) == 0.75
    assert _sample("breakglass_monitor_evaluation_seconds_count", labels) == 3
    assert (
        REGISTRY.get_sample_value("breakglass_monitor_evaluation_seconds_count", {"monitor": "unit-drain"})
        == 0
    )
