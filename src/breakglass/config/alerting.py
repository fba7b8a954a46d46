"""The ``alerting`` and ``notifications`` sections: grouping, routes, inhibition, channels.

Routing and inhibition are declarative data, evaluated by ``breakglass.alerts``; channel URLs are
secrets (they embed tokens), typed ``SecretStr`` so they never reach logs, the API or the dashboard.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from breakglass.config.base import Strict
from breakglass.config.monitors import SeverityName
from breakglass.config.refs import RefTo, UniqueKey
from breakglass.matchers import parse_matchers

__all__ = [
    "AlertingConfig",
    "ChannelConfig",
    "InhibitRuleConfig",
    "NotificationsConfig",
    "RouteConfig",
    "TemplateConfig",
]


def _check_matchers(value: list[str]) -> list[str]:
    parse_matchers(value)  # ValueError becomes a located configuration error
    return value


class RouteConfig(Strict):
    """Alerts matching every matcher go to ``receivers``; the first matching route wins unless
    ``continue`` is true."""

    name: str | None = None
    matchers: list[str] = Field(default_factory=list, description="e.g. severity>=high, market=ETH")
    receivers: Annotated[list[str], RefTo("channel")] = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")

    _matchers = field_validator("matchers")(_check_matchers)


class InhibitRuleConfig(Strict):
    """While an alert matching ``source`` is active, alerts matching ``target`` with equal values of
    the ``equal`` labels are muted (a venue-paused alert mutes the liquidation alerts after it)."""

    name: Annotated[str, UniqueKey("inhibit_rule")]
    source: list[str] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)
    duration: float = Field(
        default=3600.0,
        gt=0,
        description="seconds a source alert outside an open incident stays active",
    )

    _source = field_validator("source")(_check_matchers)
    _target = field_validator("target")(_check_matchers)


class AlertingConfig(Strict):
    group_by: list[str] = Field(
        default_factory=lambda: ["protocol", "group"],
        description="labels whose values form the incident group key (protocol defaults to the "
        "configuration's protocol)",
    )
    group_window: float = Field(
        default=900.0,
        gt=0,
        description="seconds after its last alert an open incident still takes new ones",
    )
    incident_min_severity: SeverityName = "low"
    routes: list[RouteConfig] = Field(default_factory=list)
    default_receivers: Annotated[list[str], RefTo("channel")] = Field(default_factory=list)
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)


class TemplateConfig(Strict):
    """Jinja2 templates (sandboxed); ``incident``, ``alert``, ``event``, ``protocol`` in scope."""

    name: Annotated[str, UniqueKey("template")]
    title: str
    body: str


class ChannelConfig(Strict):
    """A notification channel. ``apprise``: any Apprise URL (slack://, discord://, tgram://,
    pagerduty://, opsgenie://, mailto://, json://...). ``webhook``: an HTTP(S) POST of the event as
    JSON, signed with HMAC-SHA256 when ``secret`` is set."""

    name: Annotated[str, UniqueKey("channel")]
    kind: Literal["apprise", "webhook"] = "apprise"
    url: SecretStr
    secret: SecretStr | None = None
    template: Annotated[str | None, RefTo("template")] = None
    min_severity: SeverityName = "info"

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        if "://" not in value.get_secret_value():
            raise ValueError("must be a URL (scheme://...)")
        return value


class NotificationsConfig(Strict):
    channels: list[ChannelConfig] = Field(default_factory=list)
    templates: list[TemplateConfig] = Field(default_factory=list)
    attempts: int = Field(default=4, ge=1, le=20)
    backoff: float = Field(
        default=0.5, gt=0, le=60, description="first retry delay in seconds; doubles each time"
    )
    timeout: float = Field(default=10.0, gt=0, le=120)
