"""The deployment: the protocol's contracts by name (address and ABI), and how it was deployed.

A configuration names its contracts from any of these (``docs/configuration.md``, "Deployment"):

- a **manifest**: JSON with the chain id, an RPC URL, and contracts by name with address and ABI
  (``Manifest``: what ``breakglass devnet up`` writes; a team can write one for its real deployment);
- **artifacts**: a Foundry ``out/`` or Hardhat ``artifacts/`` folder (also one inside an npm package)
  gives ABIs by contract name (``Artifacts``); the addresses are listed under ``contracts:``;
- **by hand**: ``contracts:`` entries with an address and a JSON ABI file.

This is configuration, not development tooling: nothing here needs a devnet, a compiler or Node.js.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breakglass.errors import ConfigError, ConfigIssue

__all__ = ["Artifacts", "ContractRecord", "Deployment", "Manifest", "read_abi_file"]


@dataclass(frozen=True, slots=True)
class ContractRecord:
    address: str
    abi: list[dict[str, Any]]
    artifact: str = ""


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the configuration knows of the protocol's deployment, whatever it was read from."""

    contracts: Mapping[str, ContractRecord]
    chain_id: int | None = None
    rpc_url: str | None = None
    """The manifest's endpoint (a devnet's), used when ``chain.rpc`` is empty."""
    deployer: str | None = None
    """The account that sent the deployment's transactions (constructors and set-up calls)."""
    block: int | None = None
    """The last block of the deployment: the deployer's privileged changes up to it are its set-up."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """A deployment manifest file: the chain, its endpoint, contracts by name, accounts by role."""

    chain_id: int
    rpc_url: str
    contracts: Mapping[str, ContractRecord]
    accounts: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    deployer: str | None = None
    """The account that sent the deployment's transactions (constructors and set-up calls)."""
    deployment_block: int | None = None
    """The last block of the deployment: the deployer's privileged changes up to it are its set-up."""

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "deployer": self.deployer,
            "deployment_block": self.deployment_block,
            "accounts": dict(self.accounts),
            "meta": dict(self.meta),
            "contracts": {
                name: {"address": c.address, "artifact": c.artifact, "abi": c.abi}
                for name, c in sorted(self.contracts.items())
            },
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([ConfigIssue(str(path), None, "", "deployment manifest not found")]) from None
        except json.JSONDecodeError as exc:
            raise ConfigError([ConfigIssue(str(path), exc.lineno, "", f"not valid JSON: {exc.msg}")]) from exc
        try:
            contracts = {
                name: ContractRecord(
                    address=str(c["address"]),
                    abi=list(c["abi"]),
                    artifact=str(c.get("artifact", "")),
                )
                for name, c in data["contracts"].items()
            }
            return cls(
                chain_id=int(data["chain_id"]),
                rpc_url=str(data["rpc_url"]),
                contracts=contracts,
                accounts=dict(data.get("accounts", {})),
                meta=dict(data.get("meta", {})),
                deployer=str(data["deployer"]) if data.get("deployer") else None,
                deployment_block=(
                    int(data["deployment_block"]) if data.get("deployment_block") is not None else None
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                [ConfigIssue(str(path), None, "", f"malformed deployment manifest: {exc!r}")]
            ) from exc

    def deployment(self) -> Deployment:
        return Deployment(
            contracts=dict(self.contracts),
            chain_id=self.chain_id,
            rpc_url=self.rpc_url,
            deployer=self.deployer,
            block=self.deployment_block,
        )


def read_abi_file(file: Path) -> list[dict[str, Any]]:
    """A JSON ABI: a list, or any artifact object with an ``abi`` list (Foundry, Hardhat, Truffle).

    Raises ``ValueError`` with a message naming the file."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"ABI file {file} not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"ABI file {file} is not JSON: {exc.msg} (line {exc.lineno})") from None
    except OSError as exc:
        raise ValueError(f"ABI file {file} cannot be read: {exc.strerror}") from None
    if isinstance(data, dict) and "abi" in data:
        data = data["abi"]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError(f"ABI file {file} must hold a JSON list of ABI entries (or an object with 'abi')")
    return data


_VERSIONED = re.compile(r"^(?P<name>[^.]+)\.\d+\.\d+\.\d+$")
"""Foundry names a contract built by several compiler versions ``Name.0.8.20.json``."""
_SKIPPED = {"build-info", "cache", "node_modules", ".git"}


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    source: str
    """The source file as the folder records it (``Vault.sol`` in Foundry, ``contracts/Vault.sol``
    in Hardhat): ``source:name`` qualifies a name that two sources share."""
    file: Path

    @property
    def qualified(self) -> str:
        return f"{self.source}:{self.name}"


class Artifacts:
    """ABIs by contract name from build folders: Foundry ``out/`` (``out/Vault.sol/Vault.json``) and
    Hardhat ``artifacts/`` (``artifacts/contracts/Vault.sol/Vault.json``); Truffle's flat
    ``build/contracts/Vault.json`` too. File names are indexed once; a JSON is read when asked for."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self._entries: list[_Entry] | None = None

    def _index(self) -> list[_Entry]:
        if self._entries is None:
            entries: list[_Entry] = []
            for folder in self.folders:
                for file in sorted(folder.rglob("*.json")):
                    relative = file.relative_to(folder)
                    if _SKIPPED & set(relative.parts[:-1]) or file.name.endswith(".dbg.json"):
                        continue
                    stem = file.name.removesuffix(".json")
                    versioned = _VERSIONED.match(stem)
                    name = versioned["name"] if versioned else stem
                    source = str(relative.parent).replace("\\", "/")
                    entries.append(_Entry(name, "" if source == "." else source, file))
            self._entries = entries
        return self._entries

    def names(self) -> list[str]:
        return sorted({e.name for e in self._index()})

    def find(self, wanted: str) -> tuple[str, list[dict[str, Any]]]:
        """(qualified name, ABI) of artifact ``wanted`` (``Vault`` or ``src/Vault.sol:Vault``).

        Raises ``ValueError`` saying what is known, the closest name, or how to choose."""
        source, _, name = wanted.rpartition(":")
        found = [
            e
            for e in self._index()
            if e.name == name and (not source or e.source == source or e.source.endswith("/" + source))
        ]
        where = ", ".join(str(f) for f in self.folders)
        if not found:
            match = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
            hint = f"; did you mean {match[0]!r}?" if match else ""
            raise ValueError(f"no artifact {wanted!r} in {where}{hint}")
        abis: dict[str, tuple[_Entry, list[dict[str, Any]]]] = {}
        for entry in found:
            abi = read_abi_file(entry.file)
            abis.setdefault(json.dumps(abi, sort_keys=True), (entry, abi))
        if len(abis) > 1:  # the same contract compiled by two compiler versions is one contract
            choices = ", ".join(sorted(e.qualified for e, _abi in abis.values()))
            raise ValueError(f"artifact {wanted!r} is ambiguous in {where}: write one of {choices}")
        entry, abi = next(iter(abis.values()))
        return entry.qualified, abi
