"""Exactly once on a real anvil: repeated findings, restarts, and crashes on either side of the send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from respond_support import PAUSE_ONLY, Harness, Venue, finding

from breakglass.bus import Topics
from breakglass.errors import RpcError
from breakglass.respond import ActionStep, HttpRpc

pytestmark = pytest.mark.node


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no handler in the library swallows it."""


class CrashingRpc(HttpRpc):
    """A real RPC client that dies before (``before=True``) or right after the raw transaction is sent."""

    def __init__(self, url: str, *, before: bool) -> None:
        super().__init__(url)
        self.before = before

    async def call(self, method: str, *params: Any) -> Any:
        if method == "eth_sendRawTransaction" and self.before:
            raise Crash
        result = await super().call(method, *params)
        if method == "eth_sendRawTransaction":
            raise Crash
        return result


async def test_a_repeated_finding_sends_each_containment_call_once(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue)
    actions = harness.bus.subscribe(Topics.ACTIONS, "test")
    responder = await harness.responder()
    first = await responder.handle(finding())
    assert [e.step for e in first] == [ActionStep.SUBMITTED] * 3 + [ActionStep.NOTIFY]
    for event in first[:3]:
        assert (await responder.relayer.wait(event.key)).step is ActionStep.CONFIRMED  # type: ignore[union-attr]
    again = await responder.handle(finding())
    assert [e.step for e in again] == [ActionStep.DUPLICATE] * 4
    # A second attack transaction is a new finding: its targeted actions are new keys, but the calls are
    # the ones just sent (same attacker, same market): satisfied by them; the global pause is a duplicate.
    other = await responder.handle(finding(tx="0x" + "cd" * 32))
    assert [e.step for e in other] == [
        ActionStep.SATISFIED,
        ActionStep.SATISFIED,
        ActionStep.DUPLICATE,
        ActionStep.NOTIFY,
    ]
    # Another attacker in another market: sent.
    third = await responder.handle(finding(market="8", attacker="0x" + "0b" * 20, tx="0x" + "ef" * 32))
    assert [e.step for e in third] == [
        ActionStep.SUBMITTED,
        ActionStep.SUBMITTED,
        ActionStep.DUPLICATE,
        ActionStep.NOTIFY,
    ]
    assert (
        venue.view("paused")
        and venue.view("marketPaused", 7)
        and venue.view("blocked", venue.w3.to_checksum_address("0x000000000000000000000000000000000000a77a"))
    )
    assert venue.view("marketPaused", 8)
    assert venue.guardian_nonce() == 5
    published = [await anext(actions) for _ in range(4)]
    assert [e.step for e in published] == [ActionStep.SUBMITTED] * 3 + [ActionStep.NOTIFY]


