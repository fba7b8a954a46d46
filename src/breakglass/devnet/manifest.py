"""The deployment manifest: what a devnet (or a real chain) has deployed, by name.

Configurations refer to contracts by these names; ``breakglass check`` validates the references.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breakglass.errors import ConfigError, ConfigIssue

__all__ = ["ContractRecord", "Manifest"]


@dataclass(frozen=True, slots=True)
class ContractRecord:
    address: str
    abi: list[dict[str, Any]]
    artifact: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
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
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                [ConfigIssue(str(path), None, "", f"malformed deployment manifest: {exc!r}")]
            ) from exc
