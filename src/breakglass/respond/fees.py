"""EIP-1559 fees for containment transactions: the normal price, outbidding a pending tx, and bumps.

Pure arithmetic on a ``FeeQuote`` (base fee and suggested tip, refreshed off the hot path). Outbidding
makes our effective tip strictly higher than the pending transaction's by ``outbid_margin``, so a
fee-ordered block builder puts the pause first; a bump raises both fields by ``bump_factor`` (nodes
demand at least +10% on each to accept a replacement). Everything is capped by the policy's max fee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from breakglass.config.playbooks import FeeConfig

__all__ = ["FeePolicy", "FeeQuote", "Fees", "PendingFees"]

GWEI = 10**9


@dataclass(frozen=True, slots=True)
class FeeQuote:
    base_fee: int
    suggested_tip: int


@dataclass(frozen=True, slots=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True, slots=True)
class PendingFees:
    """The fees of a pending transaction to outbid (from the mempool stage): EIP-1559 or legacy."""

    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None

    def effective_tip(self, base_fee: int) -> int:
        if self.max_priority_fee_per_gas is not None and self.max_fee_per_gas is not None:
            return max(0, min(self.max_priority_fee_per_gas, self.max_fee_per_gas - base_fee))
        return max(0, (self.gas_price or 0) - base_fee)


class FeePolicy:
    def __init__(self, config: FeeConfig, max_fee_cap: int) -> None:
        self._tip = int(config.priority_fee_gwei * GWEI)
        self._multiplier = config.base_fee_multiplier
        self._margin = config.outbid_margin
        self._bump = config.bump_factor
        self._cap = max_fee_cap

    def price(self, quote: FeeQuote, outbid: PendingFees | None = None) -> Fees:
        """Fees for a new containment transaction; above ``outbid``'s effective tip if given."""
        tip = max(self._tip, quote.suggested_tip)
        if outbid is not None:
            tip = max(tip, math.ceil(outbid.effective_tip(quote.base_fee) * (1 + self._margin)) + 1)
        max_fee = math.ceil(quote.base_fee * self._multiplier) + tip
        return self._capped(Fees(max_fee, tip))

    def bump(self, fees: Fees, quote: FeeQuote) -> Fees:
        """Fees for a replacement: each field up by ``bump_factor``, and at least today's price."""
        today = self.price(quote)
        tip = max(math.ceil(fees.max_priority_fee_per_gas * self._bump) + 1, today.max_priority_fee_per_gas)
        max_fee = max(math.ceil(fees.max_fee_per_gas * self._bump) + 1, today.max_fee_per_gas, tip)
        return self._capped(Fees(max_fee, tip))

    def _capped(self, fees: Fees) -> Fees:
        max_fee = min(fees.max_fee_per_gas, self._cap)
        return Fees(max_fee, min(fees.max_priority_fee_per_gas, max_fee))
