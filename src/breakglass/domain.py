"""Core types that flow through the pipeline: chain data in, findings, alerts, incidents, actions out.

Every stage speaks these types and nothing else; raw JSON-RPC dictionaries are decoded into them at the
chain boundary (``breakglass.chain``). All of them are frozen: a stage that wants to change one makes a
new one, so nothing downstream can be surprised by a mutation upstream.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

import msgspec

__all__ = [
    "Address",
    "Block",
    "ChainId",
    "Finding",
    "FindingHasher",
    "FindingStage",
    "Hash32",
    "IncidentId",
    "Log",
    "PendingTx",
    "Receipt",
    "Severity",
    "Tx",
    "breach_of",
    "fingerprint_of",
]

Address = NewType("Address", str)
"""A checksummed 0x-prefixed 20-byte address."""
Hash32 = NewType("Hash32", str)
"""A lowercase 0x-prefixed 32-byte hash (block hash, transaction hash, code hash)."""
ChainId = NewType("ChainId", int)
IncidentId = NewType("IncidentId", str)


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered, so ``severity >= Severity.HIGH`` reads as it should."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            accepted = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (accepted: {accepted})") from None

    def __str__(self) -> str:
        return self.name.lower()


class FindingStage(enum.StrEnum):
    """Where a finding was made: in a block already on chain, on a pending transaction's simulation,
    or on the simulation of a new contract's calls (``simulate.attack``: harm proven before it acts)."""

    BLOCK = "block"
    PENDING = "pending"
    SETUP_PROVEN = "setup-proven"


# The chain data types are frozen msgspec structs rather than frozen dataclasses: a backfill builds
# one per block, transaction, receipt and log, and a frozen dataclass's __init__ (an
# object.__setattr__ call per field) cost ~10x a struct's (docs/detection.md, "Backfill CPU per
# block"). They compare, hash, pickle and repr as the dataclasses did; msgspec.structs.replace is
# their dataclasses.replace. gc=False: immutable, they can hold no reference cycle.


class Log(msgspec.Struct, frozen=True, gc=False):
    address: Address
    topics: tuple[Hash32, ...]
    data: bytes
    log_index: int
    tx_hash: Hash32
    tx_index: int
    block_number: int
    block_hash: Hash32
    removed: bool = False


class Receipt(msgspec.Struct, frozen=True, gc=False):
    tx_hash: Hash32
    status: int
    gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    logs: tuple[Log, ...]


class Tx(msgspec.Struct, frozen=True, gc=False):
    hash: Hash32
    sender: Address
    to: Address | None
    value: int
    input: bytes
    nonce: int
    gas: int
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    gas_price: int | None
    index: int
    receipt: Receipt | None = None

    @property
    def selector(self) -> bytes:
        return self.input[:4]


class Block(msgspec.Struct, frozen=True, gc=False):
    number: int
    hash: Hash32
    parent_hash: Hash32
    timestamp: int
    base_fee: int | None
    transactions: tuple[Tx, ...]
    withdrawals: int = 0
    """how many beacon-chain withdrawals the block credits (they change balances without a tx)"""

    @property
    def quiet(self) -> bool:
        """No transaction and no withdrawal: contract state is the parent's (bar system contracts)."""
        return not self.transactions and not self.withdrawals

    @property
    def logs(self) -> tuple[Log, ...]:
        return tuple(log for tx in self.transactions if tx.receipt for log in tx.receipt.logs)


@dataclass(frozen=True, slots=True)
class PendingTx:
    """A transaction seen in the mempool, not yet included."""

    tx: Tx
    seen_at_ms: float


_PLAIN = frozenset({str, int, float, bool, type(None)})
_quote = json.encoder.encode_basestring_ascii  # what json.dumps uses for strings (C)


def _canonical(value: Any) -> Any:
    if type(value) in _PLAIN:  # the usual case, decided without ABC isinstance checks
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _plain_json(value: Any) -> str | None:
    """``json.dumps`` of a str, int, None or a dict of str -> str, as ``fingerprint_of`` writes it;
    None for anything else (the general path handles it)."""
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if kind is dict:
        try:
            return _plain_labels(tuple(value.items())) if value else "{}"
        except TypeError:  # an unhashable value: the general path
            return None
    return None


