"""Signing keys: the guardian's ``Signer``, from a remote signer or AWS KMS (the key never in this
process: ``remotesigner.py``, ``kms.py``), or from an encrypted keystore or an environment variable
(signed locally).

A local key never leaves ``LocalSigner``: it is registered with the log ``Redactor`` the moment it is
loaded (hex with and without ``0x``), its ``repr`` shows only the address, and errors name the source
(file, variable), never the value. ``Signer.sign_transaction`` is async: a remote signature is a
network round trip. Whatever signs, ``checked`` decodes the signed bytes and refuses them unless they
are the transaction asked for, signed by the guardian's address.
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
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_typing import Hash32
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from breakglass.config.playbooks import GuardianKeyConfig
from breakglass.errors import ResponseError
from breakglass.logs import Redactor

__all__ = [
    "AddressOnlySigner",
    "LocalSigner",
    "SignedTx",
    "Signer",
    "checked",
    "load_guardian",
    "load_local_key",
]


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    tx_hash: str
    nonce: int


class Signer(Protocol):
    """Signs the guardian's transactions (EIP-1559 dicts as eth-account takes them) for one address."""

    @property
    def address(self) -> str: ...

    async def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx: ...


_FIELDS = ("chainId", "nonce", "to", "value", "data", "gas", "maxFeePerGas", "maxPriorityFeePerGas")


def checked(raw: bytes, tx: Mapping[str, Any], address: str, source: str) -> SignedTx:
    """``raw`` as a ``SignedTx`` if it is ``tx`` (every field) signed by ``address``; else
    ``ResponseError`` naming ``source`` (a signer that signs something else is not used)."""
    try:
        sender = Account.recover_transaction(raw)
        signed = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    except (ValueError, TypeError) as exc:
        raise ResponseError(f"{source} returned bytes that are no signed transaction: {exc}") from None
    if sender.lower() != address.lower():
        raise ResponseError(f"{source} signed with {sender}, not the guardian {address}")
    for name in _FIELDS:
        want, got = tx.get(name), signed.get(name)
        if name in ("to", "data"):
            want = bytes(HexBytes(want or b"")).hex()
            got = bytes(HexBytes(got or b"")).hex()
        if want != got:
            raise ResponseError(f"{source} signed a transaction whose {name} differs from the one asked")
    return SignedTx(raw=raw, tx_hash="0x" + keccak(raw).hex(), nonce=int(tx["nonce"]))


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

    async def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        signed = self._account.sign_transaction(dict(tx))
        return SignedTx(
            raw=bytes(signed.raw_transaction), tx_hash="0x" + bytes(signed.hash).hex(), nonce=int(tx["nonce"])
        )

    def sign_message(self, message: bytes) -> bytes:
        """An EIP-191 personal-message signature of ``message`` (a threat-intel bundle's canonical JSON)."""
        from eth_account.messages import encode_defunct

        return bytes(self._account.sign_message(encode_defunct(primitive=message)).signature)

    def sign_hash(self, digest: bytes) -> bytes:
        """A 65-byte r||s||v signature of ``digest`` (v = 27 or 28): a Safe owner's signature."""
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

    async def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        raise ResponseError(f"{self._address}: no key here (a dry run never signs)")


def _register(key: str | bytes, redactor: Redactor) -> None:
    text = key.hex() if isinstance(key, bytes) else key.strip()
    bare = text.removeprefix("0x")
    redactor.add([bare, "0x" + bare, bare.lower(), bare.upper(), "0x" + bare.lower()])


def load_guardian(
    config: GuardianKeyConfig, base: Path, redactor: Redactor, environ: Mapping[str, str] | None = None
) -> Signer:
    """The guardian's signer from ``config``. A local key is registered with ``redactor`` before any
    use; a remote signer or a KMS key is only described here (no I/O until it signs)."""
    if config.remote is not None:
        from breakglass.respond.remotesigner import RemoteSigner

        return RemoteSigner(config.remote.url.get_secret_value(), config.remote.address,
                            timeout=config.remote.timeout)  # fmt: skip
    if config.kms is not None:
        from breakglass.respond.kms import KmsSigner  # boto3 only when configured

        return KmsSigner(config.kms.key_id, config.kms.address, region=config.kms.region,
                         endpoint_url=config.kms.endpoint_url)  # fmt: skip
    return load_local_key(config, base, redactor, environ)


def load_local_key(
    config: GuardianKeyConfig, base: Path, redactor: Redactor, environ: Mapping[str, str] | None = None
) -> LocalSigner:
    """A keystore or an environment variable's key (a Safe owner's, or the guardian's)."""
    environ = os.environ if environ is None else environ
    if config.env is not None:
        value = environ.get(config.env)
        if not value:
            raise ResponseError(f"responder.guardian.env: variable {config.env} is not set")
        return LocalSigner.from_key(value, redactor)
    if config.keystore is None or config.password is None:
        raise ResponseError("this key must come from 'keystore' (with 'password') or 'env'")
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
