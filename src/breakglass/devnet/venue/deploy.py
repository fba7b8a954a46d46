"""Deploying the reference venue: tokens, guard, oracle, vault, insurance, markets, AMM, Safe + timelock.

``deploy_venue`` returns a ``Venue`` handle; ``deploy_venue_set`` is the ``venue`` deployment set behind
``breakglass devnet up --set venue`` (safe options). Governance is handed to the timelock at the end;
with ``exposed_admin`` the deployer key keeps the admin role (the scenario's compromised key).
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import Wei

from breakglass.devnet.deploy import Deployer
from breakglass.devnet.manifest import ContractRecord
from breakglass.devnet.venue.handle import MARKETS, Venue
from breakglass.devnet.venue.keys import ROLE_INDEX, dev_key, role_key
from breakglass.devnet.venue.options import USD, VenueOptions
from breakglass.devnet.venue.safe import deploy_safe
from breakglass.devnet.venue.tx import transact
from breakglass.errors import DevnetError

__all__ = ["deploy_venue", "deploy_venue_set"]

ZERO = "0x0000000000000000000000000000000000000000"
SEED_TRADERS = (10, 11)


def _tx(d: Deployer, fn: ContractFunction, sender: str | None = None, value: int = 0) -> None:
    tx_hash = fn.transact({"from": sender or d.w3.eth.accounts[0], "value": Wei(value)})
    receipt = d.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise DevnetError(f"venue deployment step {fn.fn_name} reverted")


def deploy_venue(deployer: Deployer, options: VenueOptions | None = None) -> Venue:
    """Deploy and configure the whole venue with ``deployer``'s build; returns a handle to it."""
    opts = options or VenueOptions()
    w3, d = deployer.w3, deployer
    me = w3.eth.accounts[0]
    role = {name: role_key(name).address for name in ROLE_INDEX}
    c: dict[str, Contract] = {}
    c["usd"] = d.deploy("usd", "MockERC20", "Test USD", "tUSD", 6)
    c["thin_token"] = d.deploy("thin_token", "MockERC20", "Thin Token", "THIN", 18)
    c["guardian"] = d.deploy("guardian", "VenueGuard", me, opts.pause_window)
    c["forwarder"] = d.deploy("forwarder", "VenueForwarder")
    c["oracle"] = d.deploy(
        "oracle", "PriceOracle", c["guardian"].address, c["forwarder"].address,
        opts.forwarder_unchecked, opts.spot_oracle, opts.spot_valuation,
    )  # fmt: skip
    c["vault"] = d.deploy("vault", "LPVault", c["usd"].address, c["guardian"].address)
    c["insurance"] = d.deploy(
        "insurance", "InsuranceFund", c["usd"].address, c["guardian"].address, c["vault"].address
    )
    c["feed_eth"] = d.deploy(
        "feed_eth", "MockAggregator", 8, "ETH / USD", opts.eth_price, role["price_keeper"]
    )
    c["feed_btc"] = d.deploy(
        "feed_btc", "MockAggregator", 8, "BTC / USD", opts.btc_price, role["price_keeper"]
    )
    c["amm_thin"] = d.deploy(
        "amm_thin", "ConstantProductPool", c["usd"].address, c["thin_token"].address, opts.ema_window
    )
    for market_id, (key, label) in enumerate(MARKETS):
        c[key] = d.deploy(
            key, "PerpMarket", market_id, label, c["usd"].address, c["guardian"].address,
            c["oracle"].address, c["vault"].address, c["insurance"].address,
            opts.reentrant_refund, opts.donation_unchecked,
        )  # fmt: skip
    c["mixer"] = d.deploy("mixer", "Mixer", c["usd"].address)
    c["flash_lender"] = d.deploy("flash_lender", "FlashLender", c["usd"].address)

    usd, guard, vault = c["usd"].functions, c["guardian"].functions, c["vault"].functions
    # prices and the thin market's pool
    _tx(d, c["oracle"].functions.setSource(0, c["feed_eth"].address, ZERO))
    _tx(d, c["oracle"].functions.setSource(1, c["feed_btc"].address, ZERO))
    _tx(d, c["oracle"].functions.setSource(2, ZERO, c["amm_thin"].address))
    _tx(d, usd.mint(me, opts.amm_usd))
    _tx(d, c["thin_token"].functions.mint(me, opts.amm_asset))
    _tx(d, usd.approve(c["amm_thin"].address, opts.amm_usd))
    _tx(d, c["thin_token"].functions.approve(c["amm_thin"].address, opts.amm_asset))
    _tx(d, c["amm_thin"].functions.addLiquidity(opts.amm_usd, opts.amm_asset))
    # wiring, roles, risk limits
    for market_id, (key, _) in enumerate(MARKETS):
        _tx(d, vault.addMarket(c[key].address))
        _tx(d, c["insurance"].functions.registerMarket(market_id, c[key].address))
        _tx(d, guard.setMaxLeverage(market_id, opts.max_leverage[market_id]))
        cap = opts.thin_oi_cap if market_id == 2 else opts.oi_caps[market_id]
        _tx(d, guard.setOpenInterestCap(market_id, cap))
    _tx(d, vault.setInsurance(c["insurance"].address))
    for role_name, account in (("GUARDIAN_ROLE", "guardian"), ("KEEPER_ROLE", "keeper"),
                               ("PRICE_KEEPER_ROLE", "price_keeper")):  # fmt: skip
        _tx(d, guard.grantRole(Web3.keccak(text=role_name), role[account]))
    # money: LPs, insurance, flash liquidity
    whale = role["lp_whale"]
    _tx(d, usd.mint(whale, opts.lp_liquidity))
    _tx(d, usd.approve(c["vault"].address, opts.lp_liquidity), sender=whale)
    _tx(d, vault.deposit(opts.lp_liquidity), sender=whale)
    for market_id, amount in enumerate(opts.compartments):
        _tx(d, vault.allocate(market_id, amount))
    _tx(d, usd.mint(c["insurance"].address, opts.insurance))
    _tx(d, usd.mint(c["flash_lender"].address, opts.flash_liquidity))

    # governance: a 2-of-3 Safe proposes to the timelock; execution is open after the delay
    owners = [role[f"safe_owner_{i}"] for i in (1, 2, 3)]
    safe = deploy_safe(w3, role_key("deployer"), owners, 2)
    for name, contract in (("safe", safe.safe), ("safe_singleton", safe.singleton),
                           ("safe_proxy_factory", safe.factory)):  # fmt: skip
        d.records[name] = ContractRecord(
            address=contract.address, abi=[dict(i) for i in contract.abi], artifact=name
        )
        c[name] = contract
    c["timelock"] = d.deploy("timelock", "VenueTimelock", opts.timelock_delay, [safe.safe.address], [ZERO])

    venue = Venue(w3, c, opts)
    if opts.seed_positions:
        _seed_positions(venue)
    _hand_over(d, c, me, keep_admin=opts.exposed_admin)
    d.accounts.update(role)
    d.accounts.update({f"trader_{i}": dev_key(i).address for i in SEED_TRADERS})
    venue.accounts.update(d.accounts)
    return venue


