"""``check_config(path)``: build offline everything start-up builds, and say every problem with its line.

Nothing here touches a chain, a database or a key. In order:
1. the file: keys, types, references by name, the deployment (manifest, artifacts, ABI files);
2. the monitors against the ABIs: events, view functions and their arguments (contract names
   included), ``parameter_events``, and each expression tried on values shaped as the chain's
   (``detect.lint``);
3. the playbooks against the ABIs (function, argument count and types), the policy against the ABIs,
   and each playbook call against the policy (a call it always refuses);
4. ``attack_simulation.follow_ups`` against the ABIs (function, arguments, ``for_each`` event).

One cause is one error: what refers to a contract whose ABI could not be read (a missing manifest)
is not built, so it is not reported again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from breakglass.config import LoadedConfig, inspect_config
from breakglass.errors import ConfigIssue

__all__ = ["CheckReport", "check_config"]


@dataclass(frozen=True, slots=True)
class CheckReport:
    config: LoadedConfig | None
    """None when the file itself could not be read or validated."""
    errors: tuple[ConfigIssue, ...]
    warnings: tuple[ConfigIssue, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_config(path: Path | str, environ: Mapping[str, str] | None = None) -> CheckReport:
    """Every problem of the configuration at ``path``, sorted by line."""
    loaded, issues = inspect_config(path, environ)
    if loaded is None:
        return CheckReport(None, tuple(issues), ())
    from breakglass.detect.lint import check_monitors, monitor_warnings  # loaded only when checking

    warnings = list(loaded.warnings)
    for view in loaded.per_chain():  # several chains: each on its own view (its contracts, its id)
        issues += check_monitors(view, chain_id=view.chain_id)
        issues += _check_response(view)
        warnings += monitor_warnings(view)
    issues += _check_follow_ups(loaded)
    unique = list(dict.fromkeys(issues))
    unique.sort(key=lambda issue: (issue.file != str(loaded.path), issue.line or 0))
    return CheckReport(loaded, tuple(unique), tuple(dict.fromkeys(warnings)))


def _check_response(loaded: LoadedConfig) -> list[ConfigIssue]:
    settings = loaded.settings
    if not settings.playbooks and not settings.policy.allow:
        return []
    from breakglass.respond.playbook import PlaybookBook, vet_playbooks
    from breakglass.respond.policy import Policy

    skip = loaded.unresolved
    if not loaded.complete:  # a name missing may be one of the unreadable manifest's
        names = {a.contract for p in settings.playbooks for a in p.actions if hasattr(a, "contract")}
        names |= {a.contract for a in settings.policy.allow}
        skip = skip | frozenset(names - set(loaded.contracts))
    issues: list[ConfigIssue] = []
    book = PlaybookBook.compile(
        settings.playbooks, loaded.contracts, str(loaded.path), locate=loaded.issue, issues=issues, skip=skip
    )
    policy = Policy.compile(
        settings.policy, loaded.contracts, time.monotonic, locate=loaded.issue, issues=issues, skip=skip
    )
    issues += vet_playbooks(book, policy, loaded.issue)
    return issues


def _check_follow_ups(loaded: LoadedConfig) -> list[ConfigIssue]:
    """``attack_simulation.follow_ups`` against the ABIs (function, arguments, ``for_each`` event)."""
    configs = loaded.settings.attack_simulation.follow_ups
    if not configs:
        return []
    from breakglass.simulate.followups import compile_follow_ups

    contracts = {name: (record.address, record.abi) for name, record in loaded.contracts.items()}
    _compiled, issues = compile_follow_ups(configs, contracts, loaded.issue, skip=loaded.unresolved)
    return issues
