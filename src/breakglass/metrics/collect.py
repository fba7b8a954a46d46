"""Metrics read when Prometheus scrapes, so that the hot path pays a float addition and nothing else.

``MonitorClock``: the detection engine adds each monitor's evaluation time to plain floats; at scrape
time ``breakglass_monitor_evaluation_seconds`` (a summary: ``_count`` and ``_sum`` per monitor) is
built from every live clock (weakly held: an engine that is gone stops reporting). The engine times
the monitor's own code; the state reads its invariants share are one batched RPC round trip, timed by
``breakglass_rpc_request_duration_seconds``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import SummaryMetricFamily
from prometheus_client.registry import Collector

__all__ = ["MonitorClock"]


class MonitorClock:
    """Seconds and evaluations per monitor id, added to by one detection engine."""

    __slots__ = ("__weakref__", "counts", "seconds")

    def __init__(self, monitor_ids: Iterable[str]) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(monitor_ids, 0.0)
        self.counts: dict[str, int] = dict.fromkeys(self.seconds, 0)
        _CLOCKS.add(self)


_CLOCKS: weakref.WeakSet[MonitorClock] = weakref.WeakSet()


class _MonitorTimes(Collector):
    def collect(self) -> Iterator[SummaryMetricFamily]:
        seconds: dict[str, float] = {}
        counts: dict[str, int] = {}
        for clock in list(_CLOCKS):
            for monitor, value in list(clock.seconds.items()):
                seconds[monitor] = seconds.get(monitor, 0.0) + value
                counts[monitor] = counts.get(monitor, 0) + clock.counts.get(monitor, 0)
        family = SummaryMetricFamily(
            "breakglass_monitor_evaluation_seconds",
            "Time spent in each monitor's evaluation of a block (its shared state reads excluded).",
            labels=["monitor"],
        )
        for monitor in sorted(seconds):
            family.add_metric([monitor], counts[monitor], seconds[monitor])
        yield family

    def describe(self) -> Iterator[SummaryMetricFamily]:
        yield SummaryMetricFamily("breakglass_monitor_evaluation_seconds", "", labels=["monitor"])


REGISTRY.register(_MonitorTimes())
