"""The responder: findings in, policy-checked actions out, every step in the ledger and on the bus.

For each finding: the matching playbooks' steps in order (targeted actions first, as written), each
one checked by the policy (refusals audited), deduplicated by its idempotency key, then sent by the
guardian relayer, proposed to a Safe, or published for the notification and incident stages. A
background loop tracks receipts, bumps stuck transactions and watches ratification deadlines.

With ``lookout`` set (``responder.look``), a guardian call is first simulated against honest traffic
(``respond.lookout``): one that would harm more than it protects is withheld (``withheld``, with the
numbers) and left to people; a sent one is followed by an ``assessed`` event with the same numbers.

Actions happen once per breach and target (``respond.playbook``'s keys use ``Finding.breach``). A
pending transaction predicted to break an invariant names the breach it would begin
(``<scope>@<block>``); the block path, seeing the breach begin a few blocks later (the transaction was
mined later than simulated), names its own block. So that the two are one breach, a breach of a scope
acted on from a pending finding is adopted by any finding of that scope beginning within
``ADOPT_BLOCKS`` blocks after it; the pending actions' intents record their stage in the ledger, so the
adoption survives a restart.

Two steps asking for the identical guardian call (same contract, same calldata: two playbooks
pausing the market one attack priced, matched by two monitors' findings in the same block) send it
once: a step whose call was sent for another key within ``SAME_CALL_BLOCKS`` blocks, and not failed,
is recorded as ``satisfied`` by the first (its key claimed, nothing signed). The sends are read back
from the ledger's signed rows at start, so a restart keeps the window.

Active/standby (``ha.lease`` set: several replicas with one guardian key, ``breakglass.ha``): each
replica holds a ``Lease``; only the holder reads the findings' work queue (the durable subscription
``respond``) and sends, every send fenced by the lease's token (``GuardianRelayer.fence``, the
ledger's claims). A standby listens to findings without taking them (``Bus.listen``), keeping the
last ``FOLLOW_SECONDS`` of them. Taking over, it reads everything from the shared ledger as a
restart does (claims, the guardian's next nonce, the rate windows, the identical-call window), sends
again what the old leader signed and may not have sent (``GuardianRelayer.recover``: the very same
bytes, or nothing if a receipt shows them on chain), and replays the findings it kept that the
ledger shows unfinished: the action the old leader was killed before claiming is sent then, at once,
not when the work queue gives its unacknowledged finding back (``ack_wait`` later). Losing the lease,
a replica stops reading the work queue and forgets what it had in flight.

The mempool stage asks for outbidding by passing the pending transaction's fees, either as
``handle(finding, outbid=PendingFees(...))`` or in the finding's ``evidence["pending_fees"]``
(``max_fee_per_gas``, ``max_priority_fee_per_gas``, ``gas_price``: integers in wei).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from breakglass.bus import Bus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.domain import Finding, FindingStage
from breakglass.errors import BreakglassError, PolicyViolation, ResponseError
from breakglass.ha import Lease
from breakglass.logs import get_logger
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.metrics import RESPONDER_ACTIONS
from breakglass.respond.calls import ContractCall
from breakglass.respond.fees import PendingFees
from breakglass.respond.ledger import Ledger
from breakglass.respond.lookout import Lookout
from breakglass.respond.playbook import CallStep, FailedStep, MessageStep, PlaybookBook, Step, describe_steps
from breakglass.respond.policy import CallRule, Policy
from breakglass.respond.ratify import RatificationWatcher
from breakglass.respond.relayer import GuardianRelayer, NotLeader
from breakglass.respond.rpc import Rpc
from breakglass.respond.safe import SafeService

__all__ = ["ADOPT_BLOCKS", "FOLLOW_SECONDS", "SAME_CALL_BLOCKS", "Responder", "outbid_from"]

ADOPT_BLOCKS = 16
"""How many blocks after a pending prediction of a breach the block path's breach of the same scope
is taken to be that breach (the transaction mined late)."""
SAME_CALL_BLOCKS = 16
"""How many blocks apart (by their findings' blocks) two steps asking for the identical guardian call
are taken to ask for one call: the second is satisfied by the first."""
FOLLOW_SECONDS = 60.0
"""How long a standby keeps the findings it heard, to replay the unfinished ones when it takes over
(the work queue gives back what a dead leader held after its ``ack_wait``, 10 s, anyway)."""

log = get_logger(__name__)


def outbid_from(finding: Finding) -> PendingFees | None:
    """The pending transaction's fees a finding of the mempool stage carries, if any."""
    fees = finding.evidence.get("pending_fees")
    if not isinstance(fees, Mapping):
        return None

    def number(name: str) -> int | None:
        value = fees.get(name)
        return None if value is None else int(value)

    return PendingFees(number("max_fee_per_gas"), number("max_priority_fee_per_gas"), number("gas_price"))


class Responder:
    """Wires playbooks, policy, ledger and executors; ``run()`` consumes ``Topics.FINDINGS``."""

    def __init__(
        self,
        *,
        book: PlaybookBook,
        policy: Policy,
        ledger: Ledger,
        bus: Bus,
        relayer: GuardianRelayer | None = None,
        safes: SafeService | None = None,
        ratifier: RatificationWatcher | None = None,
        rpc: Rpc | None = None,
        lookout: Lookout | None = None,
        poll_interval: float = 0.5,
        chain_id: int | None = None,
        name: str = "respond",
    ) -> None:
        self.book = book
        self.policy = policy
        self.ledger = ledger
        self.bus = bus
        self.relayer = relayer
        self.safes = safes
        self.ratifier = ratifier
        self.rpc = rpc
        self.lookout = lookout
        self.chain_id = chain_id
        """With several chains, the one this responder acts on: findings of the others are not its."""
        self.owned_engine: AsyncEngine | None = None
        """The database engine ``build_responder`` made for itself (disposed on close)."""
        self._poll_interval = poll_interval
        self._started = False
        self.last_tick_at: float | None = None
        """``time.monotonic()`` of the last round of the poll loop (liveness)."""
        self._starting = asyncio.Lock()
        self.consumer = Consumer(bus, Topics.FINDINGS, name, self._on_finding)
        """Its supervised subscription to findings (``breakglass.bus.consumer``)."""
        self._predicted: dict[str, list[tuple[int, str]]] = {}
        """breach scope -> (block, breach) of breaches acted on from pending findings"""
        self._sent: dict[str, tuple[int, str]] = {}
        """guardian call digest -> (finding's block, key) of the last step that sent it"""
        self._calling: dict[str, asyncio.Lock] = {}
        """guardian call digest -> held from deciding to send it until it is recorded in ``_sent``"""
        self.lease: Lease | None = None
        """Active/standby among replicas (``ha.lease``); None: this process is the only responder."""
        self._follow: AsyncGenerator[Any, None] | None = None
        self._heard: deque[tuple[float, Finding]] = deque(maxlen=10_000)
        """(monotonic time, finding) a standby heard in the last ``FOLLOW_SECONDS``"""
        self.takeovers: list[dict[str, Any]] = []
        """One entry per lease taken: token, seconds to take over, keys recovered, findings replayed."""

    def use_lease(self, lease: Lease) -> None:
        """Run as one replica of several: act only while holding ``lease`` (no I/O here)."""
        self.lease = lease
        if self.relayer is not None:
            self.relayer.fence = lambda: lease.token

    def subscribe(self) -> None:
        """Subscribe to findings now (``App.start`` does it before any producer runs). A replica
        listens (the leader's work queue is taken when it takes the lease)."""
        if self.lease is None:
            self.consumer.subscribe()
        elif self._follow is None:
            self._follow = self.bus.listen(Topics.FINDINGS)

    @property
    def consumers(self) -> list[Consumer]:
        return [self.consumer]

    async def _on_finding(self, finding: Any) -> None:
        if not isinstance(finding, Finding):
            return
        if self.chain_id is not None and finding.chain_id != self.chain_id:
            return  # another chain's responder acts on it
        try:
            await self.handle(finding)
        except Exception:  # a bug must not stop containment of the next finding
            log.exception("respond.handle_crashed", monitor=finding.monitor_id, fp=finding.fingerprint)

    async def start(self) -> None:
        """Fetch nonce and fees, re-broadcast what a previous process left in flight, reopen ratifications."""
        async with self._starting:  # concurrent first findings wait for one start, not race it
            if self._started:
                return
            await self._start()
            self._started = True

    async def _start(self) -> None:
        await self.ledger.load()
        for row in await self.ledger.rows(steps=(ActionStep.INTENT, ActionStep.SIGNED)):
            detail = row.detail or {}
            if row.step == ActionStep.INTENT and detail.get("stage") == FindingStage.PENDING.value:
                self._predict(row.key.split("/", 1)[0])
            if row.step == ActionStep.SIGNED and isinstance(detail.get("block"), int):  # guardian sends
                self._sent[_digest(row.key)] = (detail["block"], row.key)
        await self._seed_rates()
        if self.relayer is not None:
            await self.relayer.prepare()
            await self.relayer.recover()
        if self.ratifier is not None:
            await self.ratifier.recover()

    async def _seed_rates(self) -> None:
        """Rate windows survive a restart: count this process's predecessors' sends from the ledger."""
        now_ms = time.time() * 1000
        used = (ActionStep.SIGNED, ActionStep.PROPOSED)
        ages: dict[str, list[float]] = {}
        for row in await self.ledger.rows(steps=used):
            if not row.key.startswith("safe-exec/"):  # executing a Safe tx is not a playbook action
                ages.setdefault(f"{row.playbook}.{row.action}", []).append((now_ms - row.at_ms) / 1000)
        for action, seen in ages.items():
            self.policy.seed(action, seen)

    async def emit(self, event: ActionEvent) -> None:
        """Publish one step; a confirmed call with ``ratify`` opens its ratification task."""
        await self.bus.publish(Topics.ACTIONS, event)
        RESPONDER_ACTIONS.labels(event.step.value).inc()
        check = event.detail.get("ratify")
        if event.step is ActionStep.CONFIRMED and isinstance(check, Mapping) and self.ratifier is not None:
            await self.ratifier.open(event, dict(check))

    async def _audit(self, event: ActionEvent) -> ActionEvent:
        await self.ledger.append(event)
        await self.emit(event)
        return event

    def _predict(self, breach: str) -> None:
        scope, _, since = breach.partition("@")
        if since.isdigit():
            known = self._predicted.setdefault(scope, [])
            if (int(since), breach) not in known:
                known.append((int(since), breach))

    def _adopt(self, finding: Finding) -> Finding:
        """``finding`` naming the breach a pending finding predicted, if it is that breach."""
        scope, _, since = finding.breach.partition("@")
        if not since.isdigit():
            return finding
        block = int(since)
        for predicted, breach in self._predicted.get(scope, ()):
            if block - ADOPT_BLOCKS <= predicted <= block:
                return finding if breach == finding.breach else replace(finding, breach=breach)
        if finding.stage is FindingStage.PENDING:
            self._predict(finding.breach)
        return finding

    async def handle(
        self, finding: Finding, outbid: PendingFees | None = None, *, replay: bool = False
    ) -> list[ActionEvent]:
        """Run every matching playbook for ``finding``. Returns one event per step taken. ``replay``
        (a replica taking over): steps already claimed are skipped without a ``duplicate`` record."""
        if not self._started:
            await self.start()
        finding = self._adopt(finding)
        outbid = outbid or outbid_from(finding)
        events: list[ActionEvent] = []
        for playbook in self.book.matching(finding):
            for step in self.book.steps(playbook, finding):
                if replay and (await self.ledger.is_claimed(step.key) or await self.ledger.history(step.key)):
                    continue  # the old leader did (or decided) this step
                events.append(await self._step(step, finding, outbid))
        return events

    async def _step(self, step: Step, finding: Finding, outbid: PendingFees | None) -> ActionEvent:
        try:
            return await self._step_once(step, finding, outbid)
        except NotLeader as exc:  # the lease was lost meanwhile: the leader does this step
            log.warning("respond.not_leader", key=step.key, reason=str(exc))
            target = step.call.target if isinstance(step, CallStep) else getattr(step, "target", "")
            return _intent(step.key, step.playbook, step.action, target, finding)

    async def _step_once(self, step: Step, finding: Finding, outbid: PendingFees | None) -> ActionEvent:
        if isinstance(step, FailedStep):
            log.error("respond.step_failed", key=step.key, error=step.error)
            intent = _intent(step.key, step.playbook, step.action, step.target, finding)
            return await self._audit(
                replace(intent, step=ActionStep.FAILED, detail={**intent.detail, "error": step.error})
            )
        if isinstance(step, MessageStep):
            intent = _intent(step.key, step.playbook, step.action, step.text, finding)
            done = replace(
                intent,
                step=ActionStep.NOTIFY if step.kind == "notify" else ActionStep.ESCALATE,
                detail={"message" if step.kind == "notify" else "severity": step.text},
            )
            if not await self.ledger.claim(intent, step.kind, (done, None), fence=self._token()):
                return replace(intent, step=ActionStep.DUPLICATE)
            await self.emit(done)
            return done
        detail: dict[str, Any] = {"via": step.via, "stage": finding.stage.value}
        detail["block"] = finding.block_number  # a later identical call within blocks of it is satisfied
        if step.ratify is not None:
            detail["ratify"] = step.ratify.as_detail()
        intent = replace(
            _intent(step.key, step.playbook, step.action, step.call.target, finding), detail=detail
        )
        try:
            rule = self.policy.check_call(step.call)
            if await self.ledger.is_claimed(step.key):
                return await self._audit(replace(intent, step=ActionStep.DUPLICATE))
            await self.check_bounds(step.call, rule)
            if step.via == "guardian":
                if self.relayer is None:
                    raise ResponseError("no guardian key configured (responder.guardian)")
                digest = _digest(step.key)
                async with self._calling.setdefault(digest, asyncio.Lock()):
                    first = await self._sent_before(digest, finding)
                    if first is not None:
                        return await self._satisfied(intent, first)
                    sent = await self._send(step, intent, detail, finding, outbid)
                    if sent.step is ActionStep.SUBMITTED:
                        self._sent[digest] = (finding.block_number, step.key)
                    return sent
            self.policy.take_rate(f"{step.playbook}.{step.action}")
            return await self._propose(intent, step)
        except NotLeader:
            raise
        except PolicyViolation as exc:
            log.warning(
                "respond.refused", key=step.key, call=step.call.target, rule=exc.rule, reason=exc.detail
            )
            return await self._audit(
                replace(intent, step=ActionStep.REFUSED, detail={"rule": exc.rule, "reason": exc.detail})
            )
        except BreakglassError as exc:
            log.error("respond.action_failed", key=step.key, call=step.call.target, error=str(exc))
            return await self._audit(
                replace(
                    intent, step=ActionStep.FAILED, detail={"error": str(exc), "recoverable": exc.recoverable}
                )
            )

    async def _send(
        self,
        step: CallStep,
        intent: ActionEvent,
        detail: dict[str, Any],
        finding: Finding,
        outbid: PendingFees | None,
    ) -> ActionEvent:
        """Send a guardian call, looked at first when a lookout is configured."""
        assert self.relayer is not None
        look = None
        if self.lookout is not None:
            assessment = await self.lookout.assess(
                f"{step.playbook}.{step.action}", step.call, finding, self.relayer.address
            )
            look = assessment.as_detail()
            if assessment.withhold:
                log.warning("respond.withheld", key=step.key, call=step.call.target, **look)
                return await self._audit(
                    replace(intent, step=ActionStep.WITHHELD, detail={**detail, "look": look})
                )
        self.policy.take_rate(f"{step.playbook}.{step.action}")
        sent = await self.relayer.execute(intent, step.call, outbid)
        if look is not None and sent.step is not ActionStep.DUPLICATE:
            await self.emit(replace(intent, step=ActionStep.ASSESSED, detail={**detail, "look": look}))
        # A concurrent handler of the same finding claimed it first: audit the duplicate too.
        return await self._audit(sent) if sent.step is ActionStep.DUPLICATE else sent

    def _token(self) -> int | None:
        """The lease's fencing token for a claim (None: one process); ``NotLeader`` while not held."""
        if self.lease is None:
            return None
        token = self.lease.token
        if token is None:
            raise NotLeader("this responder replica does not hold the lease: the leader acts")
        return token

    async def _sent_before(self, digest: str, finding: Finding) -> ActionEvent | None:
        """Where the identical call, sent for another key within ``SAME_CALL_BLOCKS`` blocks of
        ``finding``, stands (its last send step), unless it failed: a failed call satisfies nothing."""
        seen = self._sent.get(digest)
        if seen is None or abs(finding.block_number - seen[0]) > SAME_CALL_BLOCKS:
            return None
        steps = [row.event() for row in await self.ledger.history(seen[1])]
        sends = [e for e in steps if e.step in _SEND_STEPS]
        if not sends or sends[-1].step is ActionStep.FAILED:
            return None
        return sends[-1]

    async def _satisfied(self, intent: ActionEvent, first: ActionEvent) -> ActionEvent:
        """Record ``intent``'s call as made by ``first`` (its key claimed: a repeat is a duplicate)."""
        tx_hash, by = first.tx_hash, first.key
        reason = f"the same call was sent by {first.playbook}.{first.action}"
        done = replace(
            intent,
            step=ActionStep.SATISFIED,
            detail={**intent.detail, "by": by, "tx_hash": tx_hash,
                    "reason": reason + (f" (tx {tx_hash})" if tx_hash else "")},
        )  # fmt: skip
        if not await self.ledger.claim(intent, "guardian", (done, None), fence=self._token()):
            return await self._audit(replace(intent, step=ActionStep.DUPLICATE))
        log.info("respond.satisfied", key=intent.key, call=intent.target, by=by, tx_hash=tx_hash)
        await self.emit(done)
        return done

    async def check_bounds(self, call: ContractCall, rule: CallRule) -> list[str]:
        """Read each bounded parameter's current value on chain (latest block) and refuse a call that
        would loosen one (``PolicyViolation``, rule ``bound``); an unreadable value refuses too: the
        call cannot be shown to tighten. Returns what was compared, for a dry run."""
        seen: list[str] = []
        for check in rule.bounds:
            assert check.current is not None
            read = check.current
            if self.rpc is None:
                raise PolicyViolation("bound", f"{call.target}: no node to read {read.text} from")
            try:
                raw = await self.rpc.call(
                    "eth_call", {"to": read.address, "data": "0x" + read.calldata(call.args).hex()}, "latest"
                )
                current = read.decode(bytes.fromhex(str(raw).removeprefix("0x")))
            except (BreakglassError, ValueError) as exc:
                raise PolicyViolation("bound", f"{call.target}: could not read {read.text}: {exc}") from None
            self.policy.check_bound(call, check, current)
            seen.append(f"{check.name} {call.args[check.index]} vs {read.text} = {current}")
        return seen

    async def _propose(self, intent: ActionEvent, step: CallStep) -> ActionEvent:
        if self.safes is None:
            raise ResponseError(f"{step.via}: no Safe service configured (safes)")
        safe = step.via.removeprefix("safe:")
        if not await self.ledger.claim(intent, step.via, fence=self._token()):
            return await self._audit(replace(intent, step=ActionStep.DUPLICATE))
        try:
            proposal = await self.safes.propose(
                safe,
                step.call,
                key=step.key,
                playbook=step.playbook,
                action=step.action,
                fingerprint=intent.finding_fingerprint,
            )
        except BreakglassError as exc:  # nothing proposed: give the key back so a repeat can try again
            failed = replace(intent, step=ActionStep.FAILED, detail={**intent.detail, "error": str(exc)})
            await self.ledger.release(failed)
            await self.emit(failed)
            return failed
        return await self._audit(
            replace(
                intent,
                step=ActionStep.PROPOSED,
                detail={
                    **intent.detail,
                    "safe_tx_hash": proposal.safe_tx_hash,
                    "safe_nonce": proposal.safe_nonce,
                },
            )
        )

    async def dry_run(self, finding: Finding) -> list[dict[str, Any]]:
        """What ``handle`` would do for ``finding``: steps, policy verdicts, simulations; nothing sent."""
        out: list[dict[str, Any]] = []
        for playbook in self.book.matching(finding):
            steps = self.book.steps(playbook, finding)
            for step, shown in zip(steps, describe_steps(steps), strict=True):
                if isinstance(step, CallStep):
                    try:
                        bounds = await self.check_bounds(step.call, self.policy.check_call(step.call))
                        shown["policy"] = "allowed" + (f" ({'; '.join(bounds)})" if bounds else "")
                        if step.via == "guardian" and self.relayer is not None:
                            shown["plan"] = (
                                await self.relayer.plan(step.call, outbid_from(finding))
                            ).as_dict()
                            shown["simulation"] = "ok"
                            if self.lookout is not None:
                                look = await self.lookout.assess(
                                    f"{step.playbook}.{step.action}", step.call, finding, self.relayer.address
                                )
                                shown["look"] = look.as_detail()
                    except PolicyViolation as exc:
                        shown["policy"] = f"refused ({exc.rule}): {exc.detail}"
                    except ResponseError as exc:
                        shown["simulation"] = f"failed: {exc}"
                out.append(shown)
        return out

    @property
    def started(self) -> bool:
        return self._started

    async def close(self) -> None:
        if self.lease is not None:
            await self.lease.release()
            await self.lease.backend.close()
        if self.rpc is not None:
            await self.rpc.close()
        await self.ledger.close()
        if self.owned_engine is not None:
            await self.owned_engine.dispose()

    async def poll(self) -> list[ActionEvent]:
        """One round of receipt tracking, stuck-tx bumping and ratification watching."""
        done: list[ActionEvent] = []
        if self.relayer is not None:
            done += await self.relayer.poll()
        if self.ratifier is not None:
            done += await self.ratifier.poll()
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Consume findings until ``stop`` is set; poll receipts and ratifications meanwhile."""
        if self.lease is not None:
            await self._run_replica(stop, self.lease)
            return
        self.subscribe()  # before any await: nothing is missed
        while True:  # a node that fails a request at start-up (a 503, a restart) must not end containment
            try:
                await self.start()
                break
            except BreakglassError as exc:
                if not exc.recoverable or stop.is_set():
                    raise
                log.warning("respond.start_retry", error=str(exc))
                await asyncio.sleep(self._poll_interval)

        async def tick() -> None:
            while not stop.is_set():
                self.last_tick_at = time.monotonic()
                try:
                    if self.ledger.journaling:  # the store may be back: replay what it missed, in order
                        await self.ledger.reconcile()
                    await self.poll()
                except BreakglassError as exc:
                    log.warning("respond.poll_failed", error=str(exc))
                except Exception:  # same: receipts and bumps must keep going
                    log.exception("respond.poll_crashed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await stop.wait()

        tasks = [asyncio.create_task(self.consumer.run(), name="consumer respond/findings"),
                 asyncio.create_task(tick())]  # fmt: skip
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_replica(self, stop: asyncio.Event, lease: Lease) -> None:
        """One replica of several: follow findings as a standby, act while holding ``lease``."""
        self.subscribe()  # the listener, before any await
        log.info("respond.replica_started", lease=lease.name, holder=lease.holder_id, ttl=lease.ttl)
        tasks = [asyncio.create_task(lease.run(stop), name="lease respond"),
                 asyncio.create_task(self._hear(), name="respond follows findings")]  # fmt: skip
        try:
            while not stop.is_set():
                self.last_tick_at = time.monotonic()
                if not lease.is_held():
                    await lease.wait_changed(self._poll_interval)
                    continue
                await self._lead(stop, lease)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._follow is not None:
                with contextlib.suppress(Exception):
                    await self._follow.aclose()
                self._follow = None

    async def _hear(self) -> None:
        """A standby's ear: every finding published, kept ``FOLLOW_SECONDS`` (never acted on here)."""
        assert self._follow is not None
        async for finding in self._follow:
            if isinstance(finding, Finding) and self.chain_id in (None, finding.chain_id):
                now = time.monotonic()
                self._heard.append((now, finding))
                while self._heard and self._heard[0][0] < now - FOLLOW_SECONDS:
                    self._heard.popleft()

    async def _lead(self, stop: asyncio.Event, lease: Lease) -> None:
        """Take over (``take_over``), then read the work queue and poll while the lease is held."""
        try:
            await self.take_over()
        except BreakglassError as exc:  # the node or the store failed: try again while leading
            log.warning("respond.takeover_failed", error=str(exc))
            await asyncio.sleep(self._poll_interval)
            return
        consumer = asyncio.create_task(self.consumer.run(), name="consumer respond/findings")
        try:
            while not stop.is_set() and lease.is_held():
                self.last_tick_at = time.monotonic()
                try:
                    if self.ledger.journaling:
                        await self.ledger.reconcile()
                    await self.poll()
                except NotLeader:
                    break
                except BreakglassError as exc:
                    log.warning("respond.poll_failed", error=str(exc))
                except Exception:
                    log.exception("respond.poll_crashed")
                await lease.wait_changed(min(self._poll_interval, max(lease.remaining(), 0.01)))
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            await self.consumer.close()  # what it held unacknowledged goes back to the work queue
            self.step_down()

    async def take_over(self) -> dict[str, Any]:
        """This replica just took the lease: read the shared state as a restart does (claims, next
        nonce, rate windows, recent sends), send again what is owed in flight, and replay the
        findings heard in the last ``FOLLOW_SECONDS`` that the ledger shows unfinished."""
        began = time.monotonic()
        token = self._token()
        async with self._starting:
            self._started = False
            self._sent.clear()
            self._predicted.clear()
            self.policy.forget_rates()
            if self.relayer is not None:
                self.relayer.forget()
            await self._start()
            self._started = True
        recovered = len(self.relayer.pending()) if self.relayer is not None else 0
        heard = [f for at, f in self._heard if at >= time.monotonic() - FOLLOW_SECONDS]
        replayed = 0
        for finding in heard:
            try:
                replayed += bool(await self.handle(finding, replay=True))
            except NotLeader:
                raise
            except Exception:  # one finding must not stop the others
                log.exception("respond.replay_crashed", fp=finding.fingerprint)
        report = {"token": token, "seconds": round(time.monotonic() - began, 3),
                  "in_flight": recovered, "heard": len(heard), "replayed": replayed}  # fmt: skip
        self.takeovers.append(report)
        log.warning("respond.took_over", **report)
        return report

    def step_down(self) -> None:
        """The lease is lost: forget what was in flight (the new leader recovers it from the ledger)."""
        if self.relayer is not None:
            self.relayer.forget()
        log.warning("respond.stepped_down")


_SEND_STEPS = {ActionStep.SIGNED, ActionStep.SUBMITTED, ActionStep.REPLACED, ActionStep.CONFIRMED,
               ActionStep.FAILED, ActionStep.REORGED}  # fmt: skip
"""The steps that say where a call's send stands (the last one counts)."""


def _digest(key: str) -> str:
    """The call a call step's key names: its last part digests the contract and calldata."""
    return key.rsplit("/", 1)[-1]


def _intent(key: str, playbook: str, action: str, target: str, finding: Finding) -> ActionEvent:
    return ActionEvent(
        ActionStep.INTENT,
        key,
        playbook,
        action,
        target,
        finding.fingerprint,
        monitor_id=finding.monitor_id,
        detail={"stage": finding.stage.value},
        at_ms=time.time() * 1000,
        chain_id=finding.chain_id,
    )