async def test_a_restarted_responder_does_not_pause_again(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    first = await harness.responder()
    [sent] = await first.handle(finding())
    await first.relayer.wait(sent.key)  # type: ignore[union-attr]
    await first.close()
    second = await harness.responder()
    [again] = await second.handle(finding())
    assert again.step is ActionStep.DUPLICATE
    assert venue.guardian_nonce() == 1


@pytest.mark.parametrize("before", [True, False], ids=["crash-after-ledger-before-send", "crash-after-send"])
async def test_a_crash_mid_flight_is_finished_by_the_next_process_with_the_same_transaction(
    venue: Venue, harness_factory: Callable[..., Harness], before: bool
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    doomed = await harness.responder(rpc=CrashingRpc(venue.node.url, before=before))
    with pytest.raises(Crash):
        await doomed.handle(finding())
    rows = await doomed.ledger.rows()
    assert [r.step for r in rows] == ["intent", "signed"]  # durable before the send, whatever came next
    signed_hash = rows[-1].tx_hash
    assert venue.view("paused") is (not before)

    restarted = await harness.responder()  # start() recovers: re-broadcasts the very same signed bytes
    done = await restarted.relayer.wait(rows[-1].key)  # type: ignore[union-attr]
    assert done.step is ActionStep.CONFIRMED and done.tx_hash == signed_hash
    assert venue.view("paused")
    [again] = await restarted.handle(finding())
    assert again.step is ActionStep.DUPLICATE
    assert venue.guardian_nonce() == 1  # one nonce, one transaction: the pause was sent exactly once
    assert restarted.relayer.nonce == 1  # type: ignore[union-attr]


async def test_the_same_finding_handled_concurrently_twice_sends_each_call_once(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue)
    responder = await harness.responder()
    first, second = await asyncio.gather(responder.handle(finding()), responder.handle(finding()))
    steps = sorted(e.step for e in [*first, *second] if e.step is not ActionStep.NOTIFY)
    assert steps.count(ActionStep.SUBMITTED) == 3 and steps.count(ActionStep.DUPLICATE) >= 3
    for event in [*first, *second]:
        if event.step is ActionStep.SUBMITTED:
            await responder.relayer.wait(event.key)  # type: ignore[union-attr]
    assert venue.guardian_nonce() == 3 and responder.relayer.nonce == 3  # type: ignore[union-attr]


async def test_two_first_findings_at_once_on_a_cold_responder_get_distinct_nonces(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue)
    responder = await harness.responder(start=False)  # both findings arrive before anyone called start()
    first, second = await asyncio.gather(
        responder.handle(finding()),
        responder.handle(finding(market="8", attacker="0x" + "0b" * 20, tx="0x" + "cd" * 32)),
    )
    sent = [e for e in [*first, *second] if e.step is ActionStep.SUBMITTED]
    assert len(sent) == 5 and sorted(e.nonce for e in sent) == [0, 1, 2, 3, 4]  # type: ignore[type-var]
    for event in sent:
        assert (await responder.relayer.wait(event.key)).step is ActionStep.CONFIRMED  # type: ignore[union-attr]
    assert venue.guardian_nonce() == 5


class FlakySendRpc(HttpRpc):
    """The node drops the first eth_sendRawTransaction on the floor (a connection reset)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.failures = 1

    async def call(self, method: str, *params: Any) -> Any:
        if method == "eth_sendRawTransaction" and self.failures:
            self.failures -= 1
            raise RpcError(method, "transport: ConnectError", recoverable=True)
        return await super().call(method, *params)


async def test_a_send_lost_in_a_node_hiccup_is_sent_again_at_the_next_poll_not_re_signed(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    responder = await harness.responder(rpc=FlakySendRpc(venue.node.url))
    [sent] = await responder.handle(finding())
    assert sent.step is ActionStep.SUBMITTED and "ConnectError" in str(sent.detail["broadcast_error"])
    assert not venue.view("paused")
    done = await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
    assert (
        done.step is ActionStep.CONFIRMED
        and done.tx_hash == sent.tx_hash
        and done.detail["replacements"] == 0
    )
    assert venue.view("paused") and venue.guardian_nonce() == 1


async def test_a_breach_predicted_while_pending_is_not_paused_again_when_the_block_path_sees_it(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    """Issue 20 item 1: the pending finding pauses; the same breach seen mined two blocks later than
    simulated (after a restart, too) is that breach, not a new one; a breach far later is a new one."""
    from dataclasses import replace

    from breakglass.domain import FindingStage, breach_of

    per_breach = """
    - id: contain
      match: {monitors: [oracle-deviation]}
      actions:
        - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
    """
    harness = harness_factory(venue, per_breach)
    scope = breach_of("oracle-deviation", 31337, {"market": "7"}, 0).split("@")[0]
    pending = replace(
        finding(), stage=FindingStage.PENDING, block_number=40, fingerprint="", breach=f"{scope}@40"
    )
    first = await harness.responder()
    [sent] = await first.handle(pending)
    assert sent.step is ActionStep.SUBMITTED
    await first.relayer.wait(sent.key)  # type: ignore[union-attr]
    await first.close()
    second = await harness.responder()  # a restart between the pending pause and the mined breach
    mined = replace(finding(tx=None), block_number=42, fingerprint="", breach=f"{scope}@42")  # type: ignore[arg-type]
    [again] = await second.handle(mined)
    assert again.step is ActionStep.DUPLICATE and again.key == sent.key
    assert venue.guardian_nonce() == 1
    later = replace(finding(tx=None), block_number=400, fingerprint="", breach=f"{scope}@400")  # type: ignore[arg-type]
    [new] = await second.handle(later)
    assert new.key != sent.key and new.step is not ActionStep.DUPLICATE  # (the market is paused already)
