"""The probe protocol's records and helpers shared by the detector tests (their fixtures are in
conftest.py). Test modules import them from here, not from ``conftest``: with several conftest.py files
in the suite, ``import conftest`` names whichever one pytest loaded last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.config import LoadedConfig, load_config
from breakglass.detect import DetectionEngine
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build
from breakglass.domain import Finding

USD = 10**6


@dataclass
class Probe:
    node: Anvil
    w3: Web3
    token: Contract
    vault: Contract
    mixer: Contract
    admin: str
    users: list[str]
    manifest: Path
    build: Build

    def send(self, fn: Any, sender: str, **extra: Any) -> dict[str, Any]:
        tx_hash = fn.transact({"from": sender, **extra})
        return dict(self.w3.eth.wait_for_transaction_receipt(tx_hash))

    def deposit(self, user: str, amount: int) -> None:
        self.send(self.token.functions.mint(user, amount), user)
        self.send(self.token.functions.approve(self.vault.address, amount), user)
        self.send(self.vault.functions.deposit(amount), user)


def write_config(tmp_path: Path, monitors: str, *, extra: str = "") -> LoadedConfig:
    path = tmp_path / "breakglass.yaml"
    path.write_text(
        f"protocol: probe\ndeployment: manifest.json\n{extra}monitors:\n{monitors}", encoding="utf-8"
    )
    return load_config(path, environ={})


class RecordingBus:
    """A Bus that keeps what is published, by topic (tests read it synchronously)."""

    def __init__(self) -> None:
        self.published: dict[str, list[Any]] = {}

    async def publish(self, topic: str, message: Any) -> None:
        self.published.setdefault(topic, []).append(message)

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


@dataclass
class Watch:
    """Engine + follower over a probe deployment; ``await watch.catch_up()`` processes new blocks."""

    engine: DetectionEngine
    follower: Follower
    bus: RecordingBus
    rpc: RpcClient
    taken: int = 0
    closers: list[Any] = field(default_factory=list)

    async def catch_up(self) -> list[Finding]:
        await self.follower.step()
        findings: list[Finding] = self.bus.published.get("findings", [])
        new, self.taken = findings[self.taken :], len(findings)
        return new
