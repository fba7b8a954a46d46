"""Honest contracts in benign traffic: users who deploy contracts of their own that use the venue, the
way real users' contracts do. Attack-contract simulation probes each one when it appears and again
whenever it is used (``simulate/attack.py``); a false positive here pauses an honest venue.

- a **zap** (``VaultZap``): funded by its owner, then deposits everything it holds into the LP vault
  and redeems it in one call (``roundTrip``), at one share price;
- a **flash-loan user** (``FlashRepay``): funded with fees (again whenever it runs low), then borrows
  a million from the venue's flash lender and repays it with the fee (``borrowAndRepay``).

Builders draw from their own random stream, so a seed's other traffic is the same with or without them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from breakglass.devnet.venue import USD, dev_key

if TYPE_CHECKING:
    from breakglass.drills.benign.traffic import BenignTraffic

__all__ = ["HonestBuilders"]

KINDS = ("VaultZap", "FlashRepay")
FUNDING = {"VaultZap": 250_000 * USD, "FlashRepay": 25_000 * USD}
USE = {"VaultZap": "roundTrip", "FlashRepay": "borrowAndRepay"}
FEE_RESERVE = 1_000 * USD
"""A flash-loan user's balance below which its owner funds it again (a loan's fee is 500 USD)."""


@dataclass
class _Built:
    kind: str
    owner: LocalAccount
    address: str | None = None
    funded: bool = False


class HonestBuilders:
    """``count`` builders, one deployment every ``every`` blocks until each has one; then each built
    contract is funded once and used on a fifth of the blocks."""

    def __init__(
        self, traffic: BenignTraffic, *, count: int, every: int, first_index: int, seed: int
    ) -> None:
        self.traffic = traffic
        self.every = every
        self.accounts = [dev_key(first_index + k) for k in range(count)]
        self.rng = random.Random(seed)  # noqa: S311 (determinism, not secrecy)
        self.built: list[_Built] = []
        self._artifacts: dict[str, tuple[list[dict[str, Any]], str]] = {}

    def funding(self) -> list[LocalAccount]:
        """Accounts the traffic funds with ether and collateral at ``fund()``."""
        return list(self.accounts)

    def _artifact(self, kind: str) -> tuple[list[dict[str, Any]], str]:
        if not self._artifacts:
            from breakglass.devnet.solc import compile_contracts  # cached build: only when used

            build = compile_contracts()
            self._artifacts = {k: (build[k].abi, build[k].bytecode) for k in KINDS}
        return self._artifacts[kind]

    def act(self, i: int) -> None:
        """This block's builder transactions (``BenignTraffic._block`` calls it)."""
        if not self.accounts:
            return
        if self.every and i % self.every == self.every - 1 and len(self.built) < len(self.accounts):
            self._deploy(self.accounts[len(self.built)], KINDS[len(self.built) % len(KINDS)])
        for built in self.built:
            if built.address is None or self.rng.random() >= 0.2:
                continue
            self._use(built)

    def _deploy(self, owner: LocalAccount, kind: str) -> None:
        v, w3 = self.traffic.venue, self.traffic.w3
        abi, bytecode = self._artifact(kind)
        args = (
            (v.usd.address, v.vault.address)
            if kind == "VaultZap"
            else (v.usd.address, v["flash_lender"].address)
        )
        data = w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).data_in_transaction
        built = _Built(kind, owner)
        self.built.append(built)

        def deployed(receipt: dict[str, Any]) -> None:
            address = receipt.get("contractAddress")
            built.address = Web3.to_checksum_address(address) if address else None

        self.traffic.send_raw("deploy", owner, None, bytes.fromhex(data[2:]), on_receipt=deployed)

    def _use(self, built: _Built) -> None:
        v, w3 = self.traffic.venue, self.traffic.w3
        assert built.address is not None
        if built.funded and built.kind == "FlashRepay":  # its owner tops it up before it runs dry
            built.funded = v.usd.functions.balanceOf(built.address).call() >= FEE_RESERVE
        if not built.funded:
            amount = FUNDING[built.kind]
            if self.traffic.spend(built.owner, "usd", amount):
                self.traffic.send(
                    "fund", built.owner, v.usd.functions.transfer(built.address, amount), self._funded(built)
                )
            return
        contract = w3.eth.contract(
            address=w3.to_checksum_address(built.address), abi=self._artifact(built.kind)[0]
        )
        self.traffic.send("contract", built.owner, getattr(contract.functions, USE[built.kind])())

    @staticmethod
    def _funded(built: _Built) -> Callable[[], None]:
        def funded() -> None:
            built.funded = True

        return funded
