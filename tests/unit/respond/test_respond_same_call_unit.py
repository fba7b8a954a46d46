"""Which earlier send satisfies an identical guardian call: within ``SAME_CALL_BLOCKS`` of its finding's
block, and only while the earlier call has not failed."""

from __future__ import annotations

from typing import Any

from breakglass.bus import InProcessBus
from breakglass.domain import Finding, Severity
from breakglass.respond import ActionStep
from breakglass.respond.ledger import LedgerRow
from breakglass.respond.playbook import PlaybookBook
from breakglass.respond.responder import SAME_CALL_BLOCKS, Responder

KEY = "breach@1/contain-market.pause-market/digest"


class History:
    """The one ledger read the decision makes: the first call's history."""

    def __init__(self, *steps: ActionStep) -> None:
        self.steps = steps

    async def history(self, key: str) -> list[LedgerRow]:
        assert key == KEY
        return [
            LedgerRow(key=key, step=s.value, playbook="contain-market", action="pause-market",
                      target="venue.pauseMarket(0)", fingerprint="f", monitor_id="m", tx_hash="0xaa",
                      nonce=0, detail={}, at_ms=0.0)
            for s in self.steps
        ]  # fmt: skip


def responder(*steps: ActionStep) -> Responder:
    policy: Any = object()  # not consulted by the decision
    made = Responder(book=PlaybookBook([]), policy=policy, ledger=History(*steps), bus=InProcessBus())  # type: ignore[arg-type]
    made._sent["digest"] = (100, KEY)
    return made


def at(block: int) -> Finding:
    return Finding(
        monitor_id="price-push", severity=Severity.CRITICAL, chain_id=1, block_number=block, title="t"
    )


async def test_a_call_in_flight_or_confirmed_satisfies_the_same_call_within_the_window() -> None:
    for last in (ActionStep.SIGNED, ActionStep.SUBMITTED, ActionStep.REPLACED, ActionStep.CONFIRMED):
        first = await responder(ActionStep.INTENT, ActionStep.SIGNED, last)._sent_before("digest", at(100))
        assert first is not None and first.step is last and first.key == KEY
    edge = responder(ActionStep.INTENT, ActionStep.SIGNED, ActionStep.SUBMITTED)
    assert await edge._sent_before("digest", at(100 + SAME_CALL_BLOCKS)) is not None
    assert await edge._sent_before("digest", at(100 - SAME_CALL_BLOCKS)) is not None  # a pending finding's


async def test_a_failed_call_another_call_or_one_outside_the_window_satisfies_nothing() -> None:
    failed = responder(ActionStep.INTENT, ActionStep.SIGNED, ActionStep.SUBMITTED, ActionStep.FAILED)
    assert await failed._sent_before("digest", at(100)) is None
    sent = responder(ActionStep.INTENT, ActionStep.SIGNED, ActionStep.SUBMITTED)
    assert await sent._sent_before("other", at(100)) is None
    assert await sent._sent_before("digest", at(101 + SAME_CALL_BLOCKS)) is None
    assert await sent._sent_before("digest", at(99 - SAME_CALL_BLOCKS)) is None
    reorged = responder(ActionStep.INTENT, ActionStep.SIGNED, ActionStep.CONFIRMED, ActionStep.REORGED)
    assert await reorged._sent_before("digest", at(100)) is not None  # re-sent by the relayer, still one call
