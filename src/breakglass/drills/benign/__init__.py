"""Benign traffic: a seeded, deterministic busy day on the reference venue — what false positives are
measured on.

Traders open and close positions (directly and through keeper orders), add margin, trade the thin pool;
LPs deposit and redeem; the feed operator moves ETH and BTC through a volatile day (+15% and -15% swings);
the price keeper pushes prices through the forwarder; a liquidator closes positions the moves broke; and
governance acts through the Safe and the timelock. Transactions are decided on the state at the start of
each block, like real users seeing the latest block, and never ones a real user's front end would refuse,
so every revert is reported as unexpected.
"""

from __future__ import annotations

from breakglass.drills.benign.devnet import run_on_fresh_devnet
from breakglass.drills.benign.report import BenignConfig, BenignReport
from breakglass.drills.benign.traffic import BenignTraffic

__all__ = ["BenignConfig", "BenignReport", "BenignTraffic", "run_on_fresh_devnet"]