@functools.lru_cache(maxsize=4096)
def _plain_labels(items: tuple[tuple[Any, Any], ...]) -> str | None:
    """A findings' labels dict (the same few per monitor) as JSON; None unless all str -> str."""
    if not all(type(k) is str and type(v) is str for k, v in items):
        return None
    return "{" + ",".join(_quote(k) + ":" + _quote(v) for k, v in sorted(items)) + "}"


def _plain_parts(*parts: Any) -> str | None:
    """Plain parts as ``fingerprint_of`` writes them between its brackets; None if one is not plain."""
    written: list[str] = []
    for part in parts:
        text = _plain_json(part)
        if text is None:
            return None
        written.append(text)
    return ",".join(written)


def _sha256_32(blob: str) -> str:
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def fingerprint_of(*parts: Any) -> str:
    """A stable short hash of the given parts; equal inputs give equal fingerprints across runs.

    Findings of a backfill make thousands of these: plain parts are written directly (the same text
    ``json.dumps`` gives, checked in ``tests/unit/test_domain_fingerprint.py``)."""
    written: list[str] = []
    for part in parts:
        text = _plain_json(part)
        if text is None:
            blob = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"), default=str)
            break
        written.append(text)
    else:
        blob = "[" + ",".join(written) + "]"
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def breach_of(monitor_id: str, chain_id: int, labels: Mapping[str, str], since: int) -> str:
    """The identity of a breach of a state monitor (an invariant, a flow) that began at block
    ``since``: ``<scope>@<since>``, the scope naming the monitor, chain and labels. It stays the same
    for as long as the breach lasts, across blocks and restarts; one that ends and begins again is
    another. The responder reads the scope and block back (``respond.responder``)."""
    return f"{fingerprint_of('breach', chain_id, monitor_id, dict(labels))[:24]}@{since}"


@dataclass(frozen=True, slots=True)
class Finding:
    """What a detector saw. Carries enough evidence for a responder, and a fingerprint for dedup.

    ``labels`` route and group it (protocol, market, attacker...); ``evidence`` is the decoded detail
    shown to people and used to template playbook arguments.
    """

    monitor_id: str
    severity: Severity
    chain_id: int
    block_number: int
    title: str
    stage: FindingStage = FindingStage.BLOCK
    tx_hash: Hash32 | None = None
    log_index: int | None = None
    block_hash: Hash32 | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    observed_at_ms: float = 0.0
    fingerprint: str = ""
    breach: str = ""
    """Which breach this finding reports; automatic actions happen once per breach and target.
    State monitors set it (``breach_of``: one identity while an invariant stays broken); otherwise it
    names the transaction (or block) and labels, the same for a pending transaction and its mined self."""

    def __getstate__(self) -> tuple[Any, ...]:
        # pickled by the backfill worker (``detect/offload.py``), thousands a backfill: the generated
        # slots state calls ``dataclasses.fields()`` per finding
        return _finding_state(self)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(_FINDING_FIELDS, state, strict=True):
            object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        if self.breach and self.fingerprint:
            return
        subject = self.tx_hash or self.block_number
        labels = self.labels if type(self.labels) is dict else dict(self.labels)
        # a backfill builds thousands of findings: the parts both hashes share are written once,
        # as ``fingerprint_of`` writes them, rather than once per hash
        head = _plain_parts(self.monitor_id, self.chain_id, subject)
        tail = _plain_json(labels)
        if not self.breach:
            if head is not None and tail is not None:
                breach = _sha256_32(f'["breach",{head},{tail}]')
            else:
                breach = fingerprint_of("breach", self.monitor_id, self.chain_id, subject, labels)
            object.__setattr__(self, "breach", breach)
        if not self.fingerprint:
            index = _plain_json(self.log_index)
            if head is not None and tail is not None and index is not None:
                fp = _sha256_32(f"[{head},{index},{tail}]")
            else:
                fp = fingerprint_of(self.monitor_id, self.chain_id, subject, self.log_index, labels)
            object.__setattr__(self, "fingerprint", fp)


_FINDING_FIELDS = tuple(f.name for f in dataclasses.fields(Finding))
_finding_state = operator.attrgetter(*_FINDING_FIELDS)


