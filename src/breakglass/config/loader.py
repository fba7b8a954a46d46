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

from breakglass.config.models import Settings
from breakglass.config.refs import closest, find_refs
from breakglass.config.yamlsource import Located, PathKey, format_path, read_yaml
from breakglass.devnet.manifest import ContractRecord, Manifest
from breakglass.errors import ConfigError, ConfigIssue

__all__ = ["LoadedConfig", "load_config"]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated configuration with everything it refers to resolved."""

    path: Path
    settings: Settings
    contracts: Mapping[str, ContractRecord]
    manifest: Manifest | None
    warnings: tuple[ConfigIssue, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Every secret value in the file, for the log redactor. Never printed."""

    def rpc_urls(self) -> list[str]:
        urls = [s.get_secret_value() for s in self.settings.chain.rpc]
        if not urls and self.manifest is not None:
            urls = [self.manifest.rpc_url]
        return urls


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    path = Path(path)
    located = read_yaml(path, environ)
    settings = _validate(located)
    issues: list[ConfigIssue] = []
    manifest = _manifest(path, settings, located, issues)
    contracts: dict[str, ContractRecord] = dict(manifest.contracts) if manifest else {}
    for i, extra in enumerate(settings.contracts):
        abi = _read_abi(path.parent / extra.abi, located, ("contracts", i, "abi"), issues)
        if extra.name in contracts:
            message = f"contract {extra.name!r} is already named in the deployment manifest"
            issues.append(_issue(located, ("contracts", i, "name"), message))
        contracts[extra.name] = ContractRecord(address=extra.address, abi=abi)
    issues += _check_refs(settings, located, contracts)
    if issues:
        raise ConfigError(issues)
    return LoadedConfig(
        path=path,
        settings=settings,
        contracts=contracts,
        manifest=manifest,
        warnings=tuple(_warnings(settings, located)),
        secrets=tuple(_secrets(settings)),
    )


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


def _manifest(path: Path, settings: Settings, located: Located, issues: list[ConfigIssue]) -> Manifest | None:
    if settings.deployment is None:
        return None
    try:
        manifest = Manifest.read((path.parent / settings.deployment).resolve())
    except ConfigError as exc:
        issues += [_issue(located, ("deployment",), str(i)) for i in exc.issues]
        return None
    if settings.chain.chain_id is not None and manifest.chain_id != settings.chain.chain_id:
        message = f"{settings.chain.chain_id} differs from the manifest's {manifest.chain_id}"
        issues.append(_issue(located, ("chain", "chain_id"), message))
    return manifest


def _read_abi(file: Path, located: Located, at: PathKey, issues: list[ConfigIssue]) -> list[dict[str, Any]]:
    try:
        abi = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        issues.append(_issue(located, at, f"ABI file {file} not found"))
        return []
    except json.JSONDecodeError as exc:
        issues.append(_issue(located, at, f"ABI file {file} is not JSON: {exc.msg} (line {exc.lineno})"))
        return []
    if isinstance(abi, dict) and "abi" in abi:
        abi = abi["abi"]
    if not isinstance(abi, list):
        issues.append(_issue(located, at, f"ABI file {file} must hold a JSON list (or an object with 'abi')"))
        return []
    return abi


def _check_refs(
    settings: Settings, located: Located, contracts: Mapping[str, ContractRecord]
) -> list[ConfigIssue]:
    declared, refs, duplicates = find_refs(settings)
    declared.setdefault("contract", {}).update({name: () for name in contracts})
    issues = [_issue(located, p, f"duplicate {kind} {name!r}") for p, kind, name in duplicates]
    for p, kind, name in refs:
        known = declared.get(kind, {})
        if name not in known:
            issues.append(_issue(located, p, f"unknown {kind} {name!r} {closest(name, known)}"))
    return issues


def _warnings(settings: Settings, located: Located) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    if settings.chain.confirmations == 0:
        message = "0 confirmations: fastest reaction, but findings of reorged blocks get retracted"
        out.append(_issue(located, ("chain", "confirmations"), message))
    for i, url in enumerate(settings.chain.rpc):
        text = url.get_secret_value()
        if text.startswith("http://") and not text.startswith(("http://127.", "http://localhost")):
            out.append(_issue(located, ("chain", "rpc", i), "plain http:// to a remote node: use https"))
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
