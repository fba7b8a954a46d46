"""Hard honest days: the venue's worst legitimate traffic, segment by segment, each parameterised.

Ordinary days (``traffic.BenignTraffic``) are where a defender is easy to keep quiet. These segments are
where a naive one fires, and where a containment that stops the way out does harm:

- ``crash``: a crowded long book (open interest near a share of the cap) and the price falling a few
  percent per step, pushed by the price keeper; traders top up or close, the keeper liquidates every
  position the fall broke (a keeper cascade on the gap step). Traders' losses are the LPs' gain.
- ``squeeze``: the same on a crowded short book with the price rising.
- ``bank-run``: many LPs redeeming a third of a solvent vault over a few blocks, in many transactions.
- ``cap-raise``: governance (Safe -> timelock) raises the thin market's open-interest cap and its max
  leverage, the delay passes, the change executes, whales fill the new room.
- ``zap-epoch``: an aggregator (``EpochZap``) settles an epoch of queued deposits and redemptions in one
  transaction (a deposit and a redemption by one account, at one share price), next to a zap user that
  deposits and redeems apart.
- ``bots``: a whale's large THIN trade and an arbitrage bot restoring the pool toward its average, block
  after block.

Each segment is a sequence of blocks, each decided on the state at its start, mined by the generator
(automine off). A transaction a front end would refuse is never sent, so a revert is either containment
(the guard's errors: ``GUARD_ERRORS``, "reverted because of us") or a generator bug (reported apart).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import RPCEndpoint

from breakglass.devnet.venue import USD, Venue, dev_key, role_key
from breakglass.devnet.venue.governance import ZERO32
from breakglass.devnet.venue.safe import safe_exec_function
from breakglass.devnet.venue.tx import build_tx, call_data, sign_tx

__all__ = ["GUARD_ERRORS", "SEGMENTS", "HardDayConfig", "HardDays", "SegmentTraffic"]

SEGMENTS = ("crash", "squeeze", "bank-run", "cap-raise", "zap-epoch", "bots")

GUARD_ERRORS = {
    "VenueIsPaused()",
    "MarketIsPaused(uint256)",
    "ReduceOnly(uint256)",
    "ExitsAreHalted(uint256)",
    "DepositsStopped()",
    "AccountIsBlocked(address)",
    "WithdrawalLimitExceeded(uint256,uint256)",
    "LeverageTooHigh(uint256,int256,uint256)",
    "OpenInterestCapExceeded(uint256,uint256)",
}
"""Errors a containment (pause, reduce-only, halt, block, withdrawal limit, a lowered limit) causes."""
_SELECTORS = {Web3.keccak(text=e)[:4].hex(): e.split("(")[0] for e in GUARD_ERRORS}


@dataclass(frozen=True, slots=True)
class HardDayConfig:
    """How hard each segment is (the defaults are the full run; ``bounded()`` is what make test plays)."""

    traders: int = 30
    lps: int = 20
    crowd_fraction: float = 0.85  # of the market's open-interest cap, on the crowded side
    leverage: tuple[float, float] = (5.0, 20.0)
    steps: int = 8  # price steps of a crash or squeeze
    step_pct: float = 0.03  # per step
    gap_pct: float = 0.06  # one gap step in the middle: the keeper cascade
    run_fraction: float = 0.33  # of the vault redeemed in a bank run
    run_blocks: int = 20
    new_thin_cap: int = 500_000 * USD
    new_thin_leverage: int = 15
    zap_users: int = 8
    zap_epochs: int = 3
    bot_rounds: int = 6
    block_seconds: int = 12
    first_index: int = 300  # dev-key index of the first hard-day participant

    @classmethod
    def bounded(cls) -> HardDayConfig:
        """A short run of every segment for the test suite."""
        return cls(traders=12, lps=8, steps=4, run_blocks=8, zap_users=4, zap_epochs=2, bot_rounds=3)


@dataclass
class SegmentTraffic:
    """What one segment sent and how it went (from the receipts)."""

    segment: str
    blocks: int = 0
    transactions: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    ours: list[dict[str, Any]] = field(default_factory=list)
    """Honest transactions reverted by a containment (a guard error)."""
    other_reverts: list[dict[str, Any]] = field(default_factory=list)
    liquidations: int = 0
    first_block: int = 0
    last_block: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "blocks": self.blocks,
            "transactions": self.transactions,
            "by_kind": dict(self.by_kind),
            "reverted_by_containment": len(self.ours),
            "reverted_by_containment_list": self.ours[:50],
            "other_reverts": len(self.other_reverts),
            "other_reverts_list": self.other_reverts[:50],
            "liquidations": self.liquidations,
            "seconds": round(self.seconds, 1),
        }


Action = tuple[str, LocalAccount, ContractFunction, int, int]
"""(kind, signer, call, value in wei, gas)."""


class HardDays:
    """Drives the hard-day segments on one venue; ``prepare()`` once (funding, LP deposits, the zap)."""

    def __init__(
        self, venue: Venue, config: HardDayConfig | None = None, *, pending_wait: float = 0.0
    ) -> None:
        uri = getattr(venue.w3.provider, "endpoint_uri", None)
        if uri:
            venue = venue.rebind(Web3(Web3.HTTPProvider(uri), middleware=[]))
        self.venue = venue
        self.cfg = config or HardDayConfig()
        self.pending_wait = pending_wait
        """Seconds between sending a block's transactions and mining it: the defender's pending window."""
        first = self.cfg.first_index
        self.traders = [dev_key(i) for i in range(first, first + self.cfg.traders)]
        self.lps = [dev_key(i) for i in range(first + 100, first + 100 + self.cfg.lps)]
        self.zappers = [dev_key(i) for i in range(first + 200, first + 200 + self.cfg.zap_users)]
        self.bot = dev_key(first + 250)
        self.whale = dev_key(first + 251)
        self.keeper, self.pricer = role_key("keeper"), role_key("price_keeper")
        self.owners = [role_key("safe_owner_1"), role_key("safe_owner_2")]
        self.zap: Contract | None = None
        self._nonces: dict[str, int] = {}
        self._chain_id = self.w3.eth.chain_id

    @property
    def w3(self) -> Web3:
        return self.venue.w3

    def _rpc(self, method: str, *params: Any) -> Any:
        answer = self.w3.provider.make_request(RPCEndpoint(method), list(params))
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    # ---- set-up (automine on) ----

    def prepare(self, zap_abi: list[dict[str, Any]], zap_bytecode: str) -> None:
        """Fund every participant, let the LPs deposit, deploy the zap (automine)."""
        v = self.venue
        for who in [*self.traders, *self.zappers, self.bot, self.whale]:
            v.fund(who.address, usd=3_000_000 * USD, eth=20 * 10**18)
        for lp in self.lps:
            v.fund(lp.address, usd=400_000 * USD, eth=5 * 10**18)
        v.fund(self.keeper.address, eth=50 * 10**18)
        big = 2**255
        for who in [*self.traders, self.whale]:
            for m in range(3):
                v.send(who, v.usd.functions.approve(v.market(m).address, big))
        for who in (self.bot, self.whale):
            v.send(who, v.usd.functions.approve(v["amm_thin"].address, big))
            v.send(who, v["thin_token"].functions.approve(v["amm_thin"].address, big))
        v.fund(self.whale.address, usd=0)
        deployer = role_key("deployer")
        v.send(deployer, v["thin_token"].functions.mint(self.bot.address, 2_000_000 * 10**18))
        for lp in self.lps:
            v.send(lp, v.usd.functions.approve(v.vault.address, big))
            v.send(lp, v.vault.functions.deposit(300_000 * USD))
        factory = self.w3.eth.contract(abi=zap_abi, bytecode=zap_bytecode)
        tx = factory.constructor(v.usd.address, v.vault.address).build_transaction(
            {"from": deployer.address, "nonce": self.w3.eth.get_transaction_count(deployer.address)}
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
        )
        zap = cast(Contract, self.w3.eth.contract(address=receipt["contractAddress"], abi=zap_abi))
        self.zap = zap
        for who in self.zappers:
            v.send(who, v.usd.functions.approve(zap.address, big))
            v.send(who, v.vault.functions.approve(zap.address, big))
            v.send(who, v.usd.functions.approve(v.vault.address, big))
            v.send(who, v.vault.functions.deposit(100_000 * USD))

    # ---- one segment (automine off) ----

    def run(self, segment: str) -> SegmentTraffic:
        plans: dict[str, Callable[[], Iterator[list[Action]]]] = {
            "crash": lambda: self._crowded_move(0, is_long=True, direction=-1),
            "squeeze": lambda: self._crowded_move(1, is_long=False, direction=1),
            "bank-run": self._bank_run,
            "cap-raise": self._cap_raise,
            "zap-epoch": self._zap_epoch,
            "bots": self._bots,
        }
        if segment not in plans:
            raise ValueError(f"unknown hard-day segment {segment!r}; known: {', '.join(SEGMENTS)}")
        report = SegmentTraffic(segment)
        started = time.monotonic()
        automine = bool(self._rpc("anvil_getAutomine"))
        self._rpc("evm_setAutomine", False)
        self._nonces.clear()
        try:
            report.first_block = self.w3.eth.block_number + 1
            for actions in plans[segment]():
                self._block(actions, report)
        finally:
            self._rpc("evm_setAutomine", automine)
        report.last_block = self.w3.eth.block_number
        report.seconds = time.monotonic() - started
        return report

    def _block(self, actions: list[Action], report: SegmentTraffic) -> None:
        sent: dict[str, tuple[str, str]] = {}
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 10**9))
        for kind, who, fn, value, gas in actions:
            nonce = self._nonces.get(who.address)
            if nonce is None:
                nonce = self.w3.eth.get_transaction_count(who.address, "pending")
            tx = build_tx(self.w3, who.address, to=fn.address, data=call_data(fn), value=value, gas=gas,
                          nonce=nonce, base_fee=base_fee, chain_id=self._chain_id)  # fmt: skip
            tx_hash = HexBytes(self.w3.eth.send_raw_transaction(sign_tx(who, tx))).to_0x_hex()
            self._nonces[who.address] = nonce + 1
            sent[tx_hash] = (kind, who.address)
        if self.pending_wait:
            time.sleep(self.pending_wait)
        latest = self.w3.eth.get_block("latest")
        self._rpc("evm_setNextBlockTimestamp", latest["timestamp"] + self.cfg.block_seconds)
        self._rpc("evm_mine")
        number = latest["number"] + 1
        for r in self._rpc("eth_getBlockReceipts", hex(number)):
            mine = sent.pop(r["transactionHash"], None)
            if mine is None:
                continue  # the defender's own transactions
            kind, sender = mine
            report.transactions += 1
            report.by_kind[kind] += 1
            if int(r["status"], 16) == 1:
                report.liquidations += kind == "liquidate"
                continue
            error = self._revert_error(r["transactionHash"])
            entry = {
                "block": number,
                "kind": kind,
                "sender": sender,
                "tx": r["transactionHash"],
                "error": error,
            }
            (report.ours if error in _SELECTORS.values() else report.other_reverts).append(entry)
        for tx_hash, (kind, sender) in sent.items():  # not mined: dropped by the node
            report.other_reverts.append({"block": number, "kind": kind, "sender": sender, "tx": tx_hash,
                                         "error": "not mined"})  # fmt: skip
        if sent:
            self._nonces.clear()  # a dropped transaction leaves its nonce unused: ask the node again
        report.blocks += 1

    def _revert_error(self, tx_hash: str) -> str:
        """The custom error a reverted transaction ended with (from its call trace)."""
        try:
            trace = self._rpc("debug_traceTransaction", tx_hash, {"tracer": "callTracer"})
        except RuntimeError as exc:
            return f"untraceable: {exc}"[:120]
        output = str(trace.get("output") or "0x")
        return _SELECTORS.get(output[2:10], output[:10] if len(output) > 2 else str(trace.get("error")))

    # ---- helpers deciding on the state at the start of a block ----

    def _market(self, m: int) -> Any:
        return self.venue.market(m).functions

    def _positions(self, m: int) -> dict[str, tuple[bool, int, int, int]]:
        fn = self._market(m)
        out: dict[str, tuple[bool, int, int, int]] = {}
        for t in self.traders:
            pos = cast(tuple[bool, int, int, int], fn.positions(t.address).call())
            if pos[1] > 0:
                out[t.address] = pos
        return out

    def _feed_move(self, m: int, pct: float) -> list[Action]:
        """The feed operator moves the price and the keeper pushes the same price: honest updates."""
        feed = self.venue["feed_eth" if m == 0 else "feed_btc"]
        price = int(feed.functions.latestAnswer().call() * (1 + pct))
        oracle = self.venue["oracle"].functions
        return [
            ("feed", self.pricer, feed.functions.updateAnswer(price), 0, 150_000),
            ("push", self.pricer, oracle.setPrices([m], [price]), 0, 150_000),
        ]

    def _keepers(self, m: int, exclude: set[str]) -> list[Action]:
        """Liquidate every position that is liquidatable now (the cascade), top up or close some others."""
        fn = self._market(m)
        price = self.venue.price(m)
        out: list[Action] = []
        for i, (trader, (is_long, size, entry, margin)) in enumerate(sorted(self._positions(m).items())):
            if trader in exclude:
                continue
            move = price - entry if is_long else entry - price
            equity = margin + size * move // entry
            if equity < size * 150 // 10_000:
                out.append(("liquidate", self.keeper, fn.liquidate(trader), 0, 700_000))
                exclude.add(trader)
            elif equity < size * 400 // 10_000:
                who = next(t for t in self.traders if t.address == trader)
                if i % 3 == 0:
                    out.append(("close", who, fn.closePosition(), 0, 600_000))
                else:
                    out.append(("top-up", who, fn.depositMargin(size // 25), 0, 200_000))
                exclude.add(trader)
        return out

    # ---- segments ----

    def _crowded_move(self, m: int, *, is_long: bool, direction: int) -> Iterator[list[Action]]:
        cfg, fn = self.cfg, self._market(m)
        cap = self.venue.guard.functions.openInterestCap(m).call()
        longs, shorts = fn.openInterest().call()
        room = int(cap * cfg.crowd_fraction) - (longs if is_long else shorts)
        per = max(room // len(self.traders), 10_000 * USD)
        opens: list[Action] = []
        for i, t in enumerate(self.traders):
            lo, hi = cfg.leverage
            leverage = lo + (hi - lo) * i / max(len(self.traders) - 1, 1)
            side = is_long if i % 6 else not is_long  # a few on the other side
            size = per if side == is_long else per // 4
            opens.append(
                ("open", t, fn.openPosition(side, int(size / leverage) + size // 500, size), 0, 600_000)
            )
        for k in range(0, len(opens), 8):
            yield opens[k : k + 8]
        yield []
        for step in range(cfg.steps):
            pct = cfg.gap_pct if step == cfg.steps // 2 else cfg.step_pct
            yield self._feed_move(m, direction * pct)
            busy: set[str] = set()
            yield self._keepers(m, busy)
            yield self._keepers(m, busy)
        yield self._keepers(m, set())

    def _bank_run(self) -> Iterator[list[Action]]:
        cfg, vault = self.cfg, self.venue.vault.functions
        target = int(vault.totalSupply().call() * cfg.run_fraction)
        holders = [*self.lps, *self.zappers]
        held = {h.address: vault.balanceOf(h.address).call() for h in holders}
        whale = role_key("lp_whale")
        held[whale.address] = vault.balanceOf(whale.address).call()
        everyone = [*holders, whale]
        per_block = target // cfg.run_blocks
        for b in range(cfg.run_blocks):
            actions: list[Action] = []
            left = per_block
            for k in range(len(everyone)):
                who = everyone[(b * 3 + k) % len(everyone)]
                share = min(held[who.address] // 3, left)
                if share <= 0 or len(actions) >= 10:
                    continue
                held[who.address] -= share
                left -= share
                actions.append(("redeem", who, vault.redeem(share), 0, 350_000))
                if left <= 0:
                    break
            yield actions

    def _cap_raise(self) -> Iterator[list[Action]]:
        v, cfg = self.venue, self.cfg
        guard, tl = v.guard, v["timelock"]
        delay = tl.functions.getMinDelay().call()
        calls = [
            (guard.address, call_data(guard.functions.setOpenInterestCap(2, cfg.new_thin_cap))),
            (guard.address, call_data(guard.functions.setMaxLeverage(2, cfg.new_thin_leverage))),
        ]
        for i, (target, data) in enumerate(calls):  # one Safe transaction per block (its nonce is on chain)
            salt = Web3.keccak(text=f"hard-days/cap-raise/{i}")
            schedule = tl.functions.schedule(target, 0, data, ZERO32, salt, delay)
            fn = safe_exec_function(v["safe"], tl.address, call_data(schedule), self.owners)
            yield [("safe", self.owners[0], fn, 0, 600_000)]
        for _ in range(3):
            yield []
        latest = self.w3.eth.get_block("latest")
        self._rpc("evm_setNextBlockTimestamp", latest["timestamp"] + delay + 1)
        self._rpc("evm_mine")
        executes: list[Action] = []
        for i, (target, data) in enumerate(calls):
            salt = Web3.keccak(text=f"hard-days/cap-raise/{i}")
            fn = tl.functions.execute(target, 0, HexBytes(data), ZERO32, salt)
            executes.append(("timelock", self.owners[1], fn, 0, 500_000))
        yield executes
        # whales fill the new room, a position per block, up to 95% of the new cap
        thin = self._market(2)
        for t in self.traders[:6]:
            longs, _ = thin.openInterest().call()
            size = min(60_000 * USD, int(cfg.new_thin_cap * 0.95) - longs)
            if size < 5_000 * USD:
                break
            margin = size // 8 + size // 500
            yield [("open", t, thin.openPosition(True, margin, size), 0, 600_000)]

    def _zap_epoch(self) -> Iterator[list[Action]]:
        assert self.zap is not None, "prepare() first"
        zap, vault = self.zap.functions, self.venue.vault.functions
        for epoch in range(self.cfg.zap_epochs):
            queue: list[Action] = []
            for i, who in enumerate(self.zappers):
                if (i + epoch) % 2:
                    queue.append(
                        ("queue-deposit", who, zap.queueDeposit((20_000 + 5_000 * i) * USD), 0, 200_000)
                    )
                else:
                    shares = vault.balanceOf(who.address).call() // 4
                    queue.append(("queue-redeem", who, zap.queueRedeem(shares), 0, 200_000))
            yield queue
            yield [("settle", self.keeper, zap.settle(), 0, 1_500_000)]
            # a zap user that deposits and redeems apart, blocks apart
            who = self.zappers[0]
            yield [("deposit", who, vault.deposit(10_000 * USD), 0, 250_000)]
            yield [("redeem", who, vault.redeem(vault.balanceOf(who.address).call() // 10), 0, 350_000)]

    def _bots(self) -> Iterator[list[Action]]:
        amm = self.venue["amm_thin"].functions
        for _ in range(self.cfg.bot_rounds):
            yield [
                ("whale-swap", self.whale, amm.swap(True, 60_000 * USD, 0, self.whale.address), 0, 200_000)
            ]
            spot, ema = amm.spotPrice().call(), amm.emaPrice().call()
            if spot > ema:  # sell THIN back toward the average
                reserve_usd, reserve_asset = amm.reserveUsd().call(), amm.reserveAsset().call()
                k = reserve_usd * reserve_asset
                target_asset = int((k * 10**20 // ema) ** 0.5)
                amount = max(target_asset - reserve_asset, 0)
                if amount:
                    yield [("arbitrage", self.bot, amm.swap(False, amount, 0, self.bot.address), 0, 200_000)]
            yield []
