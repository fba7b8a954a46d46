"""``audit coverage`` from a configuration: fork the configured node, choose what to try and where value
is measured, run the audit, stop the fork."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from eth_account import Account
from eth_utils.address import to_checksum_address

from breakglass.config.deployment import ContractRecord
from breakglass.config.loader import LoadedConfig
from breakglass.config.playbooks import CallAction
from breakglass.coverage.actions import Containment, containments
from breakglass.coverage.audit import AuditOptions, ValueScope, erc20_contracts, run_audit
from breakglass.coverage.node import RpcNode
from breakglass.coverage.probes import from_history
from breakglass.coverage.report import CoverageReport
from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.errors import ConfigError, ConfigIssue, DevnetError
from breakglass.logs import redact_url

__all__ = ["audit_config", "guardian_address"]


def guardian_address(loaded: LoadedConfig, given: str | None) -> str | None:
    """The guardian's address: given, else the responder's remote/KMS signer, else its env key's."""
    if given:
        return to_checksum_address(given)
    guardian = loaded.settings.responder.guardian
    if guardian is None:
        return None
    if guardian.remote is not None:
        return to_checksum_address(guardian.remote.address)
    if guardian.kms is not None:
        return to_checksum_address(guardian.kms.address)
    if guardian.env and os.environ.get(guardian.env):
        return str(Account.from_key(os.environ[guardian.env]).address)
    return None


def _pick(loaded: LoadedConfig, names: Sequence[str], what: str) -> dict[str, str]:
    unknown = [n for n in names if n not in loaded.contracts]
    if unknown:
        raise ConfigError(
            [ConfigIssue(str(loaded.path), None, "", f"--{what} {n!r}: no such contract (known: "
                         f"{', '.join(sorted(loaded.contracts))})") for n in unknown]
        )  # fmt: skip
    return {n: to_checksum_address(loaded.contracts[n].address) for n in names}


def audit_config(
    loaded: LoadedConfig,
    *,
    rpc: str | None = None,
    fork: bool = True,
    fork_block: int | None = None,
    guardian: str | None = None,
    contracts: Sequence[str] = (),
    tokens: Sequence[str] = (),
    holders: Sequence[str] = (),
    minted: Sequence[str] = (),
    evidence: Mapping[str, str] | None = None,
    options: AuditOptions | None = None,
) -> CoverageReport:
    """Audit the playbooks' containments of ``loaded`` on a fork of its node (or on ``rpc`` itself
    with ``fork=False``: a devnet whose state is restored at the end)."""
    options = options or AuditOptions()
    url = rpc or next(iter(loaded.rpc_urls()), None)
    if url is None:
        raise ConfigError(
            [ConfigIssue(str(loaded.path), None, "chain.rpc", "no RPC endpoint to fork (give --rpc)")]
        )
    targets = {n: loaded.contracts[n] for n in (contracts or sorted(loaded.contracts))}
    _pick(loaded, list(targets), "contract")
    scope = ValueScope(
        tokens=_pick(loaded, tokens, "token") if tokens else {**erc20_contracts(loaded.contracts), "ETH": ""},
        holders=_pick(loaded, holders, "holder") if holders else _pick(loaded, list(targets), "holder"),
        minted=_pick(loaded, minted, "minted"),
    )
    playbooks = [p for p in loaded.settings.playbooks if p.enabled]
    if not any(isinstance(a, CallAction) for p in playbooks for a in p.actions):
        issue = ConfigIssue(str(loaded.path), None, "playbooks", "no call action to audit")
        raise ConfigError([issue])
    who = guardian_address(loaded, guardian)
    if who is None and any(
        isinstance(a, CallAction) and a.via == "guardian" for p in playbooks for a in p.actions
    ):
        issue = ConfigIssue(
            str(loaded.path),
            None,
            "responder.guardian",
            "the guardian's address is not known (its key variable unset?): give --guardian ADDRESS",
        )
        raise ConfigError([issue])
    try:
        return _run(loaded, url, fork, fork_block, who, targets, scope, options, evidence or {})
    except DevnetError as exc:  # anvil's banner and transport errors name the URL: provider keys live there
        raise DevnetError(redact_url(str(exc).replace(url, redact_url(url)))) from None


def _run(
    loaded: LoadedConfig,
    url: str,
    fork: bool,
    fork_block: int | None,
    who: str | None,
    targets: dict[str, ContractRecord],
    scope: ValueScope,
    options: AuditOptions,
    evidence: Mapping[str, str],
) -> CoverageReport:
    anvil: Anvil | None = None
    try:
        if fork:
            probe = RpcNode(url)
            try:
                chain_id = int(probe.call("eth_chainId"), 16)
            finally:
                probe.close()
            options_ = AnvilOptions(chain_id=chain_id, fork_url=url, fork_block=fork_block)
            # a remote node's state is fetched as the fork starts: give it longer than a local devnet
            anvil = Anvil(options_, startup_timeout=120.0).start()
            node = RpcNode(anvil.url)
        else:
            node = RpcNode(url)
        try:
            deployment = loaded.deployment
            history = from_history(
                node,
                targets,
                options.history_blocks,
                options.per_function,
                after=deployment.block if deployment is not None else None,
                skip_senders=[s for s in (deployment.deployer if deployment else None, who) if s],
            )

            def plan(stand_in: str | None) -> tuple[list[Containment], list[str]]:
                return containments(loaded.settings, loaded.contracts, who, stand_in, evidence)

            return run_audit(
                node,
                config=str(loaded.path),
                targets=targets,
                plan=plan,
                scope=scope,
                options=options,
                history=history,
                forked=fork,
            )
        finally:
            node.close()
    finally:
        if anvil is not None:
            anvil.stop()
