"""What the incident stage publishes travels over the JetStream codec unchanged."""

from __future__ import annotations

from breakglass.bus.codec import decode, encode
from breakglass.incidents.models import IncidentChange
from breakglass.messages.alerts import AlertChange
from breakglass.timeline import TimelineEntry, TimelineKind


def test_incident_alert_and_timeline_messages_round_trip() -> None:
    messages = [
        IncidentChange("inc-1", "state", "contained"),
        IncidentChange("inc-1", "opened"),
        AlertChange("ab" * 16, "muted", 1, None),
        TimelineEntry(
            7,
            "inc-1",
            TimelineKind.ACTION,
            "responder:guard",
            1_700_000_000_000,
            {"step": "confirmed", "detail": {"block_number": 101}},
            "f" * 64,
        ),
    ]
    for message in messages:
        assert decode(encode(message)) == message
