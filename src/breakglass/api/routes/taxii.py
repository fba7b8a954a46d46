"""``/taxii2/``: our shared threat intelligence as a read-only TAXII 2.1 server, for peers (role ``peer``
and above; ``docs/intel.md``).

One API root (``intel``) with one collection: the signed bundles ``intel.export`` wrote, their objects
and, beside each bundle's objects, its ``x-breakglass-signature`` object, so that a peer verifies what
it reads offline (``intel.signing``). A bundle that does not verify is not served. Without
``intel.export`` there is no collection. Every page is the whole collection (``more`` is false): a
protocol shares tens of incidents, not millions of objects.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from breakglass.api.access import GuardedRoute, Peer
from breakglass.api.context import ApiContext, Ctx
from breakglass.errors import IntelError
from breakglass.logs import get_logger

__all__ = ["MEDIA_TYPE", "collection_id", "router"]

log = get_logger(__name__)

router = APIRouter(prefix="/taxii2", tags=["taxii"], route_class=GuardedRoute)

MEDIA_TYPE = "application/taxii+json;version=2.1"
_STIX = "application/stix+json;version=2.1"
_ROOT = "intel"
_NAMESPACE = uuid.UUID("3f0b7a52-5d7e-4d36-9a1f-1c0e6b9f2e11")


class TaxiiResponse(JSONResponse):
    media_type = MEDIA_TYPE


_OK: dict[int | str, dict[str, Any]] = {200: {"content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}}
"""Documented apart from the route's response class, so that its errors stay ``application/json``."""
_NOT_FOUND: dict[int | str, dict[str, Any]] = {**_OK, 404: {"description": "no such collection"}}


def _producer(ctx: ApiContext) -> str:
    intel = ctx.app.config.settings.intel
    return intel.producer or ctx.app.config.settings.protocol


def collection_id(producer: str) -> str:
    """The collection's id: the same for a producer across restarts and machines."""
    return str(uuid.uuid5(_NAMESPACE, producer))


def _folder(ctx: ApiContext) -> Path | None:
    export = ctx.app.config.settings.intel.export
    return ctx.app.config.path.parent / export.folder if export is not None else None


def _collection(ctx: ApiContext) -> dict[str, Any]:
    return {
        "id": collection_id(_producer(ctx)),
        "title": f"{_producer(ctx)}: indicators of confirmed incidents",
        "description": "signed STIX 2.1 objects; verify with breakglass intel verify or the "
        "x-breakglass-signature objects",
        "can_read": True,
        "can_write": False,
        "media_types": [_STIX],
    }


def _shared_objects(folder: Path) -> list[dict[str, Any]]:
    """Every object of every bundle in ``folder`` that verifies, and each bundle's signature object."""
    from breakglass.intel.signing import signature_object, verify_bundle

    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            bundle = json.loads(path.read_text(encoding="utf-8"))
            verify_bundle(bundle)
            signature = signature_object(bundle)
        except (OSError, ValueError, IntelError) as exc:
            log.warning("intel.unserved_bundle", file=str(path), error=type(exc).__name__)
            continue
        for obj in [*bundle["objects"], signature]:
            objects[(str(obj["id"]), str(obj.get("modified", "")))] = obj
    return list(objects.values())


def _require_collection(ctx: ApiContext, collection: str) -> Path:
    folder = _folder(ctx)
    if folder is None or collection != collection_id(_producer(ctx)):
        raise HTTPException(404, "no such collection")
    return folder


@router.get("/", responses=_OK, summary="TAXII 2.1 discovery")
async def discovery(ctx: Ctx, request: Request, _who: Peer) -> TaxiiResponse:
    root = str(request.url_for("api_root"))
    return TaxiiResponse(
        {"title": f"{_producer(ctx)} threat intelligence", "default": root, "api_roots": [root]}
    )


@router.get(f"/{_ROOT}/", responses=_OK, summary="TAXII 2.1 API root", name="api_root")
async def api_root(ctx: Ctx, _who: Peer) -> TaxiiResponse:
    return TaxiiResponse(
        {"title": f"{_producer(ctx)} intel", "versions": [MEDIA_TYPE], "max_content_length": 10_485_760}
    )


@router.get(f"/{_ROOT}/collections/", responses=_OK, summary="TAXII 2.1 collections")
async def collections(ctx: Ctx, _who: Peer) -> TaxiiResponse:
    return TaxiiResponse({"collections": [_collection(ctx)] if _folder(ctx) is not None else []})


@router.get(f"/{_ROOT}/collections/{{collection}}/", responses=_NOT_FOUND, summary="TAXII 2.1 collection")
async def collection(ctx: Ctx, collection: str, _who: Peer) -> TaxiiResponse:
    _require_collection(ctx, collection)
    return TaxiiResponse(_collection(ctx))


@router.get(
    f"/{_ROOT}/collections/{{collection}}/objects/", responses=_NOT_FOUND, summary="TAXII 2.1 objects"
)
async def objects(
    ctx: Ctx, collection: str, _who: Peer, limit: int | None = None, next: str | None = None
) -> TaxiiResponse:
    """The whole collection in one page (``limit`` and ``next`` are accepted; ``more`` is false)."""
    folder = _require_collection(ctx, collection)
    found = await asyncio.to_thread(_shared_objects, folder)
    return TaxiiResponse({"more": False, "objects": found})
