"""Routing: which receivers (notification channels) an alert goes to, from declarative routes.

Routes are tried in order; the first whose matchers all match decides, unless it says ``continue``,
in which case later matching routes add their receivers too. No match: the default receivers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.config.alerting import AlertingConfig
from breakglass.matchers import Matcher, matches_all, parse_matchers

__all__ = ["Route", "RouteStage", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    continue_: bool = False


class Router:
    def __init__(self, routes: Sequence[Route], default: Sequence[str] = ()) -> None:
        self.routes = tuple(routes)
        self.default = tuple(default)

    @classmethod
    def of(cls, config: AlertingConfig) -> Router:
        routes = [Route(parse_matchers(r.matchers), tuple(r.receivers), r.continue_) for r in config.routes]
        return cls(routes, config.default_receivers)

    def receivers(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        found: list[str] = []
        matched = False
        for route in self.routes:
            if matches_all(route.matchers, labels):
                matched = True
                found += [r for r in route.receivers if r not in found]
                if not route.continue_:
                    break
        return tuple(found) if matched else self.default


class RouteStage:
    name = "route"

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        for candidate in alerts:
            candidate.receivers = self.router.receivers(candidate.labels)
            if candidate.alert is not None:
                candidate.alert.receivers = list(candidate.receivers)
        return alerts
