"""Signing keys: the guardian key from an encrypted keystore or an environment variable, signed locally.

The key never leaves ``LocalSigner``: it is registered with the log ``Redactor`` the moment it is
loaded (hex with and without ``0x``), its ``repr`` shows only the address, and errors name the source
(file, variable), never the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32

from breakglass.config.playbooks import GuardianKeyConfig
from breakglass.errors import ResponseError
from breakglass.logs import Redactor

__all__ = ["AddressOnlySigner", "LocalSigner", "SignedTx", "Signer", "load_guardian"]


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    tx_hash: str
    nonce: int


class Signer(Protocol):
    """Signs transactions and 32-byte hashes for one address."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx: ...

    def sign_hash(self, digest: bytes) -> bytes:
        """A 65-byte r||s||v signature of ``digest`` (v = 27 or 28)."""
        ...


class LocalSigner:
    """An eth-account key held in memory; ``repr`` shows the address only."""

    __slots__ = ("_account",)

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def from_key(cls, key: str | bytes, redactor: Redactor | None = None) -> LocalSigner:
        if redactor is not None:
            _register(key, redactor)
        try:
            return cls(Account.from_key(key))
        except (ValueError, TypeError):
            # ``from None``: the library's message may quote the key, so no chained traceback shows it.
            raise ResponseError("the guardian key is not a valid secp256k1 private key") from None

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        signed = self._account.sign_transaction(dict(tx))
        return SignedTx(
            raw=bytes(signed.raw_transaction), tx_hash="0x" + bytes(signed.hash).hex(), nonce=int(tx["nonce"])
        )

    def sign_hash(self, digest: bytes) -> bytes:
        signed = self._account.unsafe_sign_hash(Hash32(digest))
        return int(signed.r).to_bytes(32, "big") + int(signed.s).to_bytes(32, "big") + bytes([int(signed.v)])

    def __repr__(self) -> str:
        return f"LocalSigner({self.address})"


class AddressOnlySigner:
    """An address without a key: for dry runs that simulate from the guardian but must not sign."""

    def __init__(self, address: str) -> None:
        self._address = address

    @property
    def address(self) -> str:
        return self._address

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        raise ResponseError(f"{self._address}: no key here (a dry run never signs)")

    def sign_hash(self, digest: bytes) -> bytes:
        raise ResponseError(f"{self._address}: no key here (a dry run never signs)")


def _register(key: str | bytes, redactor: Redactor) -> None:
    text = key.hex() if isinstance(key, bytes) else key.strip()
    bare = text.removeprefix("0x")
    redactor.add([bare, "0x" + bare, bare.lower(), bare.upper(), "0x" + bare.lower()])


def load_guardian(
    config: GuardianKeyConfig, base: Path, redactor: Redactor, environ: Mapping[str, str] | None = None
) -> LocalSigner:
    """Load the guardian key from ``config``; the key is registered with ``redactor`` before any use."""
    environ = os.environ if environ is None else environ
    if config.env is not None:
        value = environ.get(config.env)
        if not value:
            raise ResponseError(f"responder.guardian.env: variable {config.env} is not set")
        return LocalSigner.from_key(value, redactor)
    assert config.keystore is not None and config.password is not None
    path = base / config.keystore
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResponseError(
            f"responder.guardian.keystore: cannot read {path}: {type(exc).__name__}"
        ) from None
    password = config.password.get_secret_value()
    redactor.add([password])
    try:
        key = bytes(Account.decrypt(keystore, password))
    except ValueError:
        raise ResponseError(
            f"responder.guardian.keystore: {path} does not decrypt with the password"
        ) from None
    return LocalSigner.from_key(key, redactor)
