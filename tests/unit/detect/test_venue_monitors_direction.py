"""The shipped venue monitors know direction and state (issue 21): an LP gain is not a drain, an honest
redemption at a stable share price is not extraction, a round trip at one share price is not a profit,
and the thin market's open-interest limit follows the pool's depth rather than a literal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from breakglass.detect.expr import Expression, to_cel

EXAMPLE = Path(__file__).parents[3] / "examples" / "venue.yaml"
MONITORS = {m["id"]: m for m in yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["monitors"]}
USD = 10**6


def holds(monitor: str, values: dict[str, Any]) -> bool:
    source = MONITORS[monitor].get("expect") or MONITORS[monitor]["where"]
    return bool(Expression(source, monitor).holds({k: to_cel(v) for k, v in values.items()}))


def lp(assets: float, shares: float, cash: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"assets": int(assets * USD), "shares": int(shares * 10**18)}
    if cash is not None:
        out["cash"] = int(cash * USD)
    return out


@pytest.mark.parametrize(("after", "ok"), [(1.055, True), (1.2, True), (0.97, True), (0.94, False)])
def test_share_price_step_fires_on_a_loss_to_the_lps_never_on_their_gain(after: float, ok: bool) -> None:
    before = lp(10_000_000, 10_000_000)
    now = lp(10_000_000 * after, 10_000_000)
    assert holds("share-price-step", {**now, "prev": before}) is ok


def test_lp_value_extraction_tells_a_bank_run_from_a_drain() -> None:
    before = lp(10_000_000, 10_000_000, cash=10_000_000)
    # a third of the vault redeemed at its share price: cash leaves, the price per share holds
    run = lp(6_700_000, 6_700_000, cash=6_700_000)
    assert holds("lp-value-extraction", {**run, "prev": before})
    # 300k taken beyond the redeemers' claim: cash leaves and the remaining LPs are poorer
    drain = lp(9_700_000 - 300_000, 9_700_000, cash=9_400_000)
    assert not holds("lp-value-extraction", {**drain, "prev": before})
    # traders' unrealized losses move the share price up with no cash moving: quiet
    assert holds("lp-value-extraction", {**lp(10_500_000, 10_000_000, cash=10_000_000), "prev": before})


def _round_trip(
    deposit: tuple[int, int], withdraw: tuple[int, int], same: bool = True
) -> list[dict[str, Any]]:
    account = "0x" + "ab" * 20
    other = account if same else "0x" + "cd" * 20
    return [
        {"contract": "vault", "event": "Deposit",
         "args": {"account": account, "assets": deposit[0], "shares": deposit[1]}},
        {"contract": "vault", "event": "Withdraw",
         "args": {"account": other, "assets": withdraw[0], "shares": withdraw[1]}},
    ]  # fmt: skip


def test_vault_round_trip_looks_at_profit_not_shape() -> None:
    where = "vault-round-trip"
    shares = 10**18  # per USD, as the vault mints
    # an epoch zap: deposits 100k and redeems 80k worth in one transaction, both at one share price
    zap = _round_trip((100_000 * USD, 100_000 * shares), (80_000 * USD, 80_000 * shares))
    assert not _matches(where, zap)
    # Harvest: shares bought 3% cheaper than they are redeemed, in one transaction
    harvest = _round_trip((20_000_000 * USD, 20_600_000 * shares), (20_600_000 * USD, 20_000_000 * shares))
    assert _matches(where, harvest)
    # two accounts: not a round trip
    assert not _matches(where, _round_trip((1 * USD, shares), (2 * USD, shares), same=False))


def _matches(monitor: str, logs: list[dict[str, Any]]) -> bool:
    source = MONITORS[monitor]["where"]
    return bool(Expression(source, monitor).holds({"logs": to_cel(logs)}))


@pytest.mark.parametrize(
    ("longs", "usd", "asset", "ok"),
    [
        (475_000, 1_000_000, 1_000_000, True),  # a cap raised to 500k by governance, filled: quiet
        (700_000, 1_000_000, 1_000_000, False),  # slow-squeeze's open long #1
        (700_000, 2_000_000, 500_000, False),  # the attacker's THIN buys doubled the USD side: k is the same
        (900_000, 2_000_000, 2_000_000, True),  # a pool twice as deep bears more
    ],
)
def test_thin_open_interest_follows_the_pools_depth(longs: int, usd: int, asset: int, ok: bool) -> None:
    values = {
        "oi": {"longs": longs * USD, "shorts": 100_000 * USD},
        "usd": usd * USD,
        "asset": asset * 10**18,
    }
    assert holds("thin-open-interest", values) is ok
