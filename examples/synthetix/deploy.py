"""Deploy Synthetix PerpsV2 (the npm package ``synthetix``, pinned in package-lock.json) on a devnet.

Nothing here is Synthetix code: the contracts are the bytecode and ABIs the Synthetix authors published in
``node_modules/synthetix/publish/deployed/sepolia-ovm/deployment.json`` (their own build, solc 0.5.16, the
one they deployed to OP Sepolia). This script only links their libraries and wires their contracts the way
their deploy tool does: an ``AddressResolver`` names every contract, each contract rebuilds its cache from
it, the perps market sits behind a ``ProxyPerpsV2`` router, and ``SystemStatus`` holds the emergency powers
(suspensions), with its per-section access control.

What is deployed: the perps core (``AddressResolver``, ``FlexibleStorage``, ``SystemSettings``,
``SystemStatus``, ``ExchangeRates``, ``CircuitBreaker``, ``Exchanger``, ``ExchangeState``, ``FeePool``, the
sUSD synth with its ``TokenState`` and ``ProxyERC20``, ``FuturesMarketManager``, ``PerpsV2MarketSettings``,
``PerpsV2ExchangeRate``) and two PerpsV2 markets (sETHPERP, sBTCPERP: market, views, liquidations, state and
proxy each). What is not: the SNX staking side (Synthetix, Issuer, the debt pool's accounting), the
off-chain (Pyth) order path, rewards. sUSD, which stakers mint against SNX on a real deployment, is minted
here by the ``issuer`` account, registered in the resolver under the ``Issuer`` name (the only name a
Synth accepts mints from besides the markets' manager). Names a deployed contract requires but never calls
on the paths exercised here resolve to ``UNUSED`` (an address without code), which is what their
``rebuildCache`` needs.

Prices: a Chainlink-style feed per asset (``contracts/mocks/MockAggregator.sol``, the devnet's oracle
network), added to ``ExchangeRates`` as Synthetix adds Chainlink's.

Run it alone: ``python examples/synthetix/deploy.py`` starts anvil, deploys, writes the manifest to
``.breakglass/synthetix/manifest.json`` and stops the node (``--keep`` leaves it running).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from breakglass.devnet import Anvil, AnvilOptions
from breakglass.devnet.manifest import ContractRecord, Manifest
from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.toolchain import project_root

ROOT = project_root()
PACKAGE = ROOT / "node_modules" / "synthetix"
ARTIFACTS = PACKAGE / "publish" / "deployed" / "sepolia-ovm" / "deployment.json"

UNIT = 10**18
UNUSED = to_checksum_address("0x000000000000000000000000000000000000dEaD")
"""Resolved for names a contract lists but the devnet never calls (``rebuildCache`` needs an address)."""

MARKETS: dict[str, dict[str, Any]] = {
    # from node_modules/synthetix/publish/deployed/local-ovm/perpsv2-markets.json (their local settings)
    "sETHPERP": {"asset": "sETH", "price": 2_000, "maxMarketValue": 20_000, "skewScale": 1_000_000},
    "sBTCPERP": {"asset": "sBTC", "price": 60_000, "maxMarketValue": 1_500, "skewScale": 50_000},
}

# dev mnemonic accounts (docs/venue.md uses the same indices for the same roles)
ROLES = {"owner": 0, "guardian": 1, "keeper": 2, "oracle": 6, "trader_a": 7, "trader_b": 8}


def b32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def dec(value: str | float | int) -> int:
    return int(Decimal(str(value)) * UNIT)


@dataclass
class Deployment:
    """What was deployed: contracts by manifest name, and the role accounts."""

    w3: Web3
    rpc_url: str
    records: dict[str, ContractRecord] = field(default_factory=dict)
    accounts: dict[str, ChecksumAddress] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    def contract(self, name: str) -> Contract:
        rec = self.records[name]
        return self.w3.eth.contract(address=to_checksum_address(rec.address), abi=rec.abi)

    def manifest(self) -> Manifest:
        return Manifest(
            chain_id=self.w3.eth.chain_id,
            rpc_url=self.rpc_url,
            contracts=dict(self.records),
            accounts=dict(self.accounts),
            meta={
                "protocol": "synthetix",
                "package": f"synthetix@{package_version()}",
                "artifacts": str(ARTIFACTS.relative_to(ROOT)),
                "unused_names": self.unused,
            },
            deployer=self.accounts["owner"],
            deployment_block=self.w3.eth.block_number,
        )


def package_version() -> str:
    return str(json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"])


class Artifacts:
    """The published sources: bytecode (with library placeholders) and ABI per contract."""

    def __init__(self, path: Path = ARTIFACTS) -> None:
        if not path.exists():
            raise SystemExit(
                f"{path} not found: run `make setup` (npm ci installs the pinned synthetix package)"
            )
        self.sources: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["sources"]
        self.libraries: dict[str, str] = {}

    def abi(self, source: str) -> list[dict[str, Any]]:
        return list(self.sources[source]["abi"])

    def bytecode(self, source: str) -> str:
        code = str(self.sources[source]["bytecode"])
        # solc's placeholder: __$ + keccak256("<file>:<library>")[:34] + $__; the files were flattened
        for placeholder in set(re.findall(r"__\$[0-9a-f]{34}\$__", code)):
            for lib, address in self.libraries.items():
                key = Web3.keccak(text=f"{source}.sol:{lib}").hex().removeprefix("0x")[:34]
                if placeholder == f"__${key}$__":
                    code = code.replace(placeholder, address.lower().removeprefix("0x"))
                    break
            else:
                raise SystemExit(f"{source}: unlinked library placeholder {placeholder}")
        return code


class Deployer:
    def __init__(self, w3: Web3, rpc_url: str, artifacts: Artifacts) -> None:
        self.w3 = w3
        self.art = artifacts
        accounts = w3.eth.accounts
        self.out = Deployment(w3, rpc_url, accounts={r: accounts[i] for r, i in ROLES.items()})
        self.owner = self.out.accounts["owner"]

    def deploy(self, name: str, source: str, *args: Any, abi: list[dict[str, Any]] | None = None) -> Contract:
        factory = self.w3.eth.contract(abi=abi or self.art.abi(source), bytecode=self.art.bytecode(source))
        receipt = self.wait(factory.constructor(*args).transact({"from": self.owner}))
        address = receipt["contractAddress"]
        self.out.records[name] = ContractRecord(
            address=address, abi=abi or self.art.abi(source), artifact=source
        )
        return self.out.contract(name)

    def library(self, source: str) -> None:
        self.deploy(f"lib_{source}", source)
        self.art.libraries[source] = self.out.records.pop(f"lib_{source}").address

    def wait(self, tx_hash: Any) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.005)
        if receipt["status"] != 1:
            raise SystemExit(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def send(self, fn: Any, sender: ChecksumAddress | None = None) -> Any:
        return self.wait(fn.transact({"from": sender or self.owner}))


def deploy_synthetix(w3: Web3, rpc_url: str) -> Deployment:
    d = Deployer(w3, rpc_url, Artifacts())
    owner = d.owner
    for lib in ("SafeDecimalMath", "SystemSettingsLib", "ExchangeSettlementLib"):
        d.library(lib)

    resolver = d.deploy("resolver", "AddressResolver", owner)
    r = resolver.address
    storage = d.deploy("flexible_storage", "FlexibleStorage", r)
    settings = d.deploy("system_settings", "SystemSettings", owner, r)
    status = d.deploy("system_status", "SystemStatus", owner)
    exrates = d.deploy("exchange_rates", "ExchangeRates", owner, r)
    breaker = d.deploy("circuit_breaker", "CircuitBreaker", owner, r)
    exchanger = d.deploy("exchanger", "Exchanger", owner, r)
    exchange_state = d.deploy("exchange_state", "ExchangeState", owner, exchanger.address)
    fee_pool = d.deploy("fee_pool", "FeePool", UNUSED, owner, r)
    susd_state = d.deploy("susd_state", "TokenState", owner, owner)
    susd = d.deploy("susd", "ProxyERC20", owner)
    synth = d.deploy(
        "susd_synth", "MultiCollateralSynth", susd.address, susd_state.address, "Synth sUSD", "sUSD", owner,
        b32("sUSD"), 0, r,
    )  # fmt: skip
    # the token's address is the proxy; the ABI a holder uses is the synth's (ERC-20 + Synth functions)
    d.out.records["susd"] = ContractRecord(
        address=susd.address, abi=d.art.abi("MultiCollateralSynth"), artifact="ProxyERC20"
    )
    d.send(susd.functions.setTarget(synth.address))
    d.send(susd_state.functions.setAssociatedContract(synth.address))
    issuer = d.deploy("issuer", "Issuer", owner, r)
    collateral_state = d.deploy("collateral_manager_state", "CollateralManagerState", owner, owner)
    collateral = d.deploy(
        "collateral_manager", "CollateralManager", collateral_state.address, owner, r, dec(1), dec(1), 0, 0
    )
    d.send(collateral_state.functions.setAssociatedContract(collateral.address))
    integrations = d.deploy("direct_integration_manager", "DirectIntegrationManager", owner, r)
    manager = d.deploy("futures_market_manager", "FuturesMarketManager", owner, r)
    perps_settings = d.deploy("perps_settings", "PerpsV2MarketSettings", owner, r)
    perps_rates = d.deploy("perps_exchange_rate", "PerpsV2ExchangeRate", owner, r)

    names: dict[str, str] = {
        "FlexibleStorage": storage.address,
        "SystemSettings": settings.address,
        "SystemStatus": status.address,
        "ExchangeRates": exrates.address,
        "CircuitBreaker": breaker.address,
        "Exchanger": exchanger.address,
        "ExchangeState": exchange_state.address,
        "FeePool": fee_pool.address,
        "SynthsUSD": synth.address,
        "FuturesMarketManager": manager.address,
        "PerpsV2MarketSettings": perps_settings.address,
        "PerpsV2ExchangeRate": perps_rates.address,
        "DirectIntegrationManager": integrations.address,
        "Issuer": issuer.address,
        "CollateralManager": collateral.address,
    }

    # feeds: the devnet's Chainlink-style aggregators
    build = compile_contracts()
    feed_art = build["MockAggregator"]
    oracle = d.out.accounts["oracle"]
    feeds: dict[str, Contract] = {}
    for key, spec in MARKETS.items():
        factory = w3.eth.contract(abi=feed_art.abi, bytecode=feed_art.bytecode)
        receipt = d.wait(
            factory.constructor(8, f"{spec['asset']} / USD", spec["price"] * 10**8, oracle).transact(
                {"from": owner}
            )
        )
        name = f"feed_{spec['asset'][1:].lower()}"
        d.out.records[name] = ContractRecord(
            address=receipt["contractAddress"], abi=feed_art.abi, artifact="MockAggregator"
        )
        feeds[key] = d.out.contract(name)

    # markets: state + market + views + liquidations behind one routing proxy, as their deploy tool does
    market_proxies: list[str] = []
    for key, spec in MARKETS.items():
        slug = spec["asset"][1:].lower()
        proxy = d.deploy(f"perps_{slug}", "ProxyPerpsV2", owner)
        state = d.deploy(
            f"perps_{slug}_state",
            "PerpsV2MarketState",
            owner,
            [owner],
            b32(spec["asset"]),
            b32(key),
            "0x" + "00" * 20,
        )
        impls = {
            "market": d.deploy(
                f"perps_{slug}_market", "PerpsV2Market", proxy.address, state.address, owner, r
            ),
            "liquidate": d.deploy(
                f"perps_{slug}_liquidate", "PerpsV2MarketLiquidate", proxy.address, state.address, owner, r
            ),
            "views": d.deploy(f"perps_{slug}_views", "PerpsV2MarketViews", state.address, owner, r),
        }
        for impl in impls.values():
            d.send(state.functions.addAssociatedContracts([impl.address]))
        d.send(state.functions.removeAssociatedContracts([owner]))
        d.send(state.functions.linkOrInitializeState())
        abi: list[dict[str, Any]] = []
        seen: set[bytes] = set()
        for impl in impls.values():
            for entry in impl.abi:
                if entry.get("type") != "function":
                    continue
                selector = function_abi_to_4byte_selector(entry)
                if selector in seen or entry["name"] in {
                    "setProxy",
                    "setMessageSender",
                    "proxy",
                    "messageSender",
                    "owner",
                    "nominatedOwner",
                    "nominateNewOwner",
                    "acceptOwnership",
                    "resolver",
                    "rebuildCache",
                    "isResolverCached",
                    "resolverAddressesRequired",
                }:
                    continue
                seen.add(selector)
                is_view = entry.get("stateMutability") in ("view", "pure")
                d.send(proxy.functions.addRoute(selector, impl.address, is_view))
                abi.append(entry)
            abi.extend(e for e in impl.abi if e.get("type") == "event" and e not in abi)
        # the proxy's own surface (owner, routes) plus what it routes: one ABI for the market's address
        abi.extend(e for e in proxy.abi if e.get("type") in ("function", "event") and e not in abi)
        d.out.records[f"perps_{slug}"] = ContractRecord(
            address=proxy.address, abi=abi, artifact="ProxyPerpsV2"
        )
        market_proxies.append(proxy.address)
        names[f"PerpsV2Market{key}"] = impls["market"].address

    # every other name a deployed contract requires: an address without code
    resolvable = [
        n for n, rec in d.out.records.items() if any(e.get("name") == "rebuildCache" for e in rec.abi)
    ]
    resolvable = [n for n in resolvable if d.out.records[n].artifact != "ProxyPerpsV2"]
    required: set[str] = set()
    for name in resolvable:
        c = d.out.contract(name)
        if any(e.get("name") == "resolverAddressesRequired" for e in c.abi):
            for raw in c.functions.resolverAddressesRequired().call():
                required.add(raw.rstrip(b"\0").decode())
    d.out.unused = sorted(required - set(names))
    for missing in sorted(required - set(names)):
        names[missing] = UNUSED
    d.send(resolver.functions.importAddresses([b32(n) for n in names], list(names.values())))
    for name in resolvable:
        c = d.out.contract(name)
        if any(e.get("name") == "rebuildCache" for e in c.abi):
            d.send(c.functions.rebuildCache())

    # settings (their mainnet-ovm params where they apply)
    d.send(settings.functions.setRateStalePeriod(86_400 * 365))
    d.send(settings.functions.setPriceDeviationThresholdFactor(dec(3)))
    d.send(settings.functions.setExchangeDynamicFeeRounds(0))
    for key, feed in feeds.items():
        d.send(exrates.functions.addAggregator(b32(MARKETS[key]["asset"]), feed.address))
    d.send(perps_settings.functions.setMinInitialMargin(dec(50)))
    d.send(perps_settings.functions.setMinKeeperFee(dec(2)))
    d.send(perps_settings.functions.setMaxKeeperFee(dec(1000)))
    d.send(perps_settings.functions.setLiquidationFeeRatio(dec("0.0035")))
    d.send(perps_settings.functions.setKeeperLiquidationFee(dec(1)))
    d.send(manager.functions.addProxiedMarkets(market_proxies))
    for key, spec in MARKETS.items():
        params = (
            dec("0.003"), dec("0.002"), dec("0.001"), 0, dec("0.0001"), 0,  # taker, maker fees
            dec(10), dec(spec["maxMarketValue"]), dec("0.1"), dec(spec["skewScale"]),
            2, 60, 30, 120, 15, 60, b32("oc" + key),
            dec("0.05"), dec(1), dec("0.0025"), dec("0.05"), dec("0.05"),
        )  # fmt: skip
        d.send(perps_settings.functions.setParameters(b32(key), params))

    # emergency powers: the guardian may suspend futures markets, never resume them
    d.send(status.functions.updateAccessControl(b32("Futures"), d.out.accounts["guardian"], True, False))
    return d.out


def mint_susd(w3: Web3, out: Deployment, account: str, amount: int) -> None:
    """Give ``account`` sUSD as stakers get it: minted by the Issuer (impersonated: no SNX staked here)."""
    issuer = out.records["issuer"].address
    w3.provider.make_request("anvil_impersonateAccount", [issuer])
    w3.provider.make_request("anvil_setBalance", [issuer, hex(10**18)])
    try:
        tx = out.contract("susd_synth").functions.issue(account, amount).transact({"from": issuer})
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=60, poll_latency=0.005)
        if receipt["status"] != 1:
            raise SystemExit(f"minting sUSD for {account} reverted")
    finally:
        w3.provider.make_request("anvil_stopImpersonatingAccount", [issuer])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".breakglass" / "synthetix" / "manifest.json")
    parser.add_argument("--keep", action="store_true", help="leave anvil running")
    args = parser.parse_args(argv)
    node = Anvil(AnvilOptions(code_size_limit=0x10000))
    node.start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        out = deploy_synthetix(w3, node.url)
        out.manifest().write(args.out)
        print(f"deployed {len(out.records)} contracts; manifest {args.out}")
    finally:
        if not args.keep:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
