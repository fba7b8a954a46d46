"""Notice templates: defaults that fit a pager, user templates sandboxed, broken ones fall back."""

from __future__ import annotations

from breakglass.domain import Severity
from breakglass.notify.message import Notice, TemplateSet

NOTICE = Notice(
    incident_id="inc-1", event="opened", severity=Severity.CRITICAL, receivers=("ops",),
    incident={"id": "inc-1", "title": "Oracle deviation", "state": "detected", "severity": "critical",
              "alert_count": 2, "first_block": 10},
    alert={"monitor_id": "oracle", "block_number": 12, "tx_hash": "0xabc"}, protocol="perp",
)  # fmt: skip


def test_the_default_template_names_severity_protocol_incident_and_evidence() -> None:
    rendered = TemplateSet().render(NOTICE)
    assert rendered.title == "[CRITICAL] perp: Oracle deviation"
    assert "inc-1 is detected (opened)" in rendered.body and "tx 0xabc" in rendered.body


def test_a_named_template_renders_the_incident() -> None:
    templates = TemplateSet({"short": ("{{ incident.id }}!", "{{ event }} {{ protocol }}")})
    rendered = templates.render(NOTICE, "short")
    assert (rendered.title, rendered.body) == ("inc-1!", "opened perp")


def test_a_broken_template_falls_back_to_the_default_and_says_so() -> None:
    templates = TemplateSet({"bad": ("{{ incident.nope }}", "x")})
    rendered = templates.render(NOTICE, "bad")
    assert rendered.title == "[CRITICAL] perp: Oracle deviation"
    assert "template 'bad' failed" in rendered.body


def test_templates_run_in_a_sandbox() -> None:
    templates = TemplateSet({"evil": ("{{ ''.__class__.__mro__ }}", "x")})
    assert "template 'evil' failed" in templates.render(NOTICE, "evil").body
