"""Legitimate governance of the venue: the Safe's owners sign a ``schedule`` on the timelock, and anyone
executes it once the delay has passed. Every step is a real Safe and TimelockController transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from breakglass.devnet.venue.handle import Venue
from breakglass.devnet.venue.keys import role_key
from breakglass.devnet.venue.safe import exec_safe_tx
from breakglass.devnet.venue.tx import transact

__all__ = ["Proposal", "execute", "schedule"]

ZERO32 = b"\x00" * 32


@dataclass(frozen=True, slots=True)
class Proposal:
    target: str
    data: bytes
    salt: bytes
    value: int = 0

    @property
    def operation_id(self) -> bytes:
        # TimelockController.hashOperation: keccak256(abi.encode(target, value, data, predecessor, salt))
        encoded = abi_encode(
            ["address", "uint256", "bytes", "bytes32", "bytes32"],
            [self.target, self.value, self.data, ZERO32, self.salt],
        )
        return bytes(Web3.keccak(encoded))


def schedule(
    venue: Venue,
    target: str,
    data: bytes | str,
    *,
    salt: bytes | str = ZERO32,
    signers: Sequence[LocalAccount] | None = None,
    submitter: LocalAccount | None = None,
) -> Proposal:
    """The Safe (2 of its 3 owners by default) schedules ``target.call(data)`` on the timelock."""
    timelock = venue["timelock"]
    raw = bytes(Web3.to_bytes(hexstr=HexStr(data))) if isinstance(data, str) else data
    salt_b = Web3.keccak(text=salt) if isinstance(salt, str) else salt
    proposal = Proposal(Web3.to_checksum_address(target), raw, bytes(salt_b))
    delay = timelock.functions.getMinDelay().call()
    call = timelock.functions.schedule(proposal.target, 0, raw, ZERO32, proposal.salt, delay)
    owners = signers or [role_key("safe_owner_1"), role_key("safe_owner_2")]
    exec_safe_tx(
        venue.w3, venue["safe"], timelock.address, call._encode_transaction_data(), owners,
        submitter or owners[0],
    )  # fmt: skip
    return proposal


def execute(venue: Venue, proposal: Proposal, executor: LocalAccount | None = None) -> None:
    """Execute a scheduled proposal (execution is open to anyone once ready)."""
    timelock = venue["timelock"].functions
    fn = timelock.execute(proposal.target, proposal.value, proposal.data, ZERO32, proposal.salt)
    transact(venue.w3, executor or role_key("safe_owner_1"), fn, gas=1_500_000)
