"""From a loaded configuration to detectors: names resolved, ABIs searched, expressions compiled.

Every problem of every monitor is collected into one ``ConfigError`` (``monitors[i]: message``), so
``breakglass watch`` refuses a configuration as a whole, never half-applies it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from breakglass.config import LoadedConfig
from breakglass.config.monitors import (
    BalanceMonitor,
    CallMonitor,
    EventMonitor,
    FlowMonitor,
    GovernanceMonitor,
    IntelMonitor,
    InvariantMonitor,
    PluginMonitor,
    SetupMonitor,
    TransactionMonitor,
)
from breakglass.config.refs import closest
from breakglass.detect.abi import find_event, find_function
from breakglass.detect.balance import BalanceDetector
from breakglass.detect.base import Detector
from breakglass.detect.filters import CallDetector, EventDetector, TransactionDetector
from breakglass.detect.flows import FlowDetector
from breakglass.detect.governance import GovernanceDetector, SetUp
from breakglass.detect.intel import IntelDetector
from breakglass.detect.invariants import Invariant, InvariantDetector, InvariantSet
from breakglass.detect.plugins import PluginDetector, load_plugin
from breakglass.detect.reads import Contracts
from breakglass.detect.setup import SetupDetector
from breakglass.errors import ConfigError, ConfigIssue, DetectionError
from breakglass.intel.feed import FeedIndicators
from breakglass.respond.policy import Policy

__all__ = ["BuiltDetectors", "build_detectors", "build_one", "contracts_of", "intel_store_of"]


def contracts_of(config: LoadedConfig) -> Contracts:
    return {name: (record.address, record.abi) for name, record in config.contracts.items()}


class BuiltDetectors:
    def __init__(self, detectors: list[Detector], invariants: InvariantSet, want_code: bool) -> None:
        self.detectors = detectors
        self.invariants = invariants
        """The invariant set on its own, for the mempool simulator's post-state evaluation."""
        self.want_code = want_code


def build_one(
    cfg: Any,
    contracts: Contracts,
    base_dir: Path,
    chain_id: int,
    deployment: SetUp | None = None,
    intel_store: Path | None = None,
    policy: Policy | None = None,
) -> Detector | Invariant:
    if isinstance(cfg, EventMonitor):
        address, abi = contracts[cfg.contract]
        event = find_event(abi, cfg.event)
        if event is None:
            known = sorted({str(e["name"]) for e in abi if e.get("type") == "event"})
            raise DetectionError(
                cfg.id, f"{cfg.contract} has no event {cfg.event!r} {closest(cfg.event, known)}"
            )
        return EventDetector(cfg, address, event)
    if isinstance(cfg, CallMonitor):
        address, abi = contracts[cfg.contract]
        function = find_function(abi, cfg.function)
        if function is None:
            known = sorted({str(e["name"]) for e in abi if e.get("type") == "function"})
            message = f"{cfg.contract} has no function {cfg.function!r} {closest(cfg.function, known)}"
            raise DetectionError(cfg.id, message)
        return CallDetector(cfg, address, function)
    if isinstance(cfg, TransactionMonitor):
        return TransactionDetector(cfg, [contracts[n][0] for n in cfg.to])
    if isinstance(cfg, InvariantMonitor):
        return Invariant.build(cfg, contracts)
    if isinstance(cfg, FlowMonitor):
        return FlowDetector(cfg, contracts)
    if isinstance(cfg, GovernanceMonitor):
        allowed = [contracts[n][0] for n in cfg.allow_contracts]
        addresses = {n: contracts[n][0] for n in cfg.contracts}
        return GovernanceDetector(cfg, addresses, allowed, deployment, contracts, policy)
    if isinstance(cfg, SetupMonitor):
        mixers = [contracts[n][0] for n in cfg.mixer_contracts]
        feed = FeedIndicators(intel_store, cfg.sources) if cfg.sources and intel_store is not None else None
        return SetupDetector(cfg, [contracts[n][0] for n in cfg.protocol], mixers, feed)
    if isinstance(cfg, IntelMonitor):
        return IntelDetector(cfg, base_dir, intel_store)
    if isinstance(cfg, BalanceMonitor):
        return BalanceDetector(cfg)
    if isinstance(cfg, PluginMonitor):
        try:
            plugin = load_plugin(cfg)
        except (ImportError, AttributeError, TypeError) as exc:
            raise DetectionError(cfg.id, f"cannot load plugin {cfg.plugin!r}: {exc}") from None
        return PluginDetector(cfg, plugin, {n: a.lower() for n, (a, _abi) in contracts.items()}, chain_id)
    raise DetectionError(getattr(cfg, "id", "?"), f"unknown monitor kind {type(cfg).__name__}")


def build_detectors(
    config: LoadedConfig, *, chain_id: int, only: Sequence[str] | None = None
) -> BuiltDetectors:
    """Detectors of every enabled monitor (or of the ids in ``only``)."""
    contracts = contracts_of(config)
    issues: list[ConfigIssue] = []
    detectors: list[Detector] = []
    invariants: list[Invariant] = []
    want_code = False
    deployment = SetUp.of(config.deployment)
    # the responder's policy, for governance monitors to judge scheduled calls by; its own errors are
    # the responder's and check's to report
    policy = Policy.compile(config.settings.policy, config.contracts, time.monotonic, issues=[])
    for i, cfg in enumerate(config.settings.monitors):
        if not cfg.enabled or (only is not None and cfg.id not in only):
            continue
        try:
            built = build_one(
                cfg, contracts, config.path.parent, chain_id, deployment, intel_store_of(config), policy
            )
        except DetectionError as exc:
            issues.append(config.issue(("monitors", i), str(exc)))
            continue
        if isinstance(built, Invariant):
            invariants.append(built)
        else:
            detectors.append(built)
            want_code = want_code or bool(getattr(built, "wants_code", False))
    if only is not None:
        missing = sorted(set(only) - {m.id for m in config.settings.monitors})
        if missing:
            issues.append(ConfigIssue(str(config.path), None, "monitors", f"no monitor with id {missing}"))
    if issues:
        raise ConfigError(issues)
    invariant_set = InvariantSet(invariants)
    if invariants:
        detectors.insert(0, InvariantDetector(invariant_set))
    return BuiltDetectors(detectors, invariant_set, want_code)


def intel_store_of(config: LoadedConfig) -> Path:
    """Where ``breakglass intel pull`` keeps the indicators the intel monitors' ``sources`` match."""
    return config.path.parent / config.settings.intel.store
