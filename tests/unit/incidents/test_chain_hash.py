"""The timeline hash covers every field and the previous hash; canonical JSON is one text per value."""

from __future__ import annotations

import enum

from breakglass.incidents.metrics import incident_metrics
from breakglass.incidents.models import Incident
from breakglass.timeline import GENESIS, canonical_json, event_hash

BASE = dict(seq=1, incident_id="inc-1", kind="note", actor="alice", at=5, data={"text": "x"},
            prev_hash=GENESIS)  # fmt: skip


def test_every_field_changes_the_hash() -> None:
    original = event_hash(**BASE)  # type: ignore[arg-type]
    changes = dict(seq=2, incident_id="inc-2", kind="audit", actor="bob", at=6,
                   data={"text": "y"}, prev_hash="1" * 64)  # fmt: skip
    for name, value in changes.items():
        assert event_hash(**{**BASE, name: value}) != original, name  # type: ignore[arg-type]


def test_canonical_json_ignores_key_order_and_renders_bytes_and_enums() -> None:
    class Color(enum.Enum):
        RED = "red"

    assert canonical_json({"b": 1, "a": b"\x01"}) == canonical_json({"a": b"\x01", "b": 1})
    assert canonical_json({"a": b"\x01", "c": Color.RED}) == '{"a":"0x01","c":"red"}'


def test_metrics_are_differences_of_the_recorded_moments() -> None:
    incident = Incident(onset_at=1_000, detected_at=4_000, contained_at=10_000, recovered_at=None,
                        first_block=10, detected_block=12, contained_block=13)  # fmt: skip
    m = incident_metrics(incident)
    assert (m.ttd_ms, m.ttc_ms, m.ttr_ms, m.ttd_blocks, m.ttc_blocks) == (3_000, 6_000, None, 2, 1)
