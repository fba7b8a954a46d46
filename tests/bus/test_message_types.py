"""Every message a stage publishes must travel over JetStream, where only registered types decode:
a type missing from the codec works on the in-process bus and fails in production."""

from __future__ import annotations

from typing import Any

import pytest

from breakglass.bus import codec
from breakglass.domain import Address, Finding, Hash32, Severity, Tx
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.messages.findings import Retraction
from breakglass.messages.pending import PendingVerdict, PendingWork

SAMPLES: list[Any] = [
    Finding("m", Severity.HIGH, 31337, 7, "title", tx_hash=None, labels={"a": "b"}, evidence={"x": [1, "2"]}),
    Retraction(31337, 7, "0x" + "ab" * 32, ("f1", "f2")),
    ActionEvent(
        step=ActionStep.SUBMITTED,
        key="fp/contain.pause/venue",
        playbook="contain",
        action="pause",
        target="venue.pause()",
        finding_fingerprint="fp",
        monitor_id="m",
        tx_hash="0x" + "cd" * 32,
        nonce=4,
        detail={"gas": 50_000},
        at_ms=1.5,
    ),
    PendingWork(
        Tx(
            Hash32("0x" + "ef" * 32),
            Address("0x" + "11" * 20),
            None,
            5,
            b"\x60\x80",
            3,
            90_000,
            10**10,
            10**9,
            None,
            0,
        ),
        seen_at=1.7e12,
        head=42,
        chain_id=31337,
    ),
    PendingVerdict("0x" + "ef" * 32, "creation", ("fp1",), 2.5, "host:12", error=None),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_each_published_message_type_round_trips_through_the_codec(message: Any) -> None:
    assert codec.decode(codec.encode(message)) == message


def test_a_reorged_containment_tx_is_a_transaction_in_the_incident_timeline() -> None:
    from breakglass.incidents.actions import _kind
    from breakglass.timeline import TimelineKind

    event = SAMPLES[2]
    reorged = ActionEvent(**{**{f: getattr(event, f) for f in event.__slots__}, "step": ActionStep.REORGED})
    assert _kind(ActionStep.REORGED, reorged) is TimelineKind.TRANSACTION
