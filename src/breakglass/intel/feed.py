"""Pulling peers' signed bundles into the indicator store the intel monitors match against.

For each configured source, every bundle found is checked in this order, and refused with a reason
at the first failure: ``malformed`` (not JSON, not STIX), ``unsigned``, ``tampered`` (the signature
does not cover this content), ``untrusted`` (a valid signature by a key the source does not list),
``expired`` (every indicator older than the source's TTL or past its ``valid_until``). Refusals are
logged (``intel.bundle_refused``), counted (``breakglass_intel_bundles_total{outcome}``) and
reported; nothing of a refused bundle is imported. A pull replaces a source's indicators with what
its bundles hold now, so a peer's revocation (or a bundle removed) is followed.

The store is one JSON file, written whole and atomically (``os.replace``): a detector reading it
while a pull writes sees the old file or the new one. ``FeedIndicators`` re-reads it when it changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from breakglass.config.intel import IntelSourceConfig
from breakglass.errors import IntelError
from breakglass.intel.bundle import SharedIndicator, parse_indicators
from breakglass.intel.signing import verify_bundle
from breakglass.logs import get_logger

__all__ = [
    "FeedIndicators",
    "ImportedIndicator",
    "SourceReport",
    "accept_bundle",
    "pull_sources",
    "read_store",
]

log = get_logger(__name__)
STORE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ImportedIndicator:
    """A verified indicator as stored: what to match, and what a match of it means here."""

    kind: str
    value: str
    source: str
    signer: str
    severity: str
    confidence: int
    expires_at_ms: int
    chain_id: int | None = None
    incident: str | None = None
    stix_id: str = ""
    name: str = ""


@dataclass
class SourceReport:
    """What one source's pull did."""

    source: str
    accepted: int = 0
    indicators: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _expiry(indicator: SharedIndicator, source: IntelSourceConfig) -> int:
    lives = indicator.valid_from_ms + int(source.ttl_hours * 3_600_000)
    return min(lives, indicator.valid_until_ms) if indicator.valid_until_ms is not None else lives


def accept_bundle(
    bundle: Mapping[str, Any], source: IntelSourceConfig, *, now_ms: int
) -> list[ImportedIndicator]:
    """The indicators ``bundle`` gives under ``source``'s trust, or ``IntelError`` with the reason."""
    signer = verify_bundle(bundle)
    if signer.lower() not in {s.lower() for s in source.signers}:
        raise IntelError(
            f"bundle {bundle.get('id')} is signed by {signer}, not by a signer source {source.name!r} trusts",
            reason="untrusted",
        )
    shared = parse_indicators(bundle)
    kept = [i for i in shared if (i.confidence if i.confidence is not None else 100) >= source.min_confidence]
    live = [(i, _expiry(i, source)) for i in kept]
    live = [(i, expires) for i, expires in live if expires > now_ms]
    if shared and not live and len(kept) == len(shared):
        raise IntelError(f"bundle {bundle.get('id')}: every indicator has expired", reason="expired")
    return [
        ImportedIndicator(
            kind=i.kind,
            value=i.value,
            source=source.name,
            signer=signer,
            severity=source.severity,
            confidence=min(source.confidence, i.confidence if i.confidence is not None else 100),
            expires_at_ms=expires,
            chain_id=i.chain_id,
            incident=i.incident,
            stix_id=i.stix_id,
            name=i.name,
        )
        for i, expires in live
    ]


def _bundle_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    return [path]


def _read_bundle(file: Path) -> dict[str, Any] | IntelError:
    try:
        bundle = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return IntelError(f"not a JSON bundle ({type(exc).__name__})", reason="malformed")
    return bundle if isinstance(bundle, dict) else IntelError("not a JSON object", reason="malformed")


def _source_bundles(
    source: IntelSourceConfig, base: Path, report: SourceReport
) -> list[tuple[str, dict[str, Any] | IntelError]] | None:
    """(where, bundle or why it is unreadable) of every bundle the source holds; None when the source
    cannot be read at all."""
    if source.taxii is not None:
        from breakglass.intel.signing import bundles_from_objects
        from breakglass.intel.taxii import fetch_objects

        try:
            objects = fetch_objects(source.taxii, source.name)
        except IntelError as exc:
            report.problems.append(f"{exc.message}; the indicators pulled before are kept")
            log.warning("intel.source_unreachable", source=source.name, detail=exc.message)
            return None
        bundles, unsigned = bundles_from_objects(objects)
        where = f"taxii collection of {source.name}"
        out: list[tuple[str, dict[str, Any] | IntelError]] = [(where, b) for b in bundles]
        if unsigned:
            message = f"{unsigned} indicator(s) covered by no signature object"
            out.append((where, IntelError(message, reason="unsigned")))
        return out
    assert source.file is not None  # one of file and taxii (config.intel)
    path = base / source.file
    if not path.exists():
        report.problems.append(f"{path}: not found; the indicators pulled before are kept")
        log.warning("intel.source_missing", source=source.name, file=str(path))
        return None
    return [(str(file), _read_bundle(file)) for file in _bundle_files(path)]


