"""Several chains in one configuration: which chain each contract, monitor, playbook, policy rule and
Safe belongs to, and the one-chain view of the configuration each chain's stages are built from.

A file with ``chain:`` (or with neither) protects one chain, exactly as before. A file with ``chains:``
lists each chain (name, chain id, endpoints, optionally its own guardian key):

- a contract says its chain (``chain:``; optional when ``chains`` has one entry); the contracts of the
  deployment manifest belong to the chain with the manifest's chain id;
- a monitor belongs to the chain of the contracts it names (``calls`` included); one naming contracts
  of two chains is an error, one naming none (a balance, an intel monitor) says its ``chain``;
- a playbook belongs to the chain of the contracts it calls (and its Safes'); its ``match.monitors``
  must be of that chain: a containment acts on the chain its finding came from. A playbook calling no
  contract belongs to the chains of the monitors it matches, else to every chain;
- a policy rule belongs to its contract's chain; a Safe says its ``chain``.

``LoadedConfig.per_chain()`` then gives one ``LoadedConfig`` per chain with only that chain's parts
and ``chain:`` set to its entry, so every builder (watcher, mempool, responder) works on it unchanged.
Its ``lines`` are renumbered with the lists, so an error it reports points at the original line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from breakglass.config.models import ChainConfig, ChainEntry, Settings
from breakglass.config.refs import closest, find_refs
from breakglass.config.yamlsource import Located, PathKey, format_path
from breakglass.errors import ConfigIssue

__all__ = ["ALL_CHAINS", "Placement", "chain_settings", "origin_of", "place", "view_origins", "view_settings"]

ALL_CHAINS = "*"
"""The placement of a playbook that calls no contract and matches no monitor: every chain."""

_SECTIONS: tuple[PathKey, ...] = (("monitors",), ("playbooks",), ("safes",), ("policy", "allow"))


@dataclass(frozen=True, slots=True)
class Placement:
    """Where each part of a multi-chain file belongs. Empty for a one-chain file (``chain:``)."""

    chains: tuple[str, ...] = ()
    """The names of ``chains``, in file order."""
    contracts: Mapping[str, str] = field(default_factory=dict)
    """contract name -> chain name"""
    items: Mapping[PathKey, str] = field(default_factory=dict)
    """(section..., index) -> chain name (or ``ALL_CHAINS``), for monitors, playbooks, Safes and
    policy rules"""

    def of(self, path: PathKey, chain: str) -> bool:
        """Whether the list item at ``path`` is part of ``chain``'s view."""
        return self.items.get(path) in (chain, ALL_CHAINS)


def _items(settings: Settings, section: PathKey) -> Sequence[Any]:
    value: Any = settings
    for key in section:
        value = getattr(value, str(key))
    return value  # type: ignore[no-any-return]


def _named_contracts(model: BaseModel) -> list[tuple[PathKey, str]]:
    """Contract names a model refers to: its ``RefTo("contract")`` fields, and the contract of each
    ``calls`` entry (``'contract.function(args)'``) of an invariant."""
    named = [(path, name) for path, kind, name in find_refs(model)[1] if kind == "contract"]
    calls = getattr(model, "calls", None)
    if isinstance(calls, dict):
        for key, text in calls.items():
            named.append((("calls", key), str(text).split(".", 1)[0].strip()))
    return named


def place(
    settings: Settings, located: Located, manifest_chain_id: int | None, manifest_names: Iterable[str]
) -> tuple[Placement, list[ConfigIssue]]:
    """The placement of every part of ``settings`` among its ``chains``, and the problems found."""
    if not settings.chains:
        return Placement(), []
    issues: list[ConfigIssue] = []

    def issue(path: PathKey, message: str) -> None:
        issues.append(ConfigIssue(located.file, located.line_of(path), format_path(path), message))

    names = tuple(c.name for c in settings.chains)
    if "chain" in settings.model_fields_set:
        issue(("chain",), "set either 'chain' (one chain) or 'chains' (several), not both")
    if settings.mempool.ws is not None:
        issue(("mempool", "ws"), "one endpoint for several chains: set each chain's 'ws' in 'chains'")
    ids: dict[int, str] = {}
    for i, entry in enumerate(settings.chains):
        if entry.chain_id in ids:
            issue(("chains", i, "chain_id"), f"{entry.chain_id} is also chain {ids[entry.chain_id]!r}'s id")
        ids.setdefault(entry.chain_id, entry.name)
    only = names[0] if len(names) == 1 else None
    contracts: dict[str, str] = {}
    if manifest_chain_id is not None:
        owner = ids.get(manifest_chain_id)
        if owner is None:
            at: PathKey = ("deployment",)
            issue(at, f"the manifest is of chain id {manifest_chain_id}, which no entry of 'chains' has "
                      f"(known: {', '.join(f'{n} {i}' for i, n in ids.items())})")  # fmt: skip
        else:
            contracts.update({name: owner for name in manifest_names})
    for i, contract in enumerate(settings.contracts):
        chain = contract.chain or only
        if chain is None:
            issue(
                ("contracts", i),
                f"which chain is {contract.name!r} on? set 'chain' {closest('', list(names))}",
            )
        elif chain in names:  # an unknown name is reported by the reference check
            contracts[contract.name] = chain
    items: dict[PathKey, str] = {}
    monitors: dict[str, str] = {}
    safes: dict[str, str] = {}
    for section in _SECTIONS:
        for i, model in enumerate(_items(settings, section)):
            at = (*section, i)
            chain = _place_one(model, at, contracts, safes, monitors, names, only, issue)
            if chain is None:
                continue
            items[at] = chain
            if section == ("monitors",):
                monitors[model.id] = chain
            elif section == ("safes",):
                safes[model.name] = chain
    return Placement(names, contracts, items), issues


