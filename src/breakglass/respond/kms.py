"""The guardian key in AWS KMS (key spec ``ECC_SECG_P256K1``, usage sign/verify): KMS signs the
transaction's hash, the key never leaves it.

KMS answers a DER ``(r, s)`` signature with no recovery id: ``s`` is brought to the low half of the
curve order (EIP-2), and the recovery id is the one of the two candidates whose public key is the
configured address's. The configured address is checked against the key's public key
(``GetPublicKey``) before the first signature. boto3 is synchronous: its calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
from eth_account._utils.signing import encode_transaction  # type: ignore[attr-defined]
from eth_keys.datatypes import Signature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from breakglass.errors import ResponseError
from breakglass.respond.signer import SignedTx, checked

__all__ = ["KmsSigner", "address_of_public_key", "parse_der_signature"]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def parse_der_signature(der: bytes) -> tuple[int, int]:
    """``(r, s)`` of a DER ``SEQUENCE { INTEGER r, INTEGER s }``."""

    def integer(data: bytes, at: int) -> tuple[int, int]:
        if data[at] != 0x02:
            raise ValueError("expected an INTEGER")
        length = data[at + 1]
        start = at + 2
        return int.from_bytes(data[start : start + length], "big"), start + length

    if len(der) < 8 or der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    at = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    r, at = integer(der, at)
    s, _ = integer(der, at)
    return r, s


def address_of_public_key(spki: bytes) -> str:
    """The Ethereum address of a DER SubjectPublicKeyInfo holding an uncompressed secp256k1 point."""
    point = spki[-65:]
    if len(point) != 65 or point[0] != 0x04:
        raise ValueError("not an uncompressed secp256k1 public key")
    return to_checksum_address(keccak(point[1:])[-20:])


class KmsSigner:
    """Signs with KMS key ``key_id``; ``address`` must be that key's (checked once, before signing)."""

    def __init__(
        self,
        key_id: str,
        address: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self._key_id = key_id
        self._address = to_checksum_address(address)
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._verified = False
        self.name = f"KMS key {key_id}"

    @property
    def address(self) -> str:
        return self._address

    def _kms(self) -> Any:
        if self._client is None:
            import boto3  # the `aws` extra: only a KMS-backed guardian needs it

            self._client = boto3.client("kms", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    async def key_address(self) -> str:
        """The address of the KMS key's public key (``GetPublicKey``)."""
        answer = await self._run("GetPublicKey", lambda kms: kms.get_public_key(KeyId=self._key_id))
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
        if spec != "ECC_SECG_P256K1":
            raise ResponseError(f"{self.name} is a {spec} key, not ECC_SECG_P256K1")
        return address_of_public_key(bytes(answer["PublicKey"]))

    async def _run(self, what: str, call: Any) -> Any:
        try:
            return await asyncio.to_thread(call, self._kms())
        except Exception as exc:  # botocore's tree: ClientError, EndpointConnectionError, NoCredentials...
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise ResponseError(f"{self.name}: {what} failed ({code})", recoverable=True) from None

    async def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        if not self._verified:
            found = await self.key_address()
            if found != self._address:
                raise ResponseError(f"{self.name} holds {found}, not the configured guardian {self._address}")
            self._verified = True
        unsigned = serializable_unsigned_transaction_from_dict(dict(tx))
        digest = bytes(unsigned.hash())
        answer = await self._run(
            "Sign",
            lambda kms: kms.sign(
                KeyId=self._key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
            ),
        )
        r, s = parse_der_signature(bytes(answer["Signature"]))
        if s > SECP256K1_N // 2:
            s = SECP256K1_N - s
        for v in (0, 1):
            signature = Signature(vrs=(v, r, s))
            if signature.recover_public_key_from_msg_hash(digest).to_checksum_address() == self._address:
                raw = bytes(encode_transaction(unsigned, vrs=(v, r, s)))
                return checked(raw, tx, self._address, self.name)
        raise ResponseError(f"{self.name}: the signature recovers to neither candidate of {self._address}")

    def __repr__(self) -> str:
        return f"KmsSigner({self._address})"
