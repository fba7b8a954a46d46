"""moto's KMS server (AWS's stand-in in the tests), given AWS's documented ``MessageType=DIGEST``.

Run as ``python kms_standin.py -p PORT``. moto 5.2 hashes the message with SHA-256 even when it is
already a digest ("The MessageType-parameter DIGEST is not yet implemented"), so a signature over an
Ethereum transaction's keccak hash would be over ``sha256(hash)`` instead. Here a ``DIGEST`` sign
request signs the 32 bytes as given (``Prehashed``), as AWS KMS does; everything else is moto's.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms import responses
from moto.kms import utils as kms_utils

_DIGEST: contextvars.ContextVar[bool] = contextvars.ContextVar("digest", default=False)
_response_sign = responses.KmsResponse.sign
_key_sign = kms_utils.ECDSAPrivateKey.sign


def _sign_response(self: Any) -> Any:
    token = _DIGEST.set(self._get_param("MessageType") == "DIGEST")
    try:
        return _response_sign(self)
    finally:
        _DIGEST.reset(token)


def _sign_key(self: Any, message: bytes, signing_algorithm: str) -> bytes:
    if not _DIGEST.get():
        return _key_sign(self, message, signing_algorithm)
    kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
    return bytes(self.private_key.sign(message, ec.ECDSA(Prehashed(hashes.SHA256()))))


responses.KmsResponse.sign = _sign_response  # type: ignore[method-assign]
kms_utils.ECDSAPrivateKey.sign = _sign_key  # type: ignore[method-assign]

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
