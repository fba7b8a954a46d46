"""Live events: JSON rendering of domain objects and the SSE wire format."""

from __future__ import annotations

import json

from breakglass.api.events import LiveEvent, jsonable, sse_frame
from breakglass.domain import Finding, Severity


def test_a_finding_becomes_plain_json_with_its_severity_by_name() -> None:
    finding = Finding("oracle-dev", Severity.CRITICAL, 31337, 12, "price deviates",
                      evidence={"raw": b"\x01\x02", "ratio": 1.5})  # fmt: skip
    data = jsonable(finding)
    assert data["severity"] == "critical"
    assert data["evidence"] == {"raw": "0x0102", "ratio": 1.5}
    assert data["fingerprint"] == finding.fingerprint
    json.dumps(data)  # must not raise


def test_an_sse_frame_names_the_event_and_splits_multiline_data() -> None:
    frame = sse_frame(LiveEvent(3, "incidents", '{"a":1}\n{"b":2}'))
    assert frame == 'id: 3\nevent: incidents\ndata: {"a":1}\ndata: {"b":2}\n\n'
