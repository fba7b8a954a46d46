"""Signing and verifying a STIX bundle with an Ethereum key, offline.

The signed message is the canonical JSON of the bundle's objects, sorted by id (keys sorted, no
whitespace, UTF-8: ``canonical``), signed as an EIP-191 personal message (what ``eth_sign``/wallets
sign, so a hardware wallet or ``cast wallet sign`` can sign a bundle too). The bundle's own envelope
(its id) is not signed: STIX bundles are transient wrappers, and a TAXII server hands out objects, not
bundles. The signature and the signer's address travel in the bundle as the custom property
``x_breakglass_signature``; over TAXII they travel as an ``x-breakglass-signature`` object naming the
objects it covers (``signature_object``), from which the consumer puts the bundle together again
(``bundles_from_objects``). Anyone holding the objects can recover the signer and compare it with the
addresses they trust.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from breakglass.errors import IntelError

__all__ = [
    "SCHEME",
    "SIGNATURE",
    "SIGNATURE_TYPE",
    "BundleSigner",
    "bundles_from_objects",
    "canonical",
    "sign_bundle",
    "signature_object",
    "verify_bundle",
]

SIGNATURE = "x_breakglass_signature"
"""The bundle property that carries ``{"scheme", "signer", "signature"}``."""
SCHEME = "eip191-personal-sign/canonical-json"
SIGNATURE_TYPE = "x-breakglass-signature"
"""The STIX object type carrying a signature where there is no bundle (a TAXII collection)."""
_NAMESPACE = uuid.UUID("0c6f3c1e-2f55-4d6b-9a55-8f5b3e2a7d41")


def canonical(bundle: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: the bundle's objects sorted by id, keys sorted, compact, UTF-8."""
    objects = sorted(bundle.get("objects") or (), key=lambda o: (str(o.get("id")), str(o.get("modified"))))
    body = {"objects": objects}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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


def signature_object(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The signature of a signed ``bundle`` as a STIX object of its own, naming the objects it covers:
    what goes to a TAXII collection beside them."""
    claim = bundle.get(SIGNATURE)
    if not isinstance(claim, Mapping):
        raise IntelError(f"bundle {bundle.get('id')} is not signed", reason="unsigned")
    objects = list(bundle.get("objects") or ())
    stamp = max((str(o.get("modified") or o.get("created") or "") for o in objects), default="")
    return {
        "type": SIGNATURE_TYPE,
        "spec_version": "2.1",
        "id": f"{SIGNATURE_TYPE}--{uuid.uuid5(_NAMESPACE, str(claim.get('signature')))}",
        "created": stamp,
        "modified": stamp,
        "object_refs": sorted(str(o["id"]) for o in objects),
        **{k: claim.get(k) for k in ("scheme", "signer", "signature")},
    }


def bundles_from_objects(objects: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The signed bundles the ``objects`` of a collection make, one per signature object, and how many
    indicators no signature covers (unsigned: never imported)."""
    by_id: dict[str, Mapping[str, Any]] = {}
    signatures: list[Mapping[str, Any]] = []
    for obj in objects:
        if obj.get("type") == SIGNATURE_TYPE:
            signatures.append(obj)
        else:
            by_id[str(obj.get("id"))] = obj
    bundles: list[dict[str, Any]] = []
    covered: set[str] = set()
    for signature in signatures:
        refs = [str(r) for r in signature.get("object_refs") or ()]
        covered.update(refs)
        bundles.append({
            "type": "bundle",
            "id": "bundle--" + str(signature["id"]).split("--", 1)[-1],
            "objects": [dict(by_id[r]) for r in refs if r in by_id],  # one missing: the signature fails
            SIGNATURE: {k: signature.get(k) for k in ("scheme", "signer", "signature")},
        })  # fmt: skip
    unsigned = sum(1 for i, o in by_id.items() if o.get("type") == "indicator" and i not in covered)
    return bundles, unsigned
