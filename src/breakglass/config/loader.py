"""Load a configuration file: YAML -> strict models -> references checked -> ``LoadedConfig``.

All problems of a file are collected and raised together in one ``ConfigError``, each as
``file:line path: message`` with the accepted values or the closest known name.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from breakglass.config.chains import Placement, origin_of, place, view_origins, view_settings
from breakglass.config.deployment import Artifacts, ContractRecord, Deployment, Manifest, read_abi_file
from breakglass.config.models import ChainConfig, Settings
from breakglass.config.refs import closest, find_refs
from breakglass.config.yamlsource import Located, PathKey, format_path, line_of, read_yaml
from breakglass.errors import ConfigError, ConfigIssue

__all__ = ["LoadedConfig", "inspect_config", "load_config"]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated configuration with everything it refers to resolved."""

    path: Path
    settings: Settings
    contracts: Mapping[str, ContractRecord]
    deployment: Deployment | None = None
    warnings: tuple[ConfigIssue, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Every secret value in the file, for the log redactor. Never printed."""
    lines: Mapping[PathKey, int] = field(default_factory=dict, repr=False, compare=False)
    """The line of each value of the file, so that later stages can say where a problem is."""
    unresolved: frozenset[str] = frozenset()
    """Contract names whose address or ABI could not be read (each reported once, by ``inspect_config``):
    what refers to them is not built, so that one missing file is one error."""
    complete: bool = True
    """False when the deployment manifest could not be read: any contract name may have been one of
    its, so a name not found is not an error of its own."""
    placement: Placement = field(default_factory=Placement, repr=False, compare=False)
    """Which chain each part belongs to, when the file lists several (``chains:``, ``config/chains.py``)."""
    several: bool = False
    """A one-chain view of a file of several chains (``for_chain``): its stages share the store and the
    bus with the other chains' (a responder reads its own chain's ledger rows, under its own name)."""
    origins: Mapping[PathKey, PathKey] = field(default_factory=dict, repr=False, compare=False)
    """A one-chain view's list items -> their paths in the file (``line_of`` and ``issue`` say those)."""

    @property
    def chain_names(self) -> tuple[str, ...]:
        """The chains protected: ``chains`` by name, else the one ``chain`` (its name)."""
        return self.placement.chains or (self.settings.chain.name,)

    def per_chain(self) -> list[LoadedConfig]:
        """One configuration per chain, each with only its chain's parts and ``chain`` set to it (the
        stages of a chain are built from its own). A one-chain file is its own only view."""
        if not self.placement.chains:
            return [self]
        return [self.for_chain(name) for name in self.placement.chains]

    def for_chain(self, name: str) -> LoadedConfig:
        """The view of chain ``name`` (see ``per_chain``)."""
        if not self.placement.chains:
            if name != self.settings.chain.name:
                raise KeyError(name)
            return self
        if name not in self.placement.chains:
            raise KeyError(name)
        settings = view_settings(self.settings, self.placement, name)
        contracts = {n: r for n, r in self.contracts.items() if self.placement.contracts.get(n) == name}
        deployment = self.deployment
        if deployment is not None:
            own = deployment.chain_id is None or deployment.chain_id == settings.chain.chain_id
            deployment = Deployment(
                contracts=contracts,
                chain_id=settings.chain.chain_id,
                rpc_url=deployment.rpc_url if own else None,
                deployer=deployment.deployer if own else None,
                block=deployment.block if own else None,
            )
        return LoadedConfig(
            path=self.path,
            settings=settings,
            contracts=contracts,
            deployment=deployment,
            secrets=self.secrets,
            lines=self.lines,
            origins=view_origins(self.settings, self.placement, name),
            several=True,
            unresolved=self.unresolved,
            complete=self.complete,
        )

    def rpc_urls(self) -> list[str]:
        """The chain's endpoints (of a one-chain file or view; a file of several chains has none of its
        own: ask each of ``per_chain()``)."""
        if self.placement.chains:
            return []
        urls = [s.get_secret_value() for s in self.settings.chain.rpc]
        if not urls and self.deployment is not None and self.deployment.rpc_url:
            urls = [self.deployment.rpc_url]
        return urls

    @property
    def chain_id(self) -> int | None:
        """The configured chain id, else the deployment manifest's (None for a file of several chains:
        each of ``per_chain()`` has its own)."""
        if self.placement.chains:
            return None
        if self.settings.chain.chain_id is not None:
            return self.settings.chain.chain_id
        return self.deployment.chain_id if self.deployment is not None else None

    def line_of(self, path: PathKey) -> int | None:
        return line_of(self.lines, origin_of(self.origins, path))

    def issue(self, path: PathKey, message: str) -> ConfigIssue:
        """A problem found after loading (an ABI check, a policy check), located in the file."""
        return ConfigIssue(
            str(self.path), self.line_of(path), format_path(origin_of(self.origins, path)), message
        )


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, validate and resolve ``path``; raise ``ConfigError`` with every problem found."""
    loaded, issues = inspect_config(path, environ)
    if issues or loaded is None:
        raise ConfigError(issues)
    return loaded


def inspect_config(
    path: Path | str, environ: Mapping[str, str] | None = None
) -> tuple[LoadedConfig | None, list[ConfigIssue]]:
    """Like ``load_config``, but returns the problems with what could be resolved (``breakglass check``
    goes on to build what does not depend on a broken part). The configuration is None when the file
    itself is unreadable or invalid; otherwise it lacks the contracts that could not be resolved."""
    path = Path(path)
    try:
        located = read_yaml(path, environ)
        settings = _validate(located)
    except ConfigError as exc:
        return None, exc.issues
    issues: list[ConfigIssue] = []
    deployment, complete, unresolved = _deployment(path, settings, located, issues)
    contracts = dict(deployment.contracts) if deployment is not None else {}
    issues += _check_refs(settings, located, contracts, complete)
    manifest_id = deployment.chain_id if deployment is not None else None
    manifest_names = set(contracts) - {c.name for c in settings.contracts}
    placement, placed = place(settings, located, manifest_id, manifest_names)
    issues += placed
    if not complete:  # every contract name not found may be one of the manifest's
        unresolved |= {name for _p, kind, name in find_refs(settings)[1] if kind == "contract"} - set(
            contracts
        )
    loaded = LoadedConfig(
        path=path,
        settings=settings,
        contracts=contracts,
        deployment=deployment,
        warnings=tuple(_warnings(settings, located)),
        secrets=tuple(_secrets(settings)),
        lines=dict(located.lines),
        unresolved=frozenset(unresolved),
        complete=complete,
        placement=placement,
    )
    return loaded, issues


def _issue(located: Located, path: PathKey, message: str) -> ConfigIssue:
    return ConfigIssue(located.file, located.line_of(path), format_path(path), message)


def _validate(located: Located) -> Settings:
    if not isinstance(located.data, dict):
        raise ConfigError([ConfigIssue(located.file, 1, "", "the top level must be a mapping")])
    try:
        return Settings.model_validate(located.data)
    except ValidationError as exc:
        issues = [_translate(located, error) for error in exc.errors(include_url=False)]
        issues.sort(key=lambda i: i.line or 0)
        raise ConfigError(issues) from None


def _translate(located: Located, error: ErrorDetails) -> ConfigIssue:
    """Turn one pydantic error into a located, human message."""
    model, data_path, field_type = _resolve(Settings, located.data, tuple(error["loc"]))
    kind = error["type"]
    # A value that came from the environment may be a secret: never echo it, nor its container.
    hide = _is_secret(field_type) or any(
        data_path[: len(p)] == p or p[: len(data_path)] == data_path for p in located.env_paths
    )
    if kind == "extra_forbidden":
        key = str(data_path[-1])
        accepted = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
        return _issue(
            located,
            data_path,
            f"unknown key {key!r} {closest(key, accepted)}".replace("known:", "accepted:"),
        )
    if kind == "missing":
        return _issue(located, data_path, "required key is missing")
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return _issue(located, (*data_path, ctx.get("discriminator", "kind").strip("'")),
                      f"unknown kind {ctx.get('tag')!r} (accepted: {ctx.get('expected_tags')})")  # fmt: skip
    if kind == "union_tag_not_found":
        return _issue(located, data_path, f"{error['msg'].lower()}")
    message = error["msg"]
    if not hide and kind not in ("model_type", "dict_type", "list_type"):
        message += f", got {_show(error['input'])}"
    return _issue(located, data_path, message)


def _is_secret(tp: Any) -> bool:
    """Whether a field's type holds a secret anywhere (``SecretStr``, ``list[SecretStr]``, ...)."""
    if tp is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(tp))


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve(
    root: type[BaseModel], data: Any, loc: tuple[Any, ...]
) -> tuple[type[BaseModel] | None, PathKey, Any]:
    """Walk ``loc`` through the model types; return the model owning the last key and the data path.

    Discriminated unions put the tag into pydantic's ``loc``; it is consumed here, not shown.
    """
    current: Any = root
    path: list[str | int] = []
    owner: type[BaseModel] | None = root
    node = data
    i = 0
    while i < len(loc):
        part = loc[i]
        current = _unwrap(current)
        members = _union_members(current)
        if members is not None:
            chosen = next((m for m in members if _tag_of(m) == part), None)
            if chosen is not None:
                current = chosen
                i += 1
                continue
            current = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)), None)
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            info = current.model_fields.get(str(part)) or next(
                (f for f in current.model_fields.values() if f.alias == part), None
            )
            current = info.annotation if info else None
        elif typing.get_origin(current) in (list, tuple):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif typing.get_origin(current) is dict:
            args = typing.get_args(current)
            current = args[1] if len(args) == 2 else None
        else:
            current = None
        path.append(part)
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (
                node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
            )
        )
        i += 1
    return owner, tuple(path), current


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> list[Any] | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
    return None


