"""Signing and verifying a STIX bundle with an Ethereum key, offline.

The signed message is the bundle's canonical JSON without its signature: keys sorted, no whitespace,
UTF-8 (``canonical``), signed as an EIP-191 personal message (what ``eth_sign``/wallets sign, so a
hardware wallet or ``cast wallet sign`` can sign a bundle too). The signature and the signer's address
travel in the bundle as the custom property ``x_breakglass_signature``; anyone holding the bundle can
recover the signer from it and compare it with the addresses they trust.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from breakglass.errors import IntelError

__all__ = ["SCHEME", "SIGNATURE", "BundleSigner", "canonical", "sign_bundle", "verify_bundle"]

SIGNATURE = "x_breakglass_signature"
"""The bundle property that carries ``{"scheme", "signer", "signature"}``."""
SCHEME = "eip191-personal-sign/canonical-json"


def canonical(bundle: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: the bundle without its signature, keys sorted, compact, UTF-8."""
    unsigned = {k: v for k, v in bundle.items() if k != SIGNATURE}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class BundleSigner(Protocol):
    """A key that signs EIP-191 personal messages (``respond.signer.LocalSigner``)."""

    @property
    def address(self) -> str: ...

    def sign_message(self, message: bytes) -> bytes: ...


def sign_bundle(bundle: Mapping[str, Any], signer: BundleSigner) -> dict[str, Any]:
    """A copy of ``bundle`` carrying ``signer``'s signature over its canonical JSON."""
    signature = signer.sign_message(canonical(bundle))
    out = {k: v for k, v in bundle.items() if k != SIGNATURE}
    out[SIGNATURE] = {"scheme": SCHEME, "signer": signer.address, "signature": "0x" + signature.hex()}
    return out


def verify_bundle(bundle: Mapping[str, Any]) -> str:
    """The checksummed address that signed ``bundle``; ``IntelError`` (reason ``unsigned`` or
    ``tampered``) when there is no valid signature or the content changed after signing."""
    if bundle.get("type") != "bundle":
        raise IntelError("not a STIX bundle (its 'type' is not 'bundle')", reason="malformed")
    claim = bundle.get(SIGNATURE)
    if claim is None:
        raise IntelError(f"bundle {bundle.get('id')} is not signed (no {SIGNATURE})", reason="unsigned")
    if not isinstance(claim, Mapping) or claim.get("scheme") != SCHEME:
        raise IntelError(f"bundle {bundle.get('id')}: unknown signature scheme", reason="unsigned")
    try:
        recovered = Account.recover_message(
            encode_defunct(primitive=canonical(bundle)), signature=str(claim.get("signature"))
        )
    except (ValueError, TypeError, ValidationError, BadSignature) as exc:  # not 65 bytes, not a point
        raise IntelError(
            f"bundle {bundle.get('id')}: unreadable signature ({type(exc).__name__})", reason="tampered"
        ) from None
    if recovered.lower() != str(claim.get("signer", "")).lower():
        raise IntelError(
            f"bundle {bundle.get('id')}: the signature is not {claim.get('signer')}'s over this content "
            "(changed after signing, or signed by another key)",
            reason="tampered",
        )
    return str(recovered)