def _place_one(
    model: Any,
    at: PathKey,
    contracts: Mapping[str, str],
    safes: Mapping[str, str],
    monitors: Mapping[str, str],
    names: Sequence[str],
    only: str | None,
    issue: Any,
) -> str | None:
    """The chain of one monitor, playbook, Safe or policy rule (None: not placed, an issue said why)."""
    found: dict[str, str] = {}  # chain -> first thing of it named
    for _path, name in _named_contracts(model):
        if name in contracts:
            found.setdefault(contracts[name], f"contract {name!r}")
    for action in getattr(model, "actions", ()):
        via = str(getattr(action, "via", ""))
        if via.startswith("safe:") and via[5:] in safes:
            found.setdefault(safes[via[5:]], f"Safe {via[5:]!r}")
    explicit = getattr(model, "chain", None)
    if len(found) > 1:
        (a, what_a), (b, what_b) = list(found.items())[:2]
        issue(at, f"names {what_a} of chain {a!r} and {what_b} of chain {b!r}: each belongs to one "
                  "chain (write one per chain)")  # fmt: skip
        return None
    if found:
        [chain] = found
        if explicit is not None and explicit != chain:
            issue((*at, "chain"), f"{explicit!r}, but {found[chain]} is on chain {chain!r}")
            return None
    elif explicit is not None:
        chain = explicit if explicit in names else ""
        if not chain:
            return None  # an unknown name is reported by the reference check
    elif at[0] == "playbooks":
        matched = {monitors[m] for m in model.match.monitors if m in monitors}
        if len(matched) > 1:
            message = (
                f"matches monitors of chains {', '.join(sorted(matched))}: a playbook calling no "
                "contract matches monitors of one chain (write one per chain)"
            )
            issue((*at, "match", "monitors"), message)
            return None
        return matched.pop() if matched else ALL_CHAINS
    elif only is not None:
        chain = only
    else:
        what = "a monitor naming no contract" if at[0] == "monitors" else "a Safe"
        issue(at, f"{what}: say which chain with 'chain' {closest('', list(names))}")
        return None
    if at[0] == "playbooks":
        for j, monitor in enumerate(model.match.monitors):
            if monitors.get(monitor, chain) != chain:
                message = (
                    f"monitor {monitor!r} watches chain {monitors[monitor]!r}, but this playbook acts on "
                    f"chain {chain!r}: a containment acts on the chain its finding came from"
                )
                issue((*at, "match", "monitors", j), message)
                return None
    return chain


def chain_settings(entry: ChainEntry) -> ChainConfig:
    """A ``chains`` entry as the ``chain:`` section of its one-chain view."""
    return ChainConfig.model_validate(entry.model_dump(exclude={"guardian"}))


def view_settings(settings: Settings, placement: Placement, chain: str) -> Settings:
    """``settings`` with only what belongs to ``chain`` (see ``Placement``)."""
    entry = next(c for c in settings.chains if c.name == chain)
    responder = settings.responder
    if entry.guardian is not None:
        responder = responder.model_copy(update={"guardian": entry.guardian})
    keep = {
        section: [m for i, m in enumerate(_items(settings, section)) if placement.of((*section, i), chain)]
        for section in _SECTIONS
    }
    return settings.model_copy(
        update={
            "chain": chain_settings(entry),
            "chains": [],
            "contracts": [c for c in settings.contracts if placement.contracts.get(c.name) == chain],
            "monitors": keep[("monitors",)],
            "playbooks": keep[("playbooks",)],
            "safes": keep[("safes",)],
            "policy": settings.policy.model_copy(update={"allow": keep[("policy", "allow")]}),
            "mempool": settings.mempool.model_copy(
                update={
                    "ignore": [
                        i for i in settings.mempool.ignore if placement.contracts.get(i, chain) == chain
                    ]
                }
            ),
            "responder": responder,
        }
    )


def view_origins(settings: Settings, placement: Placement, chain: str) -> dict[PathKey, PathKey]:
    """Where each list item of ``chain``'s view is in the file: the view's lists lose the other chains'
    items, so its ``n``-th monitor is the file's ``i``-th (view path prefix -> file path prefix)."""
    origins: dict[PathKey, PathKey] = {}
    for i, entry in enumerate(settings.chains):
        if entry.name == chain:
            origins[("chain",)] = ("chains", i)
    kept = [i for i, c in enumerate(settings.contracts) if placement.contracts.get(c.name) == chain]
    origins.update({("contracts", n): ("contracts", i) for n, i in enumerate(kept)})
    for section in _SECTIONS:
        kept = [i for i in range(len(_items(settings, section))) if placement.of((*section, i), chain)]
        origins.update({(*section, n): (*section, i) for n, i in enumerate(kept)})
    return origins


def origin_of(origins: Mapping[PathKey, PathKey], path: PathKey) -> PathKey:
    """``path`` of a one-chain view as the path of the file (see ``view_origins``)."""
    for end in (1, 2, 3):
        found = origins.get(path[:end])
        if found is not None:
            return (*found, *path[end:])
    return path