def _tag_of(model: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel):
        info = model.model_fields.get("kind")
        if info is not None and typing.get_origin(info.annotation) is typing.Literal:
            return typing.get_args(info.annotation)[0]
    return None


def _deployment(
    path: Path, settings: Settings, located: Located, issues: list[ConfigIssue]
) -> tuple[Deployment | None, bool, set[str]]:
    """The deployment (manifest, artifacts, contracts by hand), whether every contract name of it is
    known, and the names known without an ABI (a file that could not be read). A manifest that cannot
    be read is one error: the names it would have given are then not reported unknown one by one (a
    missing manifest is one problem, not one per reference)."""
    config = settings.deployment
    base = path.parent
    complete = True
    manifest: Manifest | None = None
    unresolved: set[str] = set()
    if config is not None and config.manifest is not None:
        try:
            manifest = Manifest.read((base / config.manifest).resolve())
        except ConfigError as exc:
            at: PathKey = (
                ("deployment",)
                if isinstance(located.data.get("deployment"), str)
                else ("deployment", "manifest")
            )
            issues += [_issue(located, at, str(i)) for i in exc.issues]
            complete = False
    if (
        manifest is not None
        and settings.chain.chain_id is not None
        and manifest.chain_id != settings.chain.chain_id
    ):
        message = f"{settings.chain.chain_id} differs from the manifest's {manifest.chain_id}"
        issues.append(_issue(located, ("chain", "chain_id"), message))
    artifacts = _artifacts(base, config.artifacts if config else [], located, issues)
    contracts: dict[str, ContractRecord] = dict(manifest.contracts) if manifest else {}
    for i, extra in enumerate(settings.contracts):
        at = ("contracts", i)
        if extra.name in contracts:
            message = f"contract {extra.name!r} is already named in the deployment manifest"
            issues.append(_issue(located, (*at, "name"), message))
            continue
        abi: list[dict[str, Any]] | None = None
        artifact = ""
        try:
            if extra.abi is not None:
                abi = read_abi_file(base / extra.abi)
            elif artifacts is not None:
                artifact, abi = artifacts.find(str(extra.artifact))
            elif config is None or not config.artifacts:
                message = (
                    "'artifact' needs deployment.artifacts (a Foundry out/ or Hardhat artifacts/ folder)"
                )
                issues.append(_issue(located, (*at, "artifact"), message))
            # else: the folder's own error is reported
        except ValueError as exc:
            issues.append(_issue(located, (*at, "abi" if extra.abi is not None else "artifact"), str(exc)))
        if abi is None:  # known by name, so references to it are not errors too; its ABI is unknown
            unresolved.add(extra.name)
        contracts[extra.name] = ContractRecord(address=extra.address, abi=abi or [], artifact=artifact)
    if config is None and not settings.contracts:
        return None, complete, unresolved
    deployer = config.deployer if config and config.deployer else (manifest.deployer if manifest else None)
    block = config.deployment_block if config and config.deployment_block is not None else None
    if block is None and manifest is not None:
        block = manifest.deployment_block
    deployment = Deployment(
        contracts=contracts,
        chain_id=manifest.chain_id if manifest else None,
        rpc_url=manifest.rpc_url if manifest else None,
        deployer=deployer,
        block=block,
    )
    return deployment, complete, unresolved