def _finding_builder() -> Callable[..., Finding]:
    """``build(field, ...)``: a ``Finding`` from every field in declaration order, written straight
    into its slots. The frozen dataclass ``__init__`` costs ~3x as much (one ``object.__setattr__``
    looked up per field), and a backfill builds thousands; ``FindingHasher.build`` is the only caller,
    with the fingerprint and breach already computed, which is where ``__post_init__`` returns at once."""
    new = object.__new__
    (
        monitor_id_, severity_, chain_id_, block_number_, title_, stage_, tx_hash_, log_index_,
        block_hash_, labels_, evidence_, observed_at_ms_, fingerprint_, breach_,
    ) = (getattr(Finding, name).__set__ for name in _FINDING_FIELDS)  # fmt: skip

    def build(
        monitor_id: str,
        severity: Severity,
        chain_id: int,
        block_number: int,
        title: str,
        stage: FindingStage,
        tx_hash: Hash32 | None,
        log_index: int | None,
        block_hash: Hash32 | None,
        labels: Mapping[str, str],
        evidence: Mapping[str, Any],
        observed_at_ms: float,
        fingerprint: str,
        breach: str,
    ) -> Finding:
        finding: Finding = new(Finding)
        monitor_id_(finding, monitor_id)
        severity_(finding, severity)
        chain_id_(finding, chain_id)
        block_number_(finding, block_number)
        title_(finding, title)
        stage_(finding, stage)
        tx_hash_(finding, tx_hash)
        log_index_(finding, log_index)
        block_hash_(finding, block_hash)
        labels_(finding, labels)
        evidence_(finding, evidence)
        observed_at_ms_(finding, observed_at_ms)
        fingerprint_(finding, fingerprint)
        breach_(finding, breach)
        return finding

    return build


_build_finding = _finding_builder()


class FindingHasher:
    """Builds the block findings of one monitor on one chain that carry exactly its own labels,
    as ``Finding(...)`` would (same fingerprint, breach and fields; ``tests/unit/test_finding_hasher.py``),
    for less: the parts every one of them shares (monitor, chain, labels) are written once here, not
    per finding, and the fields go straight into the slots (``_finding_builder``). An event monitor's
    findings in a backfill are thousands of these."""

    __slots__ = ("_breach_head", "_fp_head", "_tail", "chain_id", "labels", "monitor_id")

    def __init__(self, monitor_id: str, chain_id: int, labels: Mapping[str, str]) -> None:
        self.monitor_id = monitor_id
        self.chain_id = chain_id
        self.labels = dict(labels)
        head = _plain_parts(monitor_id, chain_id)
        tail = _plain_json(self.labels)
        self._fp_head = None if head is None or tail is None else f"[{head},"
        self._breach_head = f'["breach",{head},'
        self._tail = f",{tail}]"

    def build(
        self,
        severity: Severity,
        block_number: int,
        block_hash: Hash32 | None,
        title: str,
        tx_hash: Hash32 | None,
        log_index: int | None,
        evidence: Mapping[str, Any],
        observed_at_ms: float,
        breach: str,
    ) -> Finding:
        """A ``FindingStage.BLOCK`` finding with a copy of this monitor's labels."""
        subject = _plain_json(tx_hash or block_number)
        index = _plain_json(log_index)
        if self._fp_head is None or subject is None or index is None:  # not plain: the general path
            return Finding(
                monitor_id=self.monitor_id,
                severity=severity,
                chain_id=self.chain_id,
                block_number=block_number,
                block_hash=block_hash,
                title=title,
                tx_hash=tx_hash,
                log_index=log_index,
                labels=dict(self.labels),
                evidence=evidence,
                observed_at_ms=observed_at_ms,
                breach=breach,
            )
        tail = self._tail
        sha256 = hashlib.sha256  # as ``_sha256_32``, inline: two calls fewer per finding
        fingerprint = sha256(f"{self._fp_head}{subject},{index}{tail}".encode()).hexdigest()[:32]
        if not breach:
            breach = sha256(f"{self._breach_head}{subject}{tail}".encode()).hexdigest()[:32]
        return _build_finding(
            self.monitor_id,
            severity,
            self.chain_id,
            block_number,
            title,
            FindingStage.BLOCK,
            tx_hash,
            log_index,
            block_hash,
            dict(self.labels),
            evidence,
            observed_at_ms,
            fingerprint,
            breach,
        )
