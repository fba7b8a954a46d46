"""The oracle-misreport exploit and honest traffic on Synthetix PerpsV2, with and without breakglass.

The exploit re-creates the mechanics of the sKRW incident (Synthetix, 24 June 2019): one of the price
sources behind a feed reported a price far off the market, well inside what the contracts accepted, and a
bot traded against the debt pool at that price before anyone could react, then unwound at the corrected
price. Here, on PerpsV2: the ETH feed publishes 1.9x the market (inside Synthetix's own circuit breaker,
whose threshold factor is 3 on this deployment), the attacker opens a 500 ETH short at the wrong price,
the feed corrects, the attacker closes and withdraws. The debt pool pays the profit in freshly minted sUSD.

Public mempool: every step waits two seconds (OP Mainnet's block time, where PerpsV2 runs) in a
fee-ordered mempool from its broadcast before its block is mined. Defended, breakglass sees the
misreport pending (``eth-price-step`` breaks on its simulated post-state), and the guardian's
``SystemStatus.suspendFuturesMarket(sETHPERP)`` outbids it into the same block; every later trade on that
market reverts with "Market suspended".

Honest traffic: traders opening, resizing and closing positions and moving margin, the feeds walking at
most 1% a block, a keeper flagging and liquidating what can be liquidated.

    python examples/synthetix/drill.py exploit [--undefended]
    python examples/synthetix/drill.py honest --blocks 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy import Deployment, b32, dec, deploy_synthetix, mint_susd

from breakglass.devnet import Anvil, AnvilOptions, BlockMode, PublicBlocks
from breakglass.devnet.venue.keys import dev_key
from breakglass.drills.defense import PASSWORD_ENV, Defense, write_keystore
from breakglass.messages.actions import ActionStep

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "breakglass.yaml"
NODE_ARGS = ("--prune-history", "512")
CODE_SIZE_LIMIT = 0x10000  # Synthetix's PerpsV2 delayed-execution module is 26 kB (OP allows it)
BLOCK_TIME = 2  # seconds, as on OP Mainnet: the public-mempool window the suspension has to land in
ETH_PRICE = 2_000
BAD_PRICE = 3_800  # 1.9x: inside the circuit breaker's factor of 3
ATTACK_MARGIN = dec(200_000)
ATTACK_SIZE = dec(500)


@dataclass
class Step:
    label: str
    sender: str
    call: Callable[[], Any]
    exploit: bool = True


@dataclass
class Result:
    scenario: str
    mode: str
    baseline_loss_usd: float
    loss_usd: float
    findings: dict[str, int] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    reverted_steps: list[str] = field(default_factory=list)
    ttc_blocks: int | None = None
    """Blocks from the misreport's inclusion to the suspension's (0: the same block, ahead of it)."""
    market_suspended: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HonestResult:
    blocks: int
    transactions: int
    reverts: int
    liquidations: int
    findings: dict[str, dict[str, int]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    """Automatic actions (intent rows of calls, notifications, escalations): must be empty."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def devnet() -> Iterator[tuple[Anvil, Web3, Deployment]]:
    """anvil (automine) with Synthetix PerpsV2 deployed from the published artifacts."""
    with Anvil(
        AnvilOptions(mode=BlockMode.AUTO, code_size_limit=CODE_SIZE_LIMIT, extra_args=NODE_ARGS)
    ) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        yield node, w3, deploy_synthetix(w3, node.url)


def send(w3: Web3, sender: str, call: Any, *, tip_gwei: float = 1.0) -> str:
    """Broadcast a contract call from an unlocked account (gas sized by hand: a step that reverts at
    inclusion must still be broadcast, as an attacker's bot would)."""
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tip = int(tip_gwei * 10**9)
    tx = call.build_transaction(
        {"from": sender, "gas": 2_000_000, "maxPriorityFeePerGas": tip, "maxFeePerGas": base * 2 + tip,
         "nonce": w3.eth.get_transaction_count(sender, "pending")}
    )  # fmt: skip
    return w3.eth.send_transaction(tx).hex()


def attacker_profit(d: Deployment, attacker: str, start: int) -> int:
    """sUSD the attacker holds plus the margin it can still withdraw, minus what it came with."""
    held = d.contract("susd").functions.balanceOf(attacker).call()
    margin = d.contract("perps_eth").functions.remainingMargin(attacker).call()[0]
    return int(held + margin - start)


def misreport_steps(d: Deployment, attacker: str) -> list[Step]:
    eth, feed, oracle = d.contract("perps_eth"), d.contract("feed_eth"), d.accounts["oracle"]
    return [
        Step("feed misreports ETH at 1.9x", oracle, lambda: feed.functions.updateAnswer(BAD_PRICE * 10**8)),
        Step("short 500 ETH at the wrong price", attacker,
             lambda: eth.functions.modifyPosition(-ATTACK_SIZE, dec(BAD_PRICE * 0.9))),
        Step("feed corrects", oracle, lambda: feed.functions.updateAnswer(ETH_PRICE * 10**8)),
        Step("close at the right price", attacker, lambda: eth.functions.closePosition(dec(ETH_PRICE * 1.1))),
        Step("withdraw", attacker, lambda: eth.functions.withdrawAllMargin()),
    ]  # fmt: skip


