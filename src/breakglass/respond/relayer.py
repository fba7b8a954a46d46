"""The guardian relayer: signs containment calls locally and sends them raw, exactly once per key.

Hot path (``execute``): simulate with ``eth_estimateGas`` (which also sizes the gas), price from the
pre-fetched fee quote, take the next nonce from memory, sign, then *claim the key and record the signed
bytes in one committed transaction*, then broadcast. Nonce, chain id and fees are fetched beforehand
(``prepare``, ``refresh``), so the only node round trips are the simulation and the send.

Exactly once: a key claimed in the ledger is never signed again. A crash after the claim and before the
send leaves the signed bytes in the ledger: ``recover()`` re-broadcasts them (same nonce, same hash). A
crash after the send is the same case; a receipt for any hash of the key closes it. The nonce restarts
at max(chain pending count, highest nonce in the ledger + 1), so a restart never reuses a nonce.

Stuck transactions: ``poll()`` fetches receipts; a key still pending ``bump_after_blocks`` blocks after
its last broadcast is re-signed with the same nonce and fees raised by the fee policy (``bump``).

Active/standby (several replicas, ``breakglass.ha``): with ``fence`` set (the responder's lease
token, None while not held), nothing is signed, claimed or broadcast unless it answers a token: a
claim carries it (``Ledger.claim(fence=...)``: a newer token refuses it in the store), and every
broadcast and bump asks again right before the bytes leave. A replica that lost its lease sends
nothing more; ``forget()`` drops what it had in flight (the new leader's ``recover()`` owns it).

Reorgs: a receipt closes a key, but its transaction stays in a ``ReorgWatch`` until ``reorg_depth``
blocks deep. When a new head shows its block orphaned, the key is reopened (``reorged``, audited): a
receipt on the new branch closes it again, else the very bytes that landed are sent again (same nonce,
same hash), and the usual bumping applies if they no longer pay enough.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from breakglass.errors import PolicyViolation, ResponseError, RpcError
from breakglass.logs import get_logger, redact_url
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.metrics import RESPONDER_BACKLOG, RESPONDER_BALANCE, RESPONDER_FEES, RESPONDER_TX_COST
from breakglass.respond.calls import ContractCall
from breakglass.respond.fees import FeePolicy, FeeQuote, Fees, PendingFees
from breakglass.respond.inflight import TX_STEPS, InFlight, PlannedTx, tx_detail
from breakglass.respond.ledger import Ledger, Signed
from breakglass.respond.policy import Policy
from breakglass.respond.reorgs import DEFAULT_REORG_DEPTH, Landed, ReorgWatch
from breakglass.respond.rpc import Rpc, SendVerdict, send_verdict

if TYPE_CHECKING:  # the signer module imports eth_account; the API's child builds a relayer-less responder
    from breakglass.respond.signer import Signer

__all__ = ["GuardianRelayer", "NotLeader", "PlannedTx"]

log = get_logger(__name__)
Emit = Callable[[ActionEvent], Awaitable[None]]
Fence = Callable[[], int | None]


class NotLeader(ResponseError):
    """This replica does not hold the responder's lease (now): it must not send. Recoverable: the
    leader sends, and this replica sends again once it takes the lease."""

    recoverable = True


class GuardianRelayer:
    """Sends policy-checked calls from the guardian key. Call ``prepare()`` once before ``execute``."""

    def __init__(
        self,
        rpc: Rpc,
        signer: Signer,
        ledger: Ledger,
        policy: Policy,
        fees: FeePolicy,
        *,
        gas_margin: float = 1.25,
        bump_after_blocks: int = 2,
        reorg_depth: int = DEFAULT_REORG_DEPTH,
        emit: Emit | None = None,
    ) -> None:
        self._rpc = rpc
        self._signer = signer
        self._ledger = ledger
        self._policy = policy
        self._fees = fees
        self._gas_margin = gas_margin
        self._bump_after = bump_after_blocks
        self._emit = emit
        self._lock = asyncio.Lock()
        self._open: dict[str, InFlight] = {}
        self.reorgs: ReorgWatch[InFlight] = ReorgWatch(rpc, depth=reorg_depth)
        """Landed transactions still shallow enough to be orphaned by a reorg."""
        self.chain_id = 0
        self.nonce = 0
        self.quote = FeeQuote(0, 0)
        self.head = 0
        self.head_hash = ""
        self.balance: int | None = None
        """The guardian's balance in wei, read at most every ``balance_interval`` seconds by ``refresh``."""
        self.balance_interval = 5.0
        self._balance_at = -1e9
        self.fence: Fence | None = None
        """The lease's fencing token now, None while not held (``breakglass.ha``); unset: one process."""

    def token(self) -> int | None:
        """The fencing token to send under; ``NotLeader`` if this replica may not send now."""
        if self.fence is None:
            return None
        token = self.fence()
        if token is None:
            raise NotLeader("this responder replica does not hold the lease: the leader sends")
        return token

    def forget(self) -> None:
        """Drop what this replica had in flight (it lost the lease: the leader recovers it from the
        ledger; taking the lease again, this replica reads it back the same way)."""
        self._open.clear()
        self.reorgs = ReorgWatch(self._rpc, depth=self.reorgs.depth)

    @property
    def address(self) -> str:
        return self._signer.address

    async def prepare(self) -> None:
        """Fetch chain id, nonce and fees, so that ``execute`` only simulates and sends."""
        async with self._lock:  # never while a transaction is being signed: the nonce must not go back
            chain_id = int(await self._rpc.call("eth_chainId"), 16)
            chain_nonce = int(await self._rpc.call("eth_getTransactionCount", self.address, "pending"), 16)
            ledger_nonce = await self._ledger.next_nonce(self.address)
            self.nonce = max(self.nonce, chain_nonce, ledger_nonce or 0)
            self.chain_id = chain_id
        await self.refresh()

    async def refresh(self) -> None:
        """Update the fee quote and head block; run once per block, off the hot path."""
        block = await self._rpc.call("eth_getBlockByNumber", "latest", False)
        tip = int(await self._rpc.call("eth_maxPriorityFeePerGas"), 16)
        self.head = int(block["number"], 16)
        self.head_hash = str(block["hash"])
        self.quote = FeeQuote(int(block.get("baseFeePerGas") or "0x0", 16), tip)
        RESPONDER_TX_COST.set(self.tx_cost())
        if time.monotonic() - self._balance_at >= self.balance_interval:
            self.balance = int(await self._rpc.call("eth_getBalance", self.address, "latest"), 16)
            self._balance_at = time.monotonic()
            RESPONDER_BALANCE.labels(self.address).set(self.balance)

    def tx_cost(self) -> int:
        """What one containment transaction may cost at today's fees: the policy's gas cap times the
        max fee per gas this relayer would offer (wei)."""
        return self._policy.max_gas * self._fees.price(self.quote, None).max_fee_per_gas

    async def simulate(self, call: ContractCall) -> int:
        """Gas the call needs, from the guardian, on the latest state; ``ResponseError`` if it reverts."""
        tx = {"from": self.address, "to": call.address, "data": "0x" + call.data.hex(), "value": "0x0"}
        try:
            return int(await self._rpc.call("eth_estimateGas", tx), 16)
        except RpcError as exc:
            if exc.recoverable:
                raise
            raise ResponseError(f"simulation of {call.target} reverted: {exc}", recoverable=False) from exc

    async def plan(self, call: ContractCall, outbid: PendingFees | None = None) -> PlannedTx:
        """Simulate and price ``call`` without signing or sending; checks the policy's caps."""
        estimate = await self.simulate(call)
        gas = min(int(estimate * self._gas_margin), max(self._policy.max_gas, estimate))
        fees = self._fees.price(self.quote, outbid)
        self._policy.check_costs(call.target, gas, fees.max_fee_per_gas)
        return PlannedTx(call, self.address, self.chain_id, self.nonce, estimate, gas, fees)

    async def execute(
        self, intent: ActionEvent, call: ContractCall, outbid: PendingFees | None = None
    ) -> ActionEvent:
        """Send ``call`` once for ``intent.key``. Returns the SUBMITTED or DUPLICATE event."""
        started = time.perf_counter()
        if not self.chain_id:  # a caller that skipped prepare() (an API process) must not sign for chain 0
            await self.prepare()
        if await self._ledger.is_claimed(intent.key):
            return replace(intent, step=ActionStep.DUPLICATE, at_ms=time.time() * 1000)
        self.token()  # a standby neither simulates nor signs
        node_s = time.perf_counter()
        planned = await self.plan(call, outbid)
        node_s = time.perf_counter() - node_s
        async with self._lock:
            fence = self.token()  # asked again: the simulation took time
            nonce = self.nonce
            tx = self._tx(call.address, call.data, nonce, planned.gas, planned.fees)
            signed = await self._signer.sign_transaction(tx)
            signed_event = replace(
                intent,
                step=ActionStep.SIGNED,
                tx_hash=signed.tx_hash,
                nonce=nonce,
                detail={**intent.detail, **tx_detail(call.address, call.data, planned.gas, planned.fees)},
            )
            record = Signed(self.address, nonce, signed.tx_hash, signed.raw)
            if not await self._ledger.claim(intent, "guardian", (signed_event, record), fence=fence):
                return replace(intent, step=ActionStep.DUPLICATE, at_ms=time.time() * 1000)
            self.nonce = nonce + 1
            sent = InFlight(
                signed_event,
                nonce,
                call.address,
                call.data,
                planned.gas,
                planned.fees,
                [signed.tx_hash],
                signed.raw,
                self.head,
            )
            self._open[intent.key] = sent
            send_s = time.perf_counter()
            refused = await self._broadcast(signed.raw, intent.key)
            node_s += time.perf_counter() - send_s
            sent.delivered = refused is None
        total_ms = (time.perf_counter() - started) * 1000
        event = replace(
            signed_event,
            step=ActionStep.SUBMITTED,
            at_ms=time.time() * 1000,
            detail={**signed_event.detail, "total_ms": total_ms, "node_ms": node_s * 1000}
            | ({"broadcast_error": refused} if refused else {}),
        )
        await self._record(event)
        log.info(
            "respond.submitted",
            key=intent.key,
            call=call.target,
            tx_hash=signed.tx_hash,
            nonce=nonce,
            signer=self._signer,
            total_ms=round(total_ms, 3),
        )
        return event

    async def _broadcast(self, raw: bytes, key: str) -> str | None:
        """Send the raw bytes; returns the node's refusal, if any (the bytes stay in the ledger).

        The client fails over between endpoints by itself; "already known" or "nonce too low" (the
        bytes reached a node before, e.g. the first endpoint took them and then timed out) counts as sent.
        Not sent at all by a replica that does not hold the lease now (the leader sends them).
        """
        try:
            self.token()
        except NotLeader as exc:
            log.warning("respond.broadcast_withheld", key=key, reason=str(exc))
            return str(exc)
        try:
            await self._rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
        except RpcError as exc:
            if send_verdict(exc) is SendVerdict.IN:
                log.info("respond.rebroadcast_known", key=key, reason=str(exc))
                return None
            # Still recorded as signed: recover() or a bump from poll() sends it (or its successor) again.
            # The refusal goes to the ledger and the bus, which the log redactor does not see.
            refusal = redact_url(str(exc))
            log.warning("respond.broadcast_failed", key=key, error=refusal)
            return refusal
        return None

    def _tx(self, to: str, data: bytes, nonce: int, gas: int, fees: Fees) -> dict[str, Any]:
        return {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }

    async def _record(self, event: ActionEvent, signed: Signed | None = None) -> None:
        await self._ledger.append(event, signed)
        if self._emit is not None:
            await self._emit(event)

    def pending(self) -> dict[str, list[str]]:
        """Open keys and the hashes broadcast for each (latest last)."""
        return {key: list(sent.hashes) for key, sent in self._open.items()}

    async def bump(self, key: str) -> ActionEvent:
        """Replace the open transaction of ``key``: same nonce, higher fees, re-signed and re-sent."""
        sent = self._open.get(key)
        if sent is None:
            raise ResponseError(f"no open transaction for {key!r}")
        fees = self._fees.bump(sent.fees, self.quote)
        if fees.max_fee_per_gas <= sent.fees.max_fee_per_gas:
            raise PolicyViolation("fee", f"{key}: cannot bump above policy.max_fee_gwei")
        async with self._lock:
            self.token()
            signed = await self._signer.sign_transaction(
                self._tx(sent.to, sent.data, sent.nonce, sent.gas, fees)
            )
            event = replace(
                sent.event,
                step=ActionStep.REPLACED,
                tx_hash=signed.tx_hash,
                nonce=sent.nonce,
                at_ms=time.time() * 1000,
                detail={
                    **sent.event.detail,
                    **tx_detail(sent.to, sent.data, sent.gas, fees),
                    "replaces": sent.hashes[-1],
                },
            )
            await self._ledger.append(event, Signed(self.address, sent.nonce, signed.tx_hash, signed.raw))
            sent.fees, sent.raw, sent.sent_block = fees, signed.raw, self.head
            sent.hashes.append(signed.tx_hash)
            sent.delivered = await self._broadcast(signed.raw, key) is None
        if self._emit is not None:
            await self._emit(event)
        return event

    async def poll(self) -> list[ActionEvent]:
        """Receipts for open keys; bump those stuck for ``bump_after_blocks``. Returns closing events."""
        await self.refresh()
        done: list[ActionEvent] = []
        for landed in await self.reorgs.orphaned(self.head, self.head_hash):
            closed = await self._reopen(landed)
            if closed is not None:
                done.append(closed)
        for key, sent in list(self._open.items()):
            closed = await self._close_if_mined(key, sent)
            if closed is not None:
                done.append(closed)
            elif not sent.delivered:  # the node refused or never got it (an outage): same bytes again now
                sent.delivered = await self._broadcast(sent.raw, key) is None
            elif self.head - sent.sent_block >= self._bump_after:
                try:
                    await self.bump(key)
                except PolicyViolation as exc:
                    log.warning("respond.bump_refused", key=key, error=str(exc))
        RESPONDER_BACKLOG.set(len(self._open))
        return done

    async def _close_if_mined(self, key: str, sent: InFlight) -> ActionEvent | None:
        for tx_hash in sent.hashes:
            receipt = await self._rpc.call("eth_getTransactionReceipt", tx_hash)
            if receipt is None:
                continue
            ok = int(receipt["status"], 16) == 1
            number, block_hash = int(receipt["blockNumber"], 16), str(receipt["blockHash"])
            price = receipt.get("effectiveGasPrice")
            if price is not None:
                RESPONDER_FEES.inc(int(receipt["gasUsed"], 16) * int(price, 16))
            event = replace(
                sent.event,
                step=ActionStep.CONFIRMED if ok else ActionStep.FAILED,
                tx_hash=tx_hash,
                at_ms=time.time() * 1000,
                detail={
                    **sent.event.detail,
                    "block_number": number,
                    "block_hash": block_hash,
                    "gas_used": int(receipt["gasUsed"], 16),
                    "replacements": len(sent.hashes) - 1,
                },
            )
            del self._open[key]
            self.reorgs.add(Landed(key, tx_hash, sent.nonce, number, block_hash, sent))
            await self._record(event)
            return event
        return None

    async def _reopen(self, landed: Landed[InFlight]) -> ActionEvent | None:
        """A reorg orphaned the block of ``landed``: audit it, then re-track or re-send the same bytes.

        Returns the closing event if the transaction is already in a block of the new branch.
        """
        sent = landed.item
        event = replace(
            sent.event,
            step=ActionStep.REORGED,
            tx_hash=landed.tx_hash,
            at_ms=time.time() * 1000,
            detail={
                **sent.event.detail,
                "block_number": landed.block_number,
                "block_hash": landed.block_hash,
                "head": self.head,
            },
        )
        self._open[landed.key] = sent
        sent.sent_block = self.head
        sent.delivered = False  # if anything below fails, the poll loop sends the bytes again
        await self._record(event)
        log.warning(
            "respond.reorged",
            key=landed.key,
            tx_hash=landed.tx_hash,
            nonce=landed.nonce,
            orphaned_block=landed.block_number,
        )
        closed = await self._close_if_mined(landed.key, sent)
        if closed is not None:  # replayed on the new branch: nothing to send
            return closed
        if landed.tx_hash != sent.hashes[-1]:  # an earlier version landed: send those bytes, still valid
            rows = await self._ledger.history(landed.key)
            sent.raw = next(
                (bytes.fromhex(r.raw_tx[2:]) for r in rows if r.tx_hash == landed.tx_hash and r.raw_tx),
                sent.raw,
            )
        sent.delivered = await self._broadcast(sent.raw, landed.key) is None
        return None

    async def recover(self) -> list[str]:
        """After a restart: re-broadcast the latest signed bytes of every open key. Returns the keys.

        Transactions that landed within ``reorg_depth`` blocks of the head go back under the reorg watch.
        """
        keys = await self._ledger.open_keys(self.address)
        for key in keys:
            rows = [r for r in await self._ledger.history(key) if r.raw_tx]
            if not rows:
                continue
            sent = InFlight.from_rows(rows, self.head)
            self._open[key] = sent
            if await self._close_if_mined(key, sent) is None:
                sent.delivered = await self._broadcast(sent.raw, key) is None
                log.info("respond.recovered", key=key, nonce=sent.nonce, tx_hash=sent.hashes[-1])
        await self._watch_landed()
        return keys

    async def _watch_landed(self) -> None:
        floor = self.head - self.reorgs.depth
        for row in await self._ledger.rows(steps=(ActionStep.CONFIRMED, ActionStep.FAILED)):
            detail = row.detail or {}
            if "block_hash" not in detail or int(detail["block_number"]) < floor or row.key in self._open:
                continue
            history = await self._ledger.history(row.key)
            last_tx_step = [r for r in history if ActionStep(r.step) in TX_STEPS][-1]
            signed = [r for r in history if r.raw_tx]
            if last_tx_step.id != row.id or not signed or signed[0].signer != self.address:
                continue  # reopened since, or not this key's transaction
            sent = InFlight.from_rows(signed, self.head)
            number, block_hash = int(detail["block_number"]), str(detail["block_hash"])
            self.reorgs.add(Landed(row.key, str(row.tx_hash), sent.nonce, number, block_hash, sent))

    async def wait(self, key: str, *, within: float = 60.0, interval: float = 0.1) -> ActionEvent:
        """Poll until ``key`` is confirmed or failed (tests, the CLI). Raises ``ResponseError`` on timeout."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for event in await self.poll():
                if event.key == key:
                    return event
            if key not in self._open:
                final = (ActionStep.CONFIRMED.value, ActionStep.FAILED.value)
                rows = [r for r in await self._ledger.history(key) if r.step in final]
                if rows:
                    return rows[-1].event()
            await asyncio.sleep(interval)
        raise ResponseError(f"{key}: no receipt within {within:g} s", recoverable=True)
