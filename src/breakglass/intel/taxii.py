"""TAXII 2.1 transport for signed intel, with ``taxii2-client``: reading a peer's collection, and
publishing our signed objects to a collection we may write to.

A collection holds objects, not bundles: each bundle's signature goes beside its objects as an
``x-breakglass-signature`` object (``signing.signature_object``) and the reader puts the bundles
together again (``signing.bundles_from_objects``). Network and server errors become ``IntelError``
with reason ``unreachable`` (the collection's URL is never in the message: it may hold credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from breakglass.config.intel import TaxiiCollectionConfig
from breakglass.errors import IntelError
from breakglass.intel.signing import signature_object

__all__ = ["fetch_objects", "publish_bundle"]

_PAGE = 100


def _collection(url: str, user: str | None, password: str | None, token: str | None = None) -> Any:
    from requests.auth import AuthBase
    from taxii2client.v21 import Collection  # only for TAXII sources

    class Bearer(AuthBase):  # a breakglass peer token
        def __call__(self, request: Any) -> Any:
            request.headers["Authorization"] = f"Bearer {token}"
            return request

    return Collection(url, user=user, password=password, auth=Bearer() if token else None)


def fetch_objects(config: TaxiiCollectionConfig, source: str) -> list[dict[str, Any]]:
    """Every object of the collection (latest version of each), page by page."""
    from taxii2client.exceptions import TAXIIServiceException
    from taxii2client.v21 import as_pages

    password = config.password.get_secret_value() if config.password is not None else None
    token = config.token.get_secret_value() if config.token is not None else None
    objects: list[dict[str, Any]] = []
    try:
        collection = _collection(config.url.get_secret_value(), config.user, password, token)
        for envelope in as_pages(collection.get_objects, per_request=_PAGE):
            objects += list(envelope.get("objects") or ())
    except (TAXIIServiceException, OSError, ValueError) as exc:  # requests' errors are OSErrors
        raise IntelError(
            f"source {source!r}: the TAXII collection did not answer ({type(exc).__name__})",
            reason="unreachable",
        ) from None
    return objects


def publish_bundle(
    bundle: Mapping[str, Any], url: str, *, user: str | None = None, password: str | None = None
) -> int:
    """Add a signed bundle's objects and its signature object to the collection at ``url``; returns
    how many objects the server stored."""
    from taxii2client.exceptions import TAXIIServiceException

    envelope = {"objects": [*bundle.get("objects", ()), signature_object(bundle)]}
    try:
        status = _collection(url, user, password).add_objects(envelope)
    except (TAXIIServiceException, OSError, ValueError) as exc:
        raise IntelError(f"the TAXII collection refused or did not answer ({type(exc).__name__})",
                         reason="unreachable") from None  # fmt: skip
    return int(getattr(status, "success_count", 0) or 0)