def _artifacts(
    base: Path, folders: list[str], located: Located, issues: list[ConfigIssue]
) -> Artifacts | None:
    if not folders:
        return None
    resolved: list[Path] = []
    for i, folder in enumerate(folders):
        full = (base / folder).resolve()
        if not full.is_dir():
            issues.append(
                _issue(located, ("deployment", "artifacts", i), f"artifacts folder {full} not found")
            )
        resolved.append(full)
    return Artifacts(resolved) if all(p.is_dir() for p in resolved) else None


def _check_refs(
    settings: Settings, located: Located, contracts: Mapping[str, ContractRecord], complete: bool
) -> list[ConfigIssue]:
    declared, refs, duplicates = find_refs(settings)
    declared.setdefault("contract", {}).update({name: () for name in contracts})
    if not settings.chains:  # one chain: its name may be written too
        declared.setdefault("chain", {})[settings.chain.name] = ("chain", "name")
    issues = [_issue(located, p, f"duplicate {kind} {name!r}") for p, kind, name in duplicates]
    for p, kind, name in refs:
        known = declared.get(kind, {})
        if name not in known and (complete or kind != "contract"):
            issues.append(_issue(located, p, f"unknown {kind} {name!r} {closest(name, known)}"))
    return issues


def _warnings(settings: Settings, located: Located) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    chains: list[tuple[PathKey, ChainConfig]] = [(("chains", i), c) for i, c in enumerate(settings.chains)]
    for at, chain in chains or [(("chain",), settings.chain)]:
        if chain.confirmations == 0:
            message = "0 confirmations: fastest reaction, but findings of reorged blocks get retracted"
            out.append(_issue(located, (*at, "confirmations"), message))
        for i, url in enumerate(chain.rpc):
            text = url.get_secret_value()
            if text.startswith("http://") and not text.startswith(("http://127.", "http://localhost")):
                out.append(_issue(located, (*at, "rpc", i), "plain http:// to a remote node: use https"))
    matched = {name for m in settings.monitors if m.kind == "intel" and m.enabled for name in m.sources}
    for i, source in enumerate(settings.intel.sources):
        if source.name not in matched:
            message = (
                f"intel source {source.name!r} is pulled, but no enabled intel monitor has it in 'sources'"
            )
            out.append(_issue(located, ("intel", "sources", i, "name"), message))
    out.extend(_issue(located, at, message) for at, message in _unprovided_attacker(settings))
    return out