def _refuse(report: SourceReport, where: str, exc: IntelError) -> None:
    from breakglass.metrics import INTEL_BUNDLES

    report.refused[exc.reason] = report.refused.get(exc.reason, 0) + 1
    report.problems.append(f"{where}: {exc.message}")
    INTEL_BUNDLES.labels(report.source, exc.reason).inc()
    log.warning("intel.bundle_refused", source=report.source, file=str(where), reason=exc.reason,
                detail=exc.message)  # fmt: skip


def pull_sources(
    sources: Sequence[IntelSourceConfig], base: Path, store: Path, *, now_ms: int
) -> list[SourceReport]:
    """Verify every bundle of ``sources`` and write the indicators they give into ``store``; a source
    whose file is missing keeps the indicators it had (a peer's outage does not disarm us)."""
    from breakglass.metrics import INTEL_BUNDLES

    kept = read_store(store)
    reports: list[SourceReport] = []
    for source in sources:
        report = SourceReport(source.name)
        reports.append(report)
        bundles = _source_bundles(source, base, report)
        if bundles is None:
            continue  # unavailable: what it gave before is kept
        found: list[ImportedIndicator] = []
        for where, bundle in bundles:
            try:
                if isinstance(bundle, IntelError):
                    raise bundle
                found += accept_bundle(bundle, source, now_ms=now_ms)
            except IntelError as exc:
                _refuse(report, where, exc)
                continue
            report.accepted += 1
            INTEL_BUNDLES.labels(source.name, "accepted").inc()
        unique = {(i.kind, i.value): i for i in found}
        report.indicators = len(unique)
        kept = [i for i in kept if i.source != source.name] + list(unique.values())
        log.info("intel.source_pulled", source=source.name, bundles=report.accepted,
                 indicators=report.indicators, refused=report.refused)  # fmt: skip
    write_store(store, kept)
    return reports


def read_store(path: Path) -> list[ImportedIndicator]:
    """The stored indicators; none when there is no store yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise IntelError(f"{path}: unreadable indicator store ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
        raise IntelError(f"{path}: not a breakglass indicator store (version {STORE_VERSION})")
    return [ImportedIndicator(**item) for item in data.get("indicators", ())]


def write_store(path: Path, indicators: Iterable[ImportedIndicator]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"version": STORE_VERSION, "indicators": [asdict(i) for i in indicators]}
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


class FeedIndicators:
    """The store as the detectors see it: indicators by value, re-read when the file changes."""

    def __init__(self, path: Path, sources: Iterable[str] | None = None) -> None:
        self.path = path
        self.sources = set(sources) if sources is not None else None
        """only these sources' indicators (None: every source)"""
        self._stamp: tuple[int, int] | None = None
        self.by_value: dict[str, list[ImportedIndicator]] = {}
        self.funding: dict[str, list[ImportedIndicator]] = {}
        """funding sources (mixer hops) by address: never matched as attackers (``match``)"""

    def refresh(self) -> None:
        """Re-read the store if it changed (one ``stat`` otherwise); a broken store keeps the last."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self.by_value, self.funding = None, {}, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            indicators = read_store(self.path)
        except IntelError as exc:
            log.warning("intel.store_unreadable", detail=exc.message)
            return
        by_value: dict[str, list[ImportedIndicator]] = {}
        funding: dict[str, list[ImportedIndicator]] = {}
        for i in indicators:
            if self.sources is not None and i.source not in self.sources:
                continue
            if i.kind in ("account", "code_hash"):
                by_value.setdefault(i.value.lower(), []).append(i)
            elif i.kind == "funding":
                funding.setdefault(i.value.lower(), []).append(i)
        self._stamp, self.by_value, self.funding = stamp, by_value, funding

    def match(self, value: str, now_ms: int) -> ImportedIndicator | None:
        """The most severe live indicator of ``value``, if any."""
        from breakglass.domain import Severity

        live = [i for i in self.by_value.get(value.lower(), ()) if i.expires_at_ms > now_ms]
        return max(live, key=lambda i: (Severity.parse(i.severity), i.confidence), default=None)

    def funding_sources(self, now_ms: int) -> dict[str, ImportedIndicator]:
        """Live funding sources by address (the longest-lived indicator of each)."""
        out: dict[str, ImportedIndicator] = {}
        for address, items in self.funding.items():
            live = [i for i in items if i.expires_at_ms > now_ms]
            if live:
                out[address] = max(live, key=lambda i: i.expires_at_ms)
        return out
