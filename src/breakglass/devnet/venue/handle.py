"""``Venue``: a typed handle on a deployed reference venue — contracts by manifest name, role accounts,
dev keys, and the reads a scenario or test needs (vault cash, insurance balance, prices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from breakglass.devnet.manifest import Manifest
from breakglass.devnet.venue.keys import ROLE_INDEX, role_key
from breakglass.devnet.venue.options import USD, VenueOptions
from breakglass.devnet.venue.tx import transact
from breakglass.errors import DevnetError

__all__ = ["MARKETS", "Venue", "VenueBalances"]

MARKETS: tuple[tuple[str, str], ...] = (
    ("market_eth", "ETH-PERP"),
    ("market_btc", "BTC-PERP"),
    ("market_thin", "THIN-PERP"),
)
"""Manifest name and label of each market; the position in this tuple is the market id."""


@dataclass(frozen=True, slots=True)
class VenueBalances:
    """The money a scenario can take, in collateral-token units."""

    vault_cash: int
    compartments: tuple[int, ...]
    idle: int
    insurance: int

    @property
    def at_risk(self) -> int:
        return self.vault_cash + self.insurance


@dataclass
class Venue:
    w3: Web3
    contracts: dict[str, Contract]
    options: VenueOptions = field(default_factory=VenueOptions)
    accounts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, w3: Web3, manifest: Manifest, options: VenueOptions | None = None) -> Venue:
        contracts = {
            name: w3.eth.contract(address=Web3.to_checksum_address(r.address), abi=r.abi)
            for name, r in manifest.contracts.items()
        }
        return cls(w3, contracts, options or VenueOptions(), dict(manifest.accounts))

    def rebind(self, w3: Web3) -> Venue:
        """The same venue seen through another connection (e.g. one without per-call validation)."""
        contracts = {n: w3.eth.contract(address=c.address, abi=c.abi) for n, c in self.contracts.items()}
        return Venue(w3, contracts, self.options, dict(self.accounts))

    def __getitem__(self, name: str) -> Contract:
        try:
            return self.contracts[name]
        except KeyError:
            raise DevnetError(
                f"the venue has no contract {name!r} (known: {sorted(self.contracts)})"
            ) from None

    @property
    def usd(self) -> Contract:
        return self["usd"]

    @property
    def vault(self) -> Contract:
        return self["vault"]

    @property
    def guard(self) -> Contract:
        return self["guardian"]

    def market(self, market_id: int) -> Contract:
        return self[MARKETS[market_id][0]]

    def key(self, role: str) -> LocalAccount:
        if role not in ROLE_INDEX:
            raise DevnetError(f"unknown venue role {role!r} (known: {sorted(ROLE_INDEX)})")
        return role_key(role)

    def send(
        self,
        account: LocalAccount,
        fn: ContractFunction,
        *,
        value: int = 0,
        check: bool = True,
        gas: int | None = None,
    ) -> TxReceipt:
        """Sign and send ``fn`` from ``account``; a revert raises DevnetError when ``check``."""
        return transact(self.w3, account, fn, value=value, check=check, gas=gas)

    def fund(self, account: str, usd: int = 0, eth: int = 0) -> None:
        """Devnet faucet: mint collateral tokens and send ether from the deployer."""
        deployer = role_key("deployer")
        if usd:
            transact(self.w3, deployer, self.usd.functions.mint(account, usd))
        if eth:
            self.w3.eth.wait_for_transaction_receipt(
                self.w3.eth.send_transaction({"from": deployer.address, "to": account, "value": eth})  # type: ignore[typeddict-item]
            )

    def balances(self) -> VenueBalances:
        vault = self.vault.functions
        n = vault.marketCount().call()
        return VenueBalances(
            vault_cash=self.usd.functions.balanceOf(self.vault.address).call(),
            compartments=tuple(vault.compartment(m).call() for m in range(n)),
            idle=vault.idle().call(),
            insurance=self.usd.functions.balanceOf(self["insurance"].address).call(),
        )

    def price(self, market_id: int) -> int:
        return int(self["oracle"].functions.getPrice(market_id).call())

    def usd_balance(self, account: str) -> int:
        return int(self.usd.functions.balanceOf(account).call())

    @staticmethod
    def usd_float(amount: int) -> float:
        return amount / USD