def prepare_attacker(w3: Web3, d: Deployment) -> tuple[str, int]:
    attacker = dev_key(9).address
    mint_susd(w3, d, attacker, ATTACK_MARGIN)
    tx = d.contract("perps_eth").functions.transferMargin(ATTACK_MARGIN).transact({"from": attacker})
    w3.eth.wait_for_transaction_receipt(tx)
    return attacker, ATTACK_MARGIN


def play(node: Anvil, w3: Web3, steps: list[Step], *, public: bool) -> tuple[int, list[str]]:
    """Play the strike; in public mode each step waits in a fee-ordered mempool for BLOCK_TIME from its
    broadcast before its block is mined (``PublicBlocks``: the whole window whatever the load).
    Returns the block the first step was included in and the labels of the steps that reverted."""
    hashes: list[tuple[str, str]] = []
    first = w3.eth.block_number
    with PublicBlocks(node, BLOCK_TIME) if public else contextlib.nullcontext():
        for step in steps:
            tx_hash = send(w3, step.sender, step.call())
            hashes.append((step.label, tx_hash))
            w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
    receipts = [(label, w3.eth.get_transaction_receipt(h)) for label, h in hashes]
    reverted = [label for label, r in receipts if r["status"] != 1]
    return int(receipts[0][1]["blockNumber"]) if receipts else first, reverted


def defended_config(folder: Path, manifest: Path, keystore: Path, ws_url: str | None) -> Path:
    """examples/synthetix/breakglass.yaml for this devnet: its manifest, a SQLite store and the guardian
    keystore in ``folder``, the mempool stage on when ``ws_url`` is given, a fast poll."""
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["deployment"] = str(manifest.resolve())
    config["store"] = {"url": f"sqlite:///{folder.resolve() / 'breakglass.db'}"}
    config["responder"]["guardian"] = {
        "keystore": str(keystore.resolve()),
        "password": f"${{{PASSWORD_ENV}}}",
    }
    config["mempool"] = {"enabled": ws_url is not None, **({"ws": ws_url} if ws_url else {})}
    config["chain"]["poll_interval"] = 0.05
    path = folder / "breakglass.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def start_defense(folder: Path, node: Anvil, w3: Web3, d: Deployment, *, mempool: bool) -> Defense:
    manifest = folder / "manifest.json"
    d.manifest().write(manifest)
    keystore, password = write_keystore(folder, bytes(dev_key(1).key))
    config = defended_config(folder, manifest, keystore, node.ws_url if mempool else None)
    return await Defense.start(config, password, w3.eth.block_number + 1)


def _findings(defense: Defense) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in defense.observed.findings:
        counts[f.monitor_id] = counts.get(f.monitor_id, 0) + 1
    return counts


async def run_exploit(*, public: bool = True, defended: bool = True, workdir: Path | None = None) -> Result:
    """The baseline (undefended) and the defended play from the same snapshot."""
    with contextlib.ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bg-synthetix-")))
        node, w3, d = stack.enter_context(devnet())
        attacker, start = await asyncio.to_thread(prepare_attacker, w3, d)
        snapshot = node.snapshot()
        await asyncio.to_thread(play, node, w3, misreport_steps(d, attacker), public=public)
        baseline = attacker_profit(d, attacker, start)
        mode = "public" if public else "private"
        result = Result("oracle-misreport", mode, baseline / 10**18, baseline / 10**18)
        if not defended:
            return result
        node.revert(snapshot)
        defense = await start_defense(folder, node, w3, d, mempool=public)
        try:
            first, reverted = await asyncio.to_thread(
                play, node, w3, misreport_steps(d, attacker), public=public
            )
            await defense.settle(w3.eth.block_number)
        finally:
            await defense.close()
        loss = attacker_profit(d, attacker, start)
        status = d.contract("system_status").functions
        result.market_suspended = bool(status.futuresMarketSuspension(b32("sETHPERP")).call()[0])
        result.loss_usd = max(loss, 0) / 10**18
        result.reverted_steps = reverted
        result.findings = _findings(defense)
        observed = defense.observed
        result.actions = sorted({f"{a.playbook}.{a.action}" for a in observed.confirmed()})
        result.refused = sorted(
            {f"{a.playbook}.{a.action}" for a in observed.actions if a.step is ActionStep.REFUSED}
        )
        confirmed = [a for a in observed.confirmed() if a.detail.get("block_number") is not None]
        if confirmed:
            result.ttc_blocks = min(int(a.detail["block_number"]) for a in confirmed) - first
        return result


