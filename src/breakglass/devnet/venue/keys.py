"""Role accounts of the devnet venue and their keys: anvil's well-known dev keys, never secrets.

Indices 0-9 are anvil's funded, unlocked accounts; benign traffic derives more from the same mnemonic.
Attacker keys are derived from a label (not the mnemonic), so each scenario's attacker is a fresh account.
"""

from __future__ import annotations

import functools

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from breakglass.devnet.anvil import DEV_MNEMONIC

__all__ = ["ROLE_INDEX", "attacker_key", "dev_key", "role_key"]

ROLE_INDEX: dict[str, int] = {
    "deployer": 0,
    "guardian": 1,
    "keeper": 2,
    "safe_owner_1": 3,
    "safe_owner_2": 4,
    "safe_owner_3": 5,
    "price_keeper": 6,
    "mixer_relayer": 7,
    "lp_whale": 8,
    "trader_seed": 9,
}

Account.enable_unaudited_hdwallet_features()


@functools.lru_cache(maxsize=256)
def dev_key(index: int, mnemonic: str = DEV_MNEMONIC) -> LocalAccount:
    """The dev account at BIP-44 index ``index`` of the devnet mnemonic."""
    account: LocalAccount = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    return account


def role_key(role: str) -> LocalAccount:
    return dev_key(ROLE_INDEX[role])


def attacker_key(label: str) -> LocalAccount:
    """A fresh, deterministic account for ``label`` (e.g. ``spot-oracle-pump/0``)."""
    account: LocalAccount = Account.from_key(keccak(text=f"breakglass/attacker/{label}"))
    return account
