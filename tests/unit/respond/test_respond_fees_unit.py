"""Fee arithmetic: normal price, outbidding a pending transaction, bumps that nodes accept, the cap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from breakglass.config.playbooks import FeeConfig
from breakglass.respond import FeePolicy, FeeQuote, Fees, PendingFees

GWEI = 10**9


def fees(cap_gwei: int = 10_000) -> FeePolicy:
    return FeePolicy(
        FeeConfig(priority_fee_gwei=2, base_fee_multiplier=2, outbid_margin=0.25, bump_factor=1.25),
        cap_gwei * GWEI,
    )


def test_the_normal_price_is_twice_the_base_fee_plus_the_tip() -> None:
    assert fees().price(FeeQuote(10 * GWEI, 1 * GWEI)) == Fees(22 * GWEI, 2 * GWEI)


@given(
    base=st.integers(0, 500 * GWEI),
    tip=st.integers(0, 200 * GWEI),
    headroom=st.integers(0, 200 * GWEI),
    legacy=st.booleans(),
)
def test_an_outbid_tip_is_strictly_above_the_pending_transactions_effective_tip(
    base: int, tip: int, headroom: int, legacy: bool
) -> None:
    pending = PendingFees(gas_price=base + tip) if legacy else PendingFees(base + tip + headroom, tip)
    ours = fees(cap_gwei=10**6).price(FeeQuote(base, 0), pending)
    their_tip = pending.effective_tip(base)
    assert ours.max_priority_fee_per_gas > their_tip * 1.25
    assert ours.max_fee_per_gas >= base + ours.max_priority_fee_per_gas  # includable at this base fee


@given(max_fee=st.integers(1, 10**6 * GWEI), tip_share=st.floats(0, 1))
def test_a_bump_raises_both_fields_by_more_than_the_ten_percent_nodes_require(
    max_fee: int, tip_share: float
) -> None:
    old = Fees(max_fee, int(max_fee * tip_share))
    new = fees(cap_gwei=10**8).bump(old, FeeQuote(0, 0))
    assert new.max_fee_per_gas >= old.max_fee_per_gas * 1.1
    assert new.max_priority_fee_per_gas >= old.max_priority_fee_per_gas * 1.1


def test_prices_never_exceed_the_policy_cap() -> None:
    capped = fees(cap_gwei=50).price(FeeQuote(40 * GWEI, 0), PendingFees(1000 * GWEI, 900 * GWEI))
    assert capped == Fees(50 * GWEI, 50 * GWEI)
