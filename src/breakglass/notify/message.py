"""What a notification says: a ``Notice`` about one incident event, and its rendering by templates.

Templates are Jinja2 in a sandbox (they come from configuration files), with ``incident``, ``alert``,
``event`` and ``protocol`` in scope. The defaults below are short enough for a pager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from breakglass.domain import Severity
from breakglass.incidents.models import Incident

__all__ = ["DEFAULT_BODY", "DEFAULT_TITLE", "Notice", "Rendered", "TemplateSet", "notice_for"]

DEFAULT_TITLE = "[{{ incident.severity | upper }}] {{ protocol }}: {{ incident.title }}"
DEFAULT_BODY = (
    "Incident {{ incident.id }} is {{ incident.state }} ({{ event }}).\n"
    "{% if alert %}{{ alert.monitor_id }} at block {{ alert.block_number }}"
    "{% if alert.tx_hash %}, tx {{ alert.tx_hash }}{% endif %}.\n{% endif %}"
    "{{ incident.alert_count }} alert(s) since block {{ incident.first_block }}."
)


@dataclass(frozen=True, slots=True)
class Notice:
    """One incident event to announce to some receivers (channel names)."""

    incident_id: str
    event: str
    """``opened``, ``escalated:<severity>``, ``state:<state>``...: the notification log's key."""
    severity: Severity
    receivers: tuple[str, ...]
    incident: Mapping[str, Any]
    alert: Mapping[str, Any] | None = None
    protocol: str = "protocol"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The JSON document a webhook receives."""
        return {
            "event": self.event,
            "protocol": self.protocol,
            "incident": dict(self.incident),
            "alert": dict(self.alert) if self.alert is not None else None,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


def notice_for(
    incident: Incident,
    event: str,
    receivers: tuple[str, ...],
    *,
    alert: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Notice:
    snapshot = {
        "id": incident.id,
        "title": incident.title,
        "state": incident.state,
        "severity": str(Severity(incident.severity)),
        "resolution": incident.resolution,
        "alert_count": incident.alert_count,
        "first_block": incident.first_block,
        "detected_at": incident.detected_at,
        "contained_at": incident.contained_at,
        "group_labels": dict(incident.group_labels),
    }
    return Notice(incident.id, event, Severity(incident.severity), receivers, snapshot, alert,
                  incident.protocol, dict(extra or {}))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str


class TemplateSet:
    """Named (title, body) template pairs plus the default, compiled once."""

    def __init__(self, templates: Mapping[str, tuple[str, str]] | None = None) -> None:
        self._env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        sources: dict[str | None, tuple[str, str]] = {None: (DEFAULT_TITLE, DEFAULT_BODY)}
        sources.update(templates or {})
        self._compiled = {
            name: (self._env.from_string(title), self._env.from_string(body))
            for name, (title, body) in sources.items()
        }

    def render(self, notice: Notice, name: str | None = None) -> Rendered:
        title, body = self._compiled[name]
        scope = {"incident": notice.incident, "alert": notice.alert, "event": notice.event,
                 "protocol": notice.protocol, "extra": notice.extra}  # fmt: skip
        try:
            return Rendered(title.render(scope).strip(), body.render(scope).strip())
        except TemplateError as exc:
            # A broken template must not swallow the page: fall back to the default, say why.
            t, b = self._compiled[None]
            fallback = Rendered(t.render(scope).strip(), b.render(scope).strip())
            return Rendered(fallback.title, f"{fallback.body}\n(template {name!r} failed: {exc})")
