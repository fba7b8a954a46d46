"""Deployment options of the reference venue: sizes, and one switch per vulnerability a scenario exploits.

Every switch defaults to off: ``VenueOptions()`` is the safe deployment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["USD", "VULNERABILITIES", "VenueOptions"]

USD = 10**6
"""One US dollar in collateral-token units (6 decimals)."""

VULNERABILITIES: dict[str, str] = {
    "spot_oracle": "thin market priced at instant AMM spot instead of its time-weighted average (Mango)",
    "forwarder_unchecked": "price pushes via the trusted forwarder skip the signer's role check (KiloEx)",
    "reentrant_refund": "keeper refunds the execution fee inside the keeper window, no lock (GMX v1)",
    "exposed_admin": "the deployer key keeps the admin role instead of handing it to the timelock",
    "donation_unchecked": "margin donations skip the donor's health check (Euler)",
    "unbounded_thin_oi": "the thin market's open-interest cap is far beyond its AMM depth (dYdX YFI)",
    "spot_valuation": "the LP vault values the thin market at AMM spot (Harvest)",
}


@dataclass(frozen=True, slots=True)
class VenueOptions:
    spot_oracle: bool = False
    forwarder_unchecked: bool = False
    reentrant_refund: bool = False
    exposed_admin: bool = False
    donation_unchecked: bool = False
    unbounded_thin_oi: bool = False
    spot_valuation: bool = False
    # sizes (collateral-token units unless noted)
    lp_liquidity: int = 10_000_000 * USD
    compartments: tuple[int, int, int] = (3_000_000 * USD, 3_000_000 * USD, 1_000_000 * USD)
    insurance: int = 500_000 * USD
    amm_usd: int = 1_000_000 * USD
    amm_asset: int = 1_000_000 * 10**18
    flash_liquidity: int = 50_000_000 * USD
    eth_price: int = 2_000 * 10**8
    btc_price: int = 60_000 * 10**8
    max_leverage: tuple[int, int, int] = (50, 50, 10)
    oi_caps: tuple[int, int, int] = (20_000_000 * USD, 20_000_000 * USD, 400_000 * USD)
    unbounded_thin_cap: int = 10_000_000 * USD
    timelock_delay: int = 3_600
    pause_window: int = 7_200  # longer than the timelock delay, so governance can ratify in time
    ema_window: int = 1_800
    seed_positions: bool = True

    @classmethod
    def with_switches(cls, *names: str) -> VenueOptions:
        unknown = [n for n in names if n not in VULNERABILITIES]
        if unknown:
            raise ValueError(f"unknown vulnerability switch(es) {unknown}; known: {sorted(VULNERABILITIES)}")
        return dataclasses.replace(cls(), **dict.fromkeys(names, True))  # type: ignore[arg-type]

    @property
    def switches(self) -> tuple[str, ...]:
        return tuple(n for n in VULNERABILITIES if getattr(self, n))

    @property
    def thin_oi_cap(self) -> int:
        return self.unbounded_thin_cap if self.unbounded_thin_oi else self.oi_caps[2]
