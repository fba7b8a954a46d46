"""No key material in any log line (JSON or console) nor in the database, across a busy responder run."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
import structlog
from respond_support import Harness, Venue, finding

from breakglass.logs import configure_logging, get_logger
from breakglass.respond import ActionStep

pytestmark = pytest.mark.node

BUSY = """
- id: busy
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
    - {kind: call, id: unpause, contract: venue, function: unpause}
    - {kind: call, id: bad-template, contract: venue, function: blockAccount, args: ["{evidence.nobody}"]}
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def forms(key: str) -> list[str]:
    bare = key.removeprefix("0x")
    return [bare, "0x" + bare, bare.upper(), bare[:32], bare[32:]]


@pytest.mark.parametrize("json", [True, False], ids=["json", "console"])
async def test_a_responder_run_with_a_real_key_logs_no_key_material(
    venue: Venue, harness_factory: Callable[..., Harness], json: bool
) -> None:
    harness = harness_factory(venue, BUSY)
    stream = io.StringIO()
    configure_logging(json=json, level="debug", redactor=harness.redactor, stream=stream)
    responder = await harness.responder(vet=False)  # the unpause is refused at run time, and logged
    events = await responder.handle(finding())
    assert [e.step for e in events] == [ActionStep.SUBMITTED, ActionStep.REFUSED, ActionStep.FAILED]
    await responder.relayer.wait(events[0].key)  # type: ignore[union-attr]
    await responder.dry_run(finding(market="9"))
    await responder.start()
    # Code that carelessly logs the key (a debugging line, an exception text) is still covered.
    key = venue.guardian_key
    log = get_logger("test")
    log.warning("careless", note=f"guardian key is {key}", bare=key[2:], obj=repr(responder.relayer))
    try:
        raise ValueError(f"boom {key[2:].upper()}")
    except ValueError:
        log.exception("respond.crash")

    text = stream.getvalue()
    assert "respond.submitted" in text and "respond.refused" in text and "careless" in text
    assert venue.guardian.lower() in text.lower()  # the address is logged; only the key must not be
    for form in forms(key):
        assert form not in text and form.lower() not in text.lower()
    database = (venue.manifest.parent / "bg.db").read_bytes()
    for form in forms(key):
        assert form.encode() not in database and bytes.fromhex(key[2:]) not in database