class HonestTraffic:
    """Traders, price walks and a liquidation keeper on PerpsV2; seeded, automine."""

    def __init__(self, w3: Web3, d: Deployment, *, seed: int = 7, traders: int = 6) -> None:
        self.w3, self.d = w3, d
        self.rng = random.Random(seed)  # noqa: S311 (traffic, not keys)
        self.traders = [dev_key(20 + i).address for i in range(traders)]
        self.markets = {"eth": d.contract("perps_eth"), "btc": d.contract("perps_btc")}
        self.feeds = {"eth": d.contract("feed_eth"), "btc": d.contract("feed_btc")}
        self.prices = {"eth": float(ETH_PRICE), "btc": 60_000.0}
        self.transactions = self.reverts = self.liquidations = 0

    def fund(self) -> None:
        for trader in self.traders:
            self.w3.provider.make_request("anvil_setBalance", [trader, hex(100 * 10**18)])  # type: ignore[arg-type]
            self.w3.provider.make_request("anvil_impersonateAccount", [trader])  # type: ignore[arg-type]
            mint_susd(self.w3, self.d, trader, dec(50_000))

    def _tx(self, sender: str, call: Any) -> bool:
        self.transactions += 1
        try:
            tx = call.transact({"from": sender, "gas": 2_000_000})
        except Exception:
            self.reverts += 1
            return False
        ok = self.w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)["status"] == 1
        self.reverts += 0 if ok else 1
        return ok

    def step(self) -> None:
        rng = self.rng
        action = rng.random()
        if action < 0.3:  # the oracle network: one feed moves at most 1%
            asset = rng.choice(["eth", "btc"])
            self.prices[asset] *= 1 + rng.uniform(-0.01, 0.01)
            self._tx(
                self.d.accounts["oracle"],
                self.feeds[asset].functions.updateAnswer(int(self.prices[asset] * 10**8)),
            )
            return
        if action < 0.4:  # the keeper
            for market in self.markets.values():
                for trader in self.traders:
                    if market.functions.canLiquidate(trader).call():
                        keeper = self.d.accounts["keeper"]
                        if self._tx(keeper, market.functions.flagPosition(trader)) and self._tx(
                            keeper, market.functions.liquidatePosition(trader)
                        ):
                            self.liquidations += 1
                        return
            return
        trader = rng.choice(self.traders)
        asset = rng.choice(["eth", "btc"])
        market = self.markets[asset]
        margin = market.functions.remainingMargin(trader).call()[0]
        position = market.functions.positions(trader).call()
        size = position[4]
        price = self.prices[asset]
        if margin < dec(1_000):
            self._tx(trader, market.functions.transferMargin(dec(rng.choice([2_000, 5_000, 10_000]))))
        elif size == 0 or action < 0.6:
            notional = margin / 10**18 * rng.uniform(1, 5)
            delta = int(notional / price * 10**18) * rng.choice([1, -1])
            limit = dec(round(price * (1.05 if delta > 0 else 0.95), 2))
            self._tx(trader, market.functions.modifyPosition(delta, limit))
        elif action < 0.85:
            limit = dec(round(price * (1.05 if size < 0 else 0.95), 2))
            self._tx(trader, market.functions.closePosition(limit))
        else:
            self._tx(trader, market.functions.withdrawAllMargin())


async def run_honest(
    blocks: int = 200, *, seed: int = 7, mempool: bool = True, workdir: Path | None = None
) -> HonestResult:
    """``blocks`` blocks of honest traffic, defended with the example configuration."""
    with contextlib.ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bg-synthetix-")))
        node, w3, d = stack.enter_context(devnet())
        traffic = HonestTraffic(w3, d, seed=seed)
        await asyncio.to_thread(traffic.fund)
        defense = await start_defense(folder, node, w3, d, mempool=mempool)
        try:
            start = w3.eth.block_number
            while w3.eth.block_number - start < blocks:
                await asyncio.to_thread(traffic.step)
            await defense.settle(w3.eth.block_number)
        finally:
            await defense.close()
        result = HonestResult(
            w3.eth.block_number - start, traffic.transactions, traffic.reverts, traffic.liquidations
        )
        for f in defense.observed.findings:
            per = result.findings.setdefault(f.severity.name.lower(), {})
            per[f.monitor_id] = per.get(f.monitor_id, 0) + 1
        automatic = {ActionStep.INTENT, ActionStep.SIGNED, ActionStep.SUBMITTED}
        result.actions = [
            f"{a.playbook}.{a.action} ({a.step})" for a in defense.observed.actions if a.step in automatic
        ]
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Synthetix PerpsV2: the oracle-misreport drill, honest traffic"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    exploit = sub.add_parser("exploit")
    exploit.add_argument("--mode", choices=["public", "private"], default="public")
    exploit.add_argument("--undefended", action="store_true")
    honest = sub.add_parser("honest")
    honest.add_argument("--blocks", type=int, default=200)
    honest.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command == "exploit":
        out: Any = asyncio.run(run_exploit(public=args.mode == "public", defended=not args.undefended))
    else:
        out = asyncio.run(run_honest(args.blocks, seed=args.seed))
    print(json.dumps(out.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
