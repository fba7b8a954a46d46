"""Metrics read when Prometheus scrapes, so that the hot path pays a float addition and nothing else.

``MonitorClock``: the detection engine adds each monitor's evaluation time to plain dicts shared by
the process (a counter's lifetime: engines come and go, totals stay); at scrape time
``breakglass_monitor_evaluation_seconds`` (a summary: ``_count`` and ``_sum`` per monitor) is built
from them. The engine times the monitor's own code; the state reads its invariants share are one
batched RPC round trip, timed by ``breakglass_rpc_request_duration_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import SummaryMetricFamily
from prometheus_client.registry import Collector

__all__ = ["MonitorClock"]

_SECONDS: dict[str, float] = {}
_COUNTS: dict[str, int] = {}


class MonitorClock:
    """Where one detection engine adds seconds and evaluations per monitor id (``seconds[id] += s``)."""

    __slots__ = ("counts", "seconds")

    def __init__(self, monitor_ids: Iterable[str]) -> None:
        for monitor in monitor_ids:
            _SECONDS.setdefault(monitor, 0.0)
            _COUNTS.setdefault(monitor, 0)
        self.seconds = _SECONDS
        self.counts = _COUNTS


class _MonitorTimes(Collector):
    def collect(self) -> Iterator[SummaryMetricFamily]:
        family = SummaryMetricFamily(
            "breakglass_monitor_evaluation_seconds",
            "Time spent in each monitor's evaluation of a block (its shared state reads excluded).",
            labels=["monitor"],
        )
        for monitor in sorted(_SECONDS):
            family.add_metric([monitor], _COUNTS.get(monitor, 0), _SECONDS[monitor])
        yield family

    def describe(self) -> Iterator[SummaryMetricFamily]:
        yield SummaryMetricFamily("breakglass_monitor_evaluation_seconds", "", labels=["monitor"])


REGISTRY.register(_MonitorTimes())