_NO_ATTACKER = frozenset(
    {"event", "call", "transaction", "invariant", "flow", "governance", "setup", "balance"}
)
"""Monitor kinds whose findings of mined blocks carry no ``attacker`` evidence (only a simulated
transaction's findings do: ``simulate.judge``; intel matches and plugins may)."""


def _unprovided_attacker(settings: Settings) -> list[tuple[PathKey, str]]:
    """A call that is not ``optional`` and names ``{evidence.attacker}``, matched by a monitor that
    never provides it from a mined block: the step fails for those findings."""
    out: list[tuple[PathKey, str]] = []
    kinds = {m.id: m.kind for m in settings.monitors if m.enabled}
    for i, playbook in enumerate(settings.playbooks):
        matched = playbook.match.monitors or list(kinds)
        lacking = sorted(m for m in matched if kinds.get(m) in _NO_ATTACKER)
        for j, action in enumerate(playbook.actions):
            if action.kind != "call" or action.optional or not lacking:
                continue
            if any(isinstance(a, str) and "{evidence.attacker}" in a for a in action.args):
                message = (
                    f"{{evidence.attacker}}: findings of {', '.join(lacking)} from mined blocks carry no "
                    "'attacker' (only simulated transactions' do), so this step fails for them; "
                    "add 'optional: true' to skip it instead"
                )
                out.append((("playbooks", i, "actions", j, "args"), message))
    return out


def _secrets(value: Any) -> list[str]:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return [secret] if secret else []
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secrets(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secrets(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secrets(item)]
    return []