def _seed_positions(venue: Venue) -> None:
    """A live venue has open interest: two traders hold long and short positions in every market."""
    w3 = venue.w3
    funder = role_key("deployer")
    # modest leverage (4-5x) so that honest +-15% days do not liquidate the seeded book
    plans: dict[int, list[tuple[str, bool, int, int]]] = {
        10: [("market_eth", True, 375_000, 1_500_000), ("market_btc", True, 250_000, 1_000_000),
             ("market_thin", True, 60_000, 300_000)],
        11: [("market_eth", False, 300_000, 1_200_000), ("market_btc", False, 250_000, 1_000_000),
             ("market_thin", False, 20_000, 100_000)],
    }  # fmt: skip
    for index, positions in plans.items():
        trader = dev_key(index)
        transact_value(w3, funder.address, trader.address, 10 * 10**18)
        total = sum(margin for _, _, margin, _ in positions) * USD
        transact(w3, trader, venue.usd.functions.mint(trader.address, total))
        for key, is_long, margin, size in positions:
            market = venue.contracts[key]
            transact(w3, trader, venue.usd.functions.approve(market.address, margin * USD))
            transact(w3, trader, market.functions.openPosition(is_long, margin * USD, size * USD))


def transact_value(w3: Web3, sender: str, to: str, value: int) -> None:
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": sender, "to": to, "value": Wei(value)}),
        timeout=60,
    )
    if receipt["status"] != 1:
        raise DevnetError(f"funding {to} reverted")


def _hand_over(d: Deployer, c: dict[str, Contract], me: str, *, keep_admin: bool) -> None:
    guard = c["guardian"].functions
    admin, governor = b"\x00" * 32, Web3.keccak(text="GOVERNOR_ROLE")
    timelock = c["timelock"].address
    _tx(d, guard.grantRole(admin, timelock))
    _tx(d, guard.grantRole(governor, timelock))
    _tx(d, guard.renounceRole(governor, me))
    if not keep_admin:
        _tx(d, guard.renounceRole(admin, me))


def deploy_venue_set(deployer: Deployer, **_: Any) -> None:
    """The ``venue`` deployment set: the safe deployment, every switch off."""
    deploy_venue(deployer, VenueOptions())
