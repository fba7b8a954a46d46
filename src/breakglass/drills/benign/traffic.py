"""The benign traffic generator: one venue driven block by block by seeded honest participants.

A participant acts on what the chain says happened, never on what it expects to happen: a keeper
order's id is the one its ``OrderCreated`` event carries once the order is mined, a timelock call is
executed only after its scheduling was mined, and a failed transaction leaves no state behind in the
generator (a reverted order is not waited for). Reverts are counted in the report, not raised: a
defense that pauses the venue on honest traffic makes the following transactions revert, which is
what a false-positive run must show rather than crash on.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import RPCEndpoint

from breakglass.devnet.venue import USD, Venue, dev_key, role_key
from breakglass.devnet.venue.forwarder import signed_price_push
from breakglass.devnet.venue.governance import ZERO32
from breakglass.devnet.venue.safe import safe_exec_function
from breakglass.devnet.venue.tx import build_tx, call_data, sign_tx
from breakglass.drills.benign.builders import HonestBuilders
from breakglass.drills.benign.report import BenignConfig, BenignReport
from breakglass.errors import DevnetError

__all__ = ["BenignTraffic"]

GAS = {
    "open": 600_000,
    "close": 600_000,
    "order": 350_000,
    "execute": 900_000,
    "liquidate": 700_000,
    "margin": 200_000,
    "swap": 200_000,
    "approve": 80_000,
    "deposit": 250_000,
    "redeem": 350_000,
    "feed": 150_000,
    "push": 400_000,
    "cancel": 200_000,
    "safe": 600_000,
    "timelock": 500_000,
    "fund": 100_000,
    "deploy": 2_000_000,
    "contract": 1_500_000,
}


@dataclass
class _Pending:
    kind: str
    sender: str
    on_success: Callable[[], None] | None
    on_receipt: Callable[[dict[str, Any]], None] | None = None
    """Told the mined receipt (raw JSON-RPC) when the transaction succeeded."""
    on_revert: Callable[[], None] | None = None


class BenignTraffic:
    """Drives one venue block by block (automine off; the generator mines each block itself)."""

    def __init__(self, venue: Venue, config: BenignConfig | None = None) -> None:
        # Thousands of blocks of calls: a lean connection without web3's per-call validation round trips.
        uri = getattr(venue.w3.provider, "endpoint_uri", None)
        if uri:
            lean = Web3(Web3.HTTPProvider(uri, cache_allowed_requests=True), middleware=[])
            venue = venue.rebind(lean)
        self.venue = venue
        self.cfg = config or BenignConfig()
        self.rng = random.Random(self.cfg.seed)  # noqa: S311 (determinism, not secrecy)
        first = self.cfg.first_trader_index
        self.traders = [dev_key(i) for i in range(first, first + self.cfg.traders)]
        self.lps = [dev_key(i) for i in range(first + 100, first + 100 + self.cfg.lps)]
        self.keeper, self.pricer = role_key("keeper"), role_key("price_keeper")
        self.owners = [role_key("safe_owner_1"), role_key("safe_owner_2")]
        self.positions: dict[tuple[int, str], bool] = {}  # (market, trader) -> is_long
        # (market, order id, trader, is_increase, is_long), appended once the order is mined
        self.orders: list[tuple[int, int, str, bool, bool]] = []
        self.proposals: list[tuple[int, tuple[str, bytes, bytes]]] = []  # (ready block, call)
        self.start_price = {m: venue.price(m) for m in (0, 1)}
        self.report = BenignReport()
        self._nonces: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._busy: set[tuple[int, str]] = set()
        self._ordered: set[tuple[int, str]] = set()  # positions with a keeper order outstanding
        self._oi_added: Counter[tuple[int, bool]] = Counter()
        self._shock: dict[int, tuple[int, int] | None] = {0: None, 1: None}
        self._wallet: dict[tuple[str, str], int] = {}  # balances left this block
        self._chain_id = self.w3.eth.chain_id
        self._base_fee = 10**9
        self.builders = HonestBuilders(
            self,
            count=self.cfg.builders,
            every=self.cfg.build_every,
            first_index=first + 300,
            seed=self.cfg.seed + 1,
        )

    @property
    def w3(self) -> Web3:
        return self.venue.w3

    # ---- lifecycle ----

    def fund(self) -> None:
        """Give every participant ether, collateral and approvals: two busy blocks, not hundreds."""
        v, deployer = self.venue, role_key("deployer")
        mining = self._hold_mining()
        try:
            builders = [(b, 2_000_000) for b in self.builders.funding()]
            for who, usd in (
                [(t, 2_000_000) for t in self.traders] + [(lp, 5_000_000) for lp in self.lps] + builders
            ):
                self._send("fund", deployer, v.usd.functions.mint(who.address, usd * USD))
                self._send_value(deployer, who.address, 50 * 10**18)
            for t in self.traders:
                self._send("fund", deployer, v["thin_token"].functions.mint(t.address, 200_000 * 10**18))
            self._send_value(deployer, self.keeper.address, 100 * 10**18)
            self._mine()
            for t in self.traders:
                for name in ("market_eth", "market_btc", "market_thin", "amm_thin"):
                    self._send("approve", t, v.usd.functions.approve(v[name].address, 2**255))
                self._send("approve", t, v["thin_token"].functions.approve(v["amm_thin"].address, 2**255))
            for lp in self.lps:
                self._send("approve", lp, v.usd.functions.approve(v.vault.address, 2**255))
            self._mine()
        finally:
            self._resume_mining(mining)
        if self.report.reverts:
            raise DevnetError(f"funding benign participants reverted: {self.report.reverts[:3]}")
        self.report = BenignReport()

    def _send_value(self, who: LocalAccount, to: str, value: int) -> None:
        nonce = self._nonces.get(who.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(who.address, "pending")
        tx = build_tx(
            self.w3, who.address, to=to, value=value, gas=30_000, nonce=nonce,
            base_fee=self._base_fee, chain_id=self._chain_id,
        )  # fmt: skip
        self.w3.eth.send_raw_transaction(sign_tx(who, tx))
        self._nonces[who.address] = nonce + 1

    def run(self, blocks: int, on_block: Callable[[int], None] | None = None) -> BenignReport:
        started = time.monotonic()
        # nonces are read again: between two runs others may have sent from the same accounts (a
        # drill's scenario updates the feeds with the price keeper's key between benign blocks)
        self._nonces.clear()
        mining = self._hold_mining()
        try:
            self.report.first_block = self.w3.eth.block_number + 1
            for i in range(blocks):
                self._block(i, blocks)
                if on_block:
                    on_block(self.w3.eth.block_number)
        finally:
            self._resume_mining(mining)
        self.report.last_block = self.w3.eth.block_number
        self.report.wall_seconds = time.monotonic() - started
        return self.report

    # ---- one block ----

    def _block(self, i: int, total: int) -> None:
        self._busy.clear()
        self._oi_added.clear()
        self._wallet.clear()
        self._base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 10**9))
        if i % self.cfg.tick_every == 0:
            self._tick_prices(i, total)
        elif i % self.cfg.tick_every in (1, 3):  # the block after a price move, and once between
            self._liquidations()
        if i % self.cfg.push_every == 3:
            self._push_prices()
        self._keeper_orders()
        self._governance(i)
        self.builders.act(i)
        for _ in range(self.rng.randint(2, 7)):
            self._random_action()
        self._mine()

    def _send(
        self,
        kind: str,
        who: LocalAccount,
        fn: ContractFunction,
        on_success: Callable[[], None] | None = None,
        value: int = 0,
        *,
        on_receipt: Callable[[dict[str, Any]], None] | None = None,
        on_revert: Callable[[], None] | None = None,
    ) -> None:
        self.send_raw(
            kind, who, fn.address, call_data(fn), value,
            on_success=on_success, on_receipt=on_receipt, on_revert=on_revert,
        )  # fmt: skip

    send = _send
    """A participant's contract call (honest builders send theirs through it too)."""

    def send_raw(
        self,
        kind: str,
        who: LocalAccount,
        to: str | None,
        data: bytes | str,
        value: int = 0,
        *,
        on_success: Callable[[], None] | None = None,
        on_receipt: Callable[[dict[str, Any]], None] | None = None,
        on_revert: Callable[[], None] | None = None,
    ) -> None:
        """A transaction from ``who`` (``to=None``: a deployment), mined with this block."""
        nonce = self._nonces.get(who.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(who.address, "pending")
        tx = build_tx(
            self.w3,
            who.address,
            to=to,
            data=data,
            value=value,
            gas=GAS[kind],
            nonce=nonce,
            base_fee=self._base_fee,
            chain_id=self._chain_id,
        )
        tx_hash = self.w3.eth.send_raw_transaction(sign_tx(who, tx))
        self._nonces[who.address] = nonce + 1
        self._pending[HexBytes(tx_hash).to_0x_hex()] = _Pending(
            kind, who.address, on_success, on_receipt, on_revert
        )

    def _hold_mining(self) -> tuple[bool, int]:
        """Take over block production; returns the node's (automine, interval seconds) to restore."""
        automine = bool(self._rpc("anvil_getAutomine"))
        interval = int(self._rpc("anvil_getIntervalMining") or 0)
        if interval:
            self._rpc("evm_setIntervalMining", 0)
        self._rpc("evm_setAutomine", False)
        return automine, interval

    def _resume_mining(self, mining: tuple[bool, int]) -> None:
        automine, interval = mining
        self._rpc("evm_setAutomine", automine)
        if interval:
            self._rpc("evm_setIntervalMining", interval)

    def _rpc(self, method: str, *params: Any) -> Any:
        return self.w3.provider.make_request(RPCEndpoint(method), list(params))["result"]

    def _mine(self) -> None:
        latest = self.w3.eth.get_block("latest")
        self._rpc("evm_setNextBlockTimestamp", latest["timestamp"] + self.cfg.block_seconds)
        self._rpc("evm_mine")
        number = latest["number"] + 1
        receipts = self._rpc("eth_getBlockReceipts", hex(number))
        for r in receipts:
            pending = self._pending.pop(r["transactionHash"], None)
            if pending is None:
                continue
            self.report.transactions += 1
            self.report.by_kind[pending.kind] += 1
            if int(r["status"], 16) == 1:
                if pending.on_success:
                    pending.on_success()
                if pending.on_receipt:
                    pending.on_receipt(r)
            else:
                if pending.on_revert:
                    pending.on_revert()
                self.report.reverts.append(
                    {
                        "block": number,
                        "kind": pending.kind,
                        "sender": pending.sender,
                        "tx": r["transactionHash"],
                    }
                )
        self.report.blocks += 1
        self._pending.clear()

    # ---- the world ----

    def _target(self, market: int, progress: float) -> float:
        """The day's shape: swing out by 40% of the run, come part way back, settle."""
        sign = 1.0 if market == 0 else -1.0
        if progress < 0.4:
            level = self.cfg.swing * progress / 0.4
        elif progress < 0.7:
            level = self.cfg.swing * (1 - (progress - 0.4) / 0.3 * 1.3)
        else:
            level = self.cfg.swing * (-0.3 + (progress - 0.7) / 0.3 * 0.4)
        return self.start_price[market] * (1 + sign * level)

    def _tick_prices(self, i: int, total: int) -> None:
        for market, feed in ((0, "feed_eth"), (1, "feed_btc")):
            current = self.venue[feed].functions.latestAnswer().call()
            target = self._target(market, min(1.0, (i + self.cfg.tick_every) / total))
            step = (target - current) * 0.5 + current * self.rng.gauss(0, 0.002)
            cap = 0.006
            shock = self._shock[market]
            if shock is not None:  # a volatile spell: a few sharp ticks in one direction
                direction, ticks = shock
                step, cap = direction * current * self.rng.uniform(0.01, 0.02), 0.02
                self._shock[market] = (direction, ticks - 1) if ticks > 1 else None
            elif self.rng.random() < 0.03:
                self._shock[market] = (self.rng.choice((-1, 1)), self.rng.randint(2, 4))
            price = int(current + max(-cap * current, min(cap * current, step)))
            self._send("feed", self.pricer, self.venue[feed].functions.updateAnswer(price))
            lo, hi = self.report.price_range.get(feed, (price / 1e8, price / 1e8))
            self.report.price_range[feed] = (min(lo, price / 1e8), max(hi, price / 1e8))

    def _push_prices(self) -> None:
        v = self.venue
        prices = {m: v["oracle"].functions.getPrice(m).call() for m in (0, 1)}
        request = signed_price_push(v["forwarder"], v["oracle"], self.pricer, prices)
        self._send("push", self.keeper, v["forwarder"].functions.execute(request))

    def _liquidations(self) -> None:
        keys = [k for k in self.positions if k not in self._busy]
        if not keys:
            return
        prices = {m: self.venue.price(m) for m in range(3)}
        with self.w3.batch_requests() as batch:  # one round trip for the whole book
            for market, trader in keys:
                batch.add(self.venue.market(market).functions.positions(trader))
            answers = batch.execute()
        for (market, trader), answer in zip(keys, answers, strict=True):
            is_long, size, entry, margin = cast(tuple[bool, int, int, int], answer)
            if size == 0:
                continue
            move = prices[market] - entry if is_long else entry - prices[market]
            equity = margin + size * move // entry
            # liquidatable below 1.5% maintenance; keep a 1% margin of safety for the next block's price
            if equity > size * 150 // 10_000 - size // 100:
                continue
            self._busy.add((market, trader))
            closed = self._closed(market, trader)

            def liquidated(closed: Callable[[], None] = closed) -> None:
                closed()
                self.report.liquidations += 1

            m = self.venue.market(market).functions
            self._send("liquidate", self.keeper, m.liquidate(trader), liquidated)

    def _keeper_orders(self) -> None:
        waiting, self.orders = self.orders, []
        for market, order_id, trader, is_increase, is_long in waiting:
            key = (market, trader)
            m = self.venue.market(market).functions
            if key in self._busy:  # being liquidated this block: look again next block
                self.orders.append((market, order_id, trader, is_increase, is_long))
                continue
            self._busy.add(key)
            if not is_increase and key not in self.positions:
                # the position was liquidated while the close order waited: its owner cancels it
                owner = next(t for t in self.traders if t.address == trader)
                self._send("cancel", owner, m.cancelOrder(order_id), self._unordered(key))
                continue
            opened = self._opened(market, trader, is_long)
            closed = self._closed(market, trader)

            def done(
                opened: Callable[[], None] = opened,
                closed: Callable[[], None] = closed,
                inc: bool = is_increase,
                key: tuple[int, str] = key,
            ) -> None:
                (opened if inc else closed)()
                self._ordered.discard(key)

            # a reverted execution (the venue paused meanwhile) leaves the order active: try it again
            retry = self._requeue((market, order_id, trader, is_increase, is_long))
            self._send("execute", self.keeper, m.executeOrder(order_id), done, on_revert=retry)

    def _governance(self, i: int) -> None:
        v, tl = self.venue, self.venue["timelock"]
        delay = tl.functions.getMinDelay().call()
        number = self.w3.eth.block_number
        for ready, (address, data, salt) in list(self.proposals):
            if number >= ready:
                self.proposals.remove((ready, (address, data, salt)))
                fn = tl.functions.execute(address, 0, data, ZERO32, salt)
                self._send("timelock", self.owners[0], fn, self._governed)
        if i % self.cfg.governance_every != self.cfg.governance_every // 2:
            return
        choice = (i // self.cfg.governance_every) % 3
        if choice == 0 and v.vault.functions.idle().call() > 400_000 * USD:
            target, call = v.vault, v.vault.functions.allocate(self.rng.randint(0, 2), 200_000 * USD)
        elif choice == 1:
            target, call = v["oracle"], v["oracle"].functions.setPushTtl(300)
        else:
            m = v.market(self.rng.randint(0, 1))
            target, call = m, m.functions.setFees(10, 150, 100, 5 * 10**14)
        data = bytes(HexBytes(call_data(call)))
        salt = Web3.keccak(text=f"benign/{self.cfg.seed}/{i}")
        schedule = tl.functions.schedule(target.address, 0, data, ZERO32, salt, delay)
        fn = safe_exec_function(v["safe"], tl.address, call_data(schedule), self.owners)
        proposal = (number + delay // self.cfg.block_seconds + 2, (target.address, data, salt))
        self._send("safe", self.owners[0], fn, lambda: self.proposals.append(proposal))  # once scheduled

    def _governed(self) -> None:
        self.report.governance_executed += 1

    # ---- users ----

    def _spend(self, who: LocalAccount, token: str, amount: int) -> bool:
        """Whether ``who`` still holds ``amount`` this block (a wallet never offers to overspend)."""
        key = (who.address, token)
        if key not in self._wallet:
            self._wallet[key] = self.venue[token].functions.balanceOf(who.address).call()
        if self._wallet[key] < amount:
            return False
        self._wallet[key] -= amount
        return True

    spend = _spend

    def _random_action(self) -> None:
        roll = self.rng.random()
        if roll < 0.12:
            self._lp_action()
        elif roll < 0.27:
            self._swap()
        else:
            self._trade()

    def _lp_action(self) -> None:
        lp = self.rng.choice(self.lps)
        if lp.address in {p.sender for p in self._pending.values()}:
            return
        vault = self.venue.vault.functions
        shares = vault.balanceOf(lp.address).call()
        if shares > 0 and self.rng.random() < 0.4:
            self._send("redeem", lp, vault.redeem(shares // self.rng.randint(2, 5)))
        else:
            amount = self.rng.randint(20_000, 400_000) * USD
            if self._spend(lp, "usd", amount):
                self._send("deposit", lp, vault.deposit(amount))

    def _swap(self) -> None:
        trader = self.rng.choice(self.traders)
        amm = self.venue["amm_thin"].functions
        spot = amm.spotPrice().call() / 1e8
        buy = self.rng.random() < (0.7 if spot < 0.95 else 0.3 if spot > 1.05 else 0.5)
        usd = self.rng.randint(1_000, 15_000)
        amount = usd * USD if buy else int(usd / spot) * 10**18
        if self._spend(trader, "usd" if buy else "thin_token", amount):
            self._send("swap", trader, amm.swap(buy, amount, 0, trader.address))

    def _trade(self) -> None:
        trader = self.rng.choice(self.traders)
        market = self.rng.choices((0, 1, 2), weights=(5, 4, 2))[0]
        key = (market, trader.address)
        if key in self._busy or key in self._ordered:
            return
        self._busy.add(key)
        m = self.venue.market(market).functions
        if key in self.positions:
            roll = self.rng.random()
            if roll < 0.1:
                amount = self.rng.randint(1_000, 20_000) * USD
                if self._spend(trader, "usd", amount):
                    self._send("margin", trader, m.depositMargin(amount))
            elif roll < 0.2:
                self._order(market, trader, False, False, 0, 0)
            elif roll < 0.45:
                self._send("close", trader, m.closePosition(), self._closed(*key))
            else:
                self._busy.discard(key)  # holds the position; does something else
                self._swap()
            return
        is_long = self.rng.random() < 0.5
        if market == 2:
            size, leverage = self.rng.randint(2_000, 25_000) * USD, self.rng.uniform(1.5, 5)
        else:
            size, leverage = self.rng.randint(20_000, 400_000) * USD, self.rng.uniform(2, 20)
        longs, shorts = m.openInterest().call()
        cap = self.venue.guard.functions.openInterestCap(market).call()
        if (longs if is_long else shorts) + self._oi_added[(market, is_long)] + size > cap * 0.9:
            return
        margin = int(size / leverage) + size // 500
        if not self._spend(trader, "usd", margin):
            return
        self._oi_added[(market, is_long)] += size
        if self.rng.random() < 0.3:
            self._order(market, trader, True, is_long, margin, size)
        else:
            self._send("open", trader, m.openPosition(is_long, margin, size), self._opened(*key, is_long))

    def _order(
        self, market: int, trader: LocalAccount, inc: bool, is_long: bool, margin: int, size: int
    ) -> None:
        market_contract = self.venue.market(market)
        m = market_contract.functions
        key = (market, trader.address)
        self._ordered.add(key)
        created_topic = market_contract.events.OrderCreated.topic
        address = market_contract.address.lower()

        def created(receipt: dict[str, Any]) -> None:
            """The order's id, as the market assigned it (other orders may have been mined first)."""
            for log in receipt["logs"]:
                topics = [HexBytes(t) for t in log["topics"]]
                if log["address"].lower() == address and topics and topics[0] == HexBytes(created_topic):
                    self.orders.append(
                        (market, int.from_bytes(topics[1], "big"), trader.address, inc, is_long)
                    )
                    return
            raise DevnetError(f"createOrder {receipt['transactionHash']} succeeded without OrderCreated")

        fn = m.createOrder(inc, is_long, margin, size, 0)
        self._send("order", trader, fn, value=m.minExecutionFee().call() * 2, on_receipt=created,
                   on_revert=self._unordered(key))  # fmt: skip

    def _opened(self, market: int, trader: str, is_long: bool) -> Callable[[], None]:
        return lambda: self.positions.__setitem__((market, trader), is_long)

    def _requeue(self, order: tuple[int, int, str, bool, bool]) -> Callable[[], None]:
        return lambda: self.orders.append(order)

    def _unordered(self, key: tuple[int, str]) -> Callable[[], None]:
        return lambda: self._ordered.discard(key)

    def _closed(self, market: int, trader: str) -> Callable[[], None]:
        def closed() -> None:
            self.positions.pop((market, trader), None)

        return closed
