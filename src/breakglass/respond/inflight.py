"""Guardian transactions as the relayer holds them: planned (simulated, unsigned) and in flight (signed).

``InFlight`` is one idempotency key's transaction between its first broadcast and a receipt: one
nonce, every hash signed for it (replacements), the latest signed bytes. ``from_rows`` rebuilds it from
the ledger after a restart, or when a reorg reopens a key that had closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.respond.calls import ContractCall
from breakglass.respond.fees import Fees
from breakglass.respond.ledger import LedgerRow

__all__ = ["TX_STEPS", "InFlight", "PlannedTx", "tx_detail"]

TX_STEPS = frozenset(
    {
        ActionStep.SIGNED,
        ActionStep.SUBMITTED,
        ActionStep.REPLACED,
        ActionStep.CONFIRMED,
        ActionStep.FAILED,
        ActionStep.REORGED,
    }
)
"""Steps of a guardian transaction's life (ratification steps come after and reopen nothing)."""


@dataclass(frozen=True, slots=True)
class PlannedTx:
    """What ``execute`` would send for a call, simulated, unsigned."""

    call: ContractCall
    sender: str
    chain_id: int
    nonce: int
    gas_estimate: int
    gas: int
    fees: Fees

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.call.address,
            "function": self.call.signature,
            "args": [a if not isinstance(a, bytes) else "0x" + a.hex() for a in self.call.args],
            "data": "0x" + self.call.data.hex(),
            "value": 0,
            "chain_id": self.chain_id,
            "nonce": self.nonce,
            "gas_estimate": self.gas_estimate,
            "gas": self.gas,
            "max_fee_per_gas": self.fees.max_fee_per_gas,
            "max_priority_fee_per_gas": self.fees.max_priority_fee_per_gas,
        }


@dataclass
class InFlight:
    """A sent transaction awaiting its receipt (one nonce, one or more hashes)."""

    event: ActionEvent
    nonce: int
    to: str
    data: bytes
    gas: int
    fees: Fees
    hashes: list[str] = field(default_factory=list)
    raw: bytes = b""
    sent_block: int = 0
    delivered: bool = True
    """False while the node has not accepted the latest bytes: ``poll()`` sends them again first."""

    @classmethod
    def from_rows(cls, rows: list[LedgerRow], head: int) -> InFlight:
        """From a key's ledger rows that carry signed bytes (oldest first): the latest one is sent."""
        last = rows[-1]
        detail = last.detail or {}
        fees = Fees(int(detail["max_fee_per_gas"]), int(detail["max_priority_fee_per_gas"]))
        return cls(
            last.event(),
            int(last.nonce or 0),
            str(detail["to"]),
            bytes.fromhex(detail["data"][2:]),
            int(detail["gas"]),
            fees,
            [str(r.tx_hash) for r in rows],
            bytes.fromhex(str(last.raw_tx)[2:]),
            head,
        )


def tx_detail(to: str, data: bytes, gas: int, fees: Fees) -> dict[str, Any]:
    """What a signed or replaced step records of its transaction (enough to rebuild it)."""
    return {
        "to": to,
        "data": "0x" + data.hex(),
        "gas": gas,
        "max_fee_per_gas": fees.max_fee_per_gas,
        "max_priority_fee_per_gas": fees.max_priority_fee_per_gas,
    }
