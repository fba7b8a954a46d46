"""Governance: a real Safe v1.4.1 (2 of 3) proposes to the timelock; only governance undoes a pause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from web3.exceptions import ContractLogicError

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.venue import Venue, dev_key, role_key
from breakglass.devnet.venue.governance import execute, schedule
from breakglass.devnet.venue.safe import exec_safe_tx
from breakglass.errors import DevnetError

pytestmark = pytest.mark.node

RevertCode = Callable[[Any, str], str]


def test_safe_schedules_and_timelock_executes_an_unpause_after_the_delay(
    venue: Venue, chain: Anvil, revert_code: RevertCode
) -> None:
    guard = venue.guard
    venue.send(venue.key("guardian"), guard.functions.pauseVenue())
    proposal = schedule(venue, guard.address, guard.functions.unpauseVenue()._encode_transaction_data())
    timelock = venue["timelock"].functions
    assert timelock.isOperationPending(proposal.operation_id).call()
    with pytest.raises(
        ContractLogicError, match=revert_code(venue["timelock"], "TimelockUnexpectedOperationState")
    ):
        timelock.execute(proposal.target, 0, proposal.data, b"\x00" * 32, proposal.salt).call()
    chain.rpc("evm_increaseTime", timelock.getMinDelay().call() + 1)
    chain.mine()
    execute(venue, proposal)
    assert timelock.isOperationDone(proposal.operation_id).call()
    assert not guard.functions.isVenuePaused().call()


def test_governance_ratifies_a_guardian_pause_so_it_does_not_lapse(venue: Venue, chain: Anvil) -> None:
    guard = venue.guard
    venue.send(venue.key("guardian"), guard.functions.pauseMarket(2))
    proposal = schedule(venue, guard.address, guard.functions.ratifyMarketPause(2)._encode_transaction_data())
    # the pause window is longer than the timelock delay: governance ratifies while it still holds
    chain.rpc("evm_increaseTime", venue["timelock"].functions.getMinDelay().call() + 1)
    chain.mine()
    assert guard.functions.isMarketPaused(2).call()
    execute(venue, proposal)
    chain.rpc("evm_increaseTime", guard.functions.pauseWindow().call() * 10)
    chain.mine()
    assert guard.functions.isMarketPaused(2).call()


def test_one_safe_owner_alone_cannot_schedule(venue: Venue) -> None:
    timelock = venue["timelock"]
    call = timelock.functions.schedule(venue.guard.address, 0, b"", b"\x00" * 32, b"\x01" * 32, 3600)
    with pytest.raises(DevnetError):
        exec_safe_tx(venue.w3, venue["safe"], timelock.address, call._encode_transaction_data(),
                     [role_key("safe_owner_1")], role_key("safe_owner_1"))  # fmt: skip


def test_nobody_but_the_timelock_governs(venue: Venue, revert_code: RevertCode) -> None:
    for who in (role_key("deployer").address, venue["safe"].address, dev_key(12).address):
        with pytest.raises(
            ContractLogicError, match=revert_code(venue.guard, "AccessControlUnauthorizedAccount")
        ):
            venue.guard.functions.unpauseVenue().call({"from": who})
