"""The Scenario API: an exploit as explicit, signed, replayable steps.

A scenario yields ``Step`` objects in phases — ``prepare`` (the honest world it needs), ``setup`` (mixer
funding and attack-contract deployment: the set-up signals) and ``strike`` — lazily, so a later step may
read what earlier ones did (``ctx.contracts``, ``ctx.results``). Each step is one transaction signed by
its own key (usually the attacker's), with the wait before the next. ``ScenarioRun`` (player.py) sends them.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, attacker_key, role_key

__all__ = ["AttackContext", "Phase", "Scenario", "Step", "StepResult"]

ETHER = 10**18


class Phase(enum.StrEnum):
    PREPARE = "prepare"
    SETUP = "setup"
    STRIKE = "strike"


@dataclass(frozen=True, slots=True)
class Step:
    """One transaction to send, and how long to let the chain run before the next one."""

    label: str
    signer: LocalAccount
    to: str | None  # None: a contract deployment
    data: HexBytes
    value: int = 0
    gas: int = 3_000_000
    wait_blocks: int = 1
    wait_seconds: float = 12.0
    abort_on_revert: bool = False
    records: str | None = None  # store the deployed contract's address under this name

    def __repr__(self) -> str:  # the signer's key must never be printed
        return f"Step({self.label!r}, from={self.signer.address}, to={self.to})"


@dataclass(frozen=True, slots=True)
class StepResult:
    phase: Phase
    label: str
    sender: str
    tx_hash: str | None
    block: int | None
    ok: bool
    gas_used: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "label": self.label,
            "sender": self.sender,
            "tx_hash": self.tx_hash,
            "block": self.block,
            "ok": self.ok,
            "gas_used": self.gas_used,
            "error": self.error,
        }


@dataclass
class AttackContext:
    """What a scenario's step generators read: the venue, the build, keys, deployed attack contracts."""

    venue: Venue
    build: Build
    scenario: str
    contracts: dict[str, str] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)

    @property
    def attacker(self) -> LocalAccount:
        return attacker_key(f"{self.scenario}/0")

    def key(self, index: int) -> LocalAccount:
        """The scenario's ``index``-th fresh attacker account (0 is the main one)."""
        return attacker_key(f"{self.scenario}/{index}")

    @property
    def dirty_wallet(self) -> LocalAccount:
        """The attacker's known wallet, which pays into the mixer."""
        return attacker_key(f"{self.scenario}/dirty")

    def attack(self, name: str) -> Contract:
        """A deployed attack contract, by the name its deployment step recorded."""
        artifact_name, _, _ = name.partition("#")
        art = self.build[artifact_name]
        return self.venue.w3.eth.contract(address=Web3.to_checksum_address(self.contracts[name]), abi=art.abi)

    def last_ok(self) -> bool:
        return bool(self.results) and self.results[-1].ok

    def receipt(self, label: str) -> TxReceipt | None:
        """The mined receipt of the latest step called ``label``; None if it was never mined.

        A later step that needs what an earlier one produced (an order id, an address) reads it here,
        from what the chain recorded, never from a count or a guess made before it was mined."""
        for result in reversed(self.results):
            if result.label == label:
                if result.tx_hash is None or result.block is None:
                    return None
                return self.venue.w3.eth.get_transaction_receipt(HexStr(result.tx_hash))
        return None

    # ---- step builders ----

    def call(
        self,
        label: str,
        contract: Contract,
        fn: str,
        *args: Any,
        signer: LocalAccount | None = None,
        value: int = 0,
        gas: int = 3_000_000,
        wait_blocks: int = 1,
        wait_seconds: float = 12.0,
        abort_on_revert: bool = False,
    ) -> Step:
        data = contract.functions[fn](*args)._encode_transaction_data()
        return Step(
            label,
            signer or self.attacker,
            contract.address,
            HexBytes(data),
            value,
            gas,
            wait_blocks,
            wait_seconds,
            abort_on_revert,
        )

    def deploy(
        self,
        label: str,
        artifact: str,
        *args: Any,
        signer: LocalAccount | None = None,
        records: str | None = None,
        gas: int = 6_000_000,
        wait_seconds: float = 12.0,
    ) -> Step:
        art = self.build[artifact]
        factory = self.venue.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        data = factory.constructor(*args).data_in_transaction
        return Step(
            label,
            signer or self.attacker,
            None,
            HexBytes(HexStr(data)),
            gas=gas,
            wait_seconds=wait_seconds,
            abort_on_revert=True,
            records=records or artifact,
        )

    def transfer_eth(self, label: str, signer: LocalAccount, to: str, value: int) -> Step:
        return Step(label, signer, to, HexBytes(b""), value=value, gas=60_000, wait_seconds=2.0)


class Scenario(abc.ABC):
    """A simplified re-creation of a real incident on the reference venue."""

    name: ClassVar[str]
    incident: ClassVar[str]
    summary: ClassVar[str]
    switches: ClassVar[tuple[str, ...]]
    target_label: ClassVar[str]
    funding_usd: ClassVar[int] = 1_000_000 * USD
    funding_eth: ClassVar[int] = 20 * ETHER
    quiet_reason: ClassVar[str] = ""
    """Why a drill plays this scenario without honest traffic between its steps (empty: drills mine
    ``DrillOptions.benign_blocks`` honest blocks after each prepare and set-up step)."""

    def prepare(self, ctx: AttackContext) -> Iterator[Step]:
        """Honest activity the incident needs to have happened first (nothing by default)."""
        return iter(())

    def setup(self, ctx: AttackContext) -> Iterator[Step]:
        """Mixer funding of a fresh account, then the attack contracts' deployment."""
        yield from self.mixer_funding(ctx)
        yield from self.deploy(ctx)

    @abc.abstractmethod
    def deploy(self, ctx: AttackContext) -> Iterator[Step]: ...

    @abc.abstractmethod
    def strike(self, ctx: AttackContext) -> Iterator[Step]: ...

    @abc.abstractmethod
    def target(self, venue: Venue) -> int:
        """The collateral the scenario goes after, read just before the strike."""

    def mixer_funding(self, ctx: AttackContext) -> Iterator[Step]:
        mixer, usd = ctx.venue["mixer"], ctx.venue.usd
        secret = Web3.keccak(text=f"breakglass/mixer/{self.name}")
        commitment = Web3.solidity_keccak(["bytes32"], [secret])
        dirty = ctx.dirty_wallet
        yield ctx.call(
            "approve mixer", usd, "approve", mixer.address, self.funding_usd, signer=dirty, wait_seconds=2.0
        )
        yield ctx.call(
            "deposit into mixer",
            mixer,
            "deposit",
            commitment,
            self.funding_usd,
            signer=dirty,
            value=self.funding_eth,
            wait_seconds=600.0,
        )
        yield ctx.call(
            "relayer withdraws to a fresh account",
            mixer,
            "withdraw",
            secret,
            ctx.attacker.address,
            signer=role_key("mixer_relayer"),
            wait_seconds=120.0,
        )
