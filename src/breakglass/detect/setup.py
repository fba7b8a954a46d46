"""Set-up signals: the stage before an exploit that real attackers leave on chain.

- **tainted deployment**: a contract created by an account funded, directly or within ``hops``
  transfers, by a configured mixer or flagged address (monitor severity);
- **fresh contract touching the protocol**: a contract younger than ``fresh_blocks`` whose first
  transaction makes the protocol emit a log, or a log naming a protocol address in a topic
  (medium; monitor severity if its deployer is tainted);
- **revert burst**: ``count`` reverted transactions into the protocol (or a fresh contract) from one
  sender within ``window_blocks`` (medium; monitor severity if the sender is tainted).

Funding is seen in top-level value transfers and, for mixers paying out through an internal call, in
the address-shaped words of the mixer's own logs (a Tornado-style ``Withdrawal(to, ...)``). Internal
transfers without a log are not visible without tracing. The state (taint, fresh contracts, revert
counts) survives a restart: ``snapshot()`` is written with the follower's checkpoint and ``restore()``
reads it back; only the undo records of the last blocks (for a reorg) are lost.

Each tainted account also remembers who funded it (``funder``: the first tainting transfer), so a
finding's evidence carries its ``funding`` path: the actor, its funder, ... up to the mixer or flagged
address (``intel export`` shares those hops as funding sources). A snapshot from before ``funder``
existed restores without it: the paths of accounts tainted before then stop at the actor.

With ``sources`` (intel sources), the funding sources peers shared (``breakglass intel pull``) are
taint sources too while they live, like a configured mixer: an account one of them funded within
``hops`` that deploys a contract is a tainted deployment. They are never findings by themselves (a
mixer pays honest users too); one that expires stops tainting, the accounts it tainted stay tainted.
Our own contracts are never taken as sources, whatever a peer says.

Every change of state (a taint spread, a fresh contract, a revert counted, an expiry) goes through an
``UndoLog`` of the last ``UNDO_BLOCKS`` blocks, so ``rewind(ancestor)`` on a reorg restores the state
exactly as it was after the ancestor: a taint learned only on the orphaned branch is forgotten, a
fresh contract whose first touch was orphaned is reported again on the new branch.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from breakglass.config.monitors import SetupMonitor
from breakglass.detect.base import BlockContext, FindingMaker, Interest
from breakglass.detect.reads import ReadCall
from breakglass.detect.rewind import UndoLog
from breakglass.domain import Block, Finding, Severity, Tx
from breakglass.intel.feed import FeedIndicators, ImportedIndicator

__all__ = ["SetupDetector", "address_words"]


def address_words(topics: Sequence[str], data: bytes, *, small: bool = False) -> list[str]:
    """The address-shaped 32-byte words of a log: its indexed topics (not the event's signature) and
    its data. A word whose address would start with 4 zero bytes is read as an amount unless
    ``small`` (looking for known addresses, where a vanity address must not be missed)."""
    words = [bytes.fromhex(t[2:]) for t in topics[1:]]
    words += [data[i : i + 32] for i in range(0, len(data) - len(data) % 32, 32)]
    return [
        "0x" + w[12:].hex()
        for w in words
        if len(w) == 32 and w[:12] == bytes(12) and (small or w[12:16] != bytes(4))
    ]


class SetupDetector:
    def __init__(
        self,
        cfg: SetupMonitor,
        protocol: Sequence[str],
        mixers: Sequence[str] = (),
        feed: FeedIndicators | None = None,
    ) -> None:
        """``protocol``: addresses of the protocol's contracts; ``mixers``: more source addresses;
        ``feed``: pulled intel whose funding sources are sources too."""
        self.monitor_id = cfg.id
        self.interest = Interest(transactions=True, other_logs=False)  # nothing to see in a block without one
        self.cfg = cfg
        self.protocol = {a.lower() for a in protocol}
        self.sources = {a.lower() for a in (*cfg.mixers, *cfg.flagged, *mixers)}
        self.taint: dict[str, int] = dict.fromkeys(self.sources, 0)
        """address -> hops from a source"""
        self.funder: dict[str, str] = {}
        """tainted address -> the address whose transfer tainted it (one hop closer to a source)"""
        self.feed = feed
        self.imported: set[str] = set()
        """funding sources from the feed now in ``taint`` as sources"""
        self._shared: dict[str, ImportedIndicator] = {}
        self.fresh: dict[str, tuple[int, str]] = {}
        """contract -> (creation block, deployer)"""
        self.seen_fresh: set[str] = set()
        self.reverts: dict[str, deque[int]] = defaultdict(deque)
        self.undo = UndoLog()
        """How to take back each of the last blocks' changes (``rewind``)."""
        self.make = FindingMaker(cfg.id, cfg.severity, cfg.title or "attack set-up signal", cfg.labels)

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def tainted(self, address: str) -> bool:
        """Whether ``address`` is a source or was funded from one within ``hops``."""
        return address.lower() in self.taint

    def funding(self, address: str) -> list[str]:
        """``address``, its funder, ... up to its source; ``[]`` when it is not tainted."""
        path: list[str] = []
        current: str | None = address.lower()
        while current is not None and current in self.taint and current not in path:
            path.append(current)
            current = self.funder.get(current) if self.taint[current] > 0 else None
        return path

    def _spread(self, src: str, dst: str) -> None:
        hops = self.taint.get(src)
        if hops is not None and hops < self.cfg.hops and dst not in self.taint and dst not in self.protocol:
            self.undo.put(self.taint, dst, hops + 1)
            self.undo.put(self.funder, dst, src)

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        block = ctx.block
        self.undo.begin(block.number)
        self._import(block.timestamp * 1000)
        for tx in block.transactions:
            sender = tx.sender.lower()
            to = tx.to.lower() if tx.to else None
            ok = tx.receipt is None or tx.receipt.status == 1
            if ok and tx.receipt is not None:
                for log in tx.receipt.logs:
                    if log.address.lower() in self.sources:
                        for word in address_words(log.topics, log.data):
                            self._spread(log.address.lower(), word)
            if ok and to is not None and tx.value > 0:
                self._spread(sender, to)
            created = (
                tx.receipt.contract_address.lower()
                if ok and tx.receipt and tx.receipt.contract_address
                else None
            )
            if created is not None:
                self.undo.put(self.fresh, created, (block.number, sender))
                if self.tainted(sender):
                    out.append(self._finding(ctx, tx, "tainted-deployment", sender, created, tainted=True))
            if to is not None and ok:
                out += self._fresh_touch(ctx, tx, to)
            if not ok and to is not None and (to in self.protocol or to in self.fresh):
                out += self._revert(ctx, block, tx, sender)
        self._expire(block)
        return out

    def _import(self, now_ms: int) -> None:
        """Make the feed's live funding sources sources, and expired ones no longer."""
        if self.feed is None:
            return
        self.feed.refresh()
        self._shared = {a: i for a, i in self.feed.funding_sources(now_ms).items() if a not in self.protocol}
        for address in sorted(self.imported - set(self._shared)):
            self.undo.discard(self.imported, address)
            if address not in self.sources:
                self.undo.delete(self.taint, address)
        for address in sorted(set(self._shared) - self.imported):
            self.undo.add(self.imported, address)
            if self.taint.get(address) != 0:
                self.undo.put(self.taint, address, 0)
                self.undo.delete(self.funder, address)

    def _fresh_touch(self, ctx: BlockContext, tx: Tx, to: str) -> list[Finding]:
        origin = self.fresh.get(to)
        if origin is None or to in self.seen_fresh or tx.receipt is None:
            return []
        if not any(self._touches(log.address, log.topics) for log in tx.receipt.logs):
            return []
        self.undo.add(self.seen_fresh, to)
        deployer = origin[1]
        return [
            self._finding(ctx, tx, "fresh-contract-interaction", deployer, to, tainted=self.tainted(deployer))
        ]

    def _touches(self, emitter: str, topics: Sequence[str]) -> bool:
        # the protocol emitted it, or it names the protocol (a token Transfer out of the vault)
        if emitter.lower() in self.protocol:
            return True
        return any(
            t[:26] == "0x000000000000000000000000" and "0x" + t[26:] in self.protocol for t in topics[1:]
        )

    def _revert(self, ctx: BlockContext, block: Block, tx: Tx, sender: str) -> list[Finding]:
        burst = self.cfg.reverts
        if burst is None:
            return []
        if sender not in self.reverts:
            self.undo.put(self.reverts, sender, deque())
        times = self.reverts[sender]
        times.append(block.number)
        self.undo.record(times.pop)
        while times and times[0] <= block.number - burst.window_blocks:
            self._undo_appendleft(times, times.popleft())
        if len(times) != burst.count:
            return []  # fire once when the burst reaches the count, not on every further revert
        return [
            self._finding(
                ctx, tx, "revert-burst", sender, tx.to.lower() if tx.to else "", tainted=self.tainted(sender)
            )
        ]

    def _finding(
        self, ctx: BlockContext, tx: Tx, signal: str, actor: str, target: str, *, tainted: bool
    ) -> Finding:
        severity = (
            self.make.severity
            if tainted or signal == "tainted-deployment"
            else min(Severity.MEDIUM, self.make.severity)
        )
        path = self.funding(actor)
        evidence: dict[str, Any] = {
            "signal": signal,
            "actor": actor,
            "target": target,
            "tainted": tainted,
            "hops_from_source": self.taint.get(actor),
            "funding": path,
        }
        shared = self._shared.get(path[-1]) if path and path[-1] in self.imported else None
        if shared is not None:
            evidence["funding_intel"] = {
                "source": shared.source,
                "signer": shared.signer,
                "shared_incident": shared.incident,
                "stix_id": shared.stix_id,
            }
        title = {
            "tainted-deployment": f"contract {target} deployed by mixer-funded {actor}",
            "fresh-contract-interaction": f"fresh contract {target} interacted with the protocol",
            "revert-burst": f"a burst of reverted calls into the protocol by {actor}",
        }[signal]
        return self.make(
            ctx,
            tx=tx,
            evidence=evidence,
            severity=severity,
            title=title,
            labels={"signal": signal, "actor": actor},
        )

    def _undo_appendleft(self, times: deque[int], number: int) -> None:
        self.undo.record(lambda: times.appendleft(number))

    def _expire(self, block: Block) -> None:
        if block.number % 64:
            return
        horizon = block.number - self.cfg.fresh_blocks
        for address in [a for a, (created, _d) in self.fresh.items() if created < horizon]:
            self.undo.delete(self.fresh, address)
            self.undo.discard(self.seen_fresh, address)
        for sender in [s for s, t in self.reverts.items() if not t]:
            self.undo.delete(self.reverts, sender)

    def rewind(self, to_block: int) -> None:
        """Undo the changes of blocks above ``to_block`` (taint, fresh contracts, reverts), newest first."""
        self.undo.rewind(to_block)

    def snapshot(self) -> dict[str, Any]:
        return {
            "taint": dict(self.taint),
            "funder": dict(self.funder),
            "imported": sorted(self.imported),
            "fresh": {a: [b, d] for a, (b, d) in self.fresh.items()},
            "seen_fresh": sorted(self.seen_fresh),
            "reverts": {a: list(t) for a, t in self.reverts.items() if t},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``snapshot``, over the configured sources (a source added since is tainted)."""
        self.taint.update({str(a): int(h) for a, h in (state.get("taint") or {}).items()})
        self.taint.update(dict.fromkeys(self.sources, 0))  # a source now, whatever it was then
        self.imported = {str(a) for a in state.get("imported") or ()}  # the next block checks they live
        self.funder = {
            str(a): str(f) for a, f in (state.get("funder") or {}).items() if a not in self.sources
        }
        self.fresh = {str(a): (int(b), str(d)) for a, (b, d) in (state.get("fresh") or {}).items()}
        self.seen_fresh = {str(a) for a in state.get("seen_fresh") or ()}
        self.reverts.clear()
        self.reverts.update(
            {str(a): deque(int(n) for n in t) for a, t in (state.get("reverts") or {}).items()}
        )
