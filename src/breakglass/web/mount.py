"""Attach the dashboard to the API application: static files, vendored htmx, and the page routers.

htmx comes from the project's ``node_modules`` (``htmx.org``, pinned in ``package-lock.json``) and is
served from there: the browser never fetches anything from the internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from breakglass.devnet.toolchain import node_modules
from breakglass.errors import ToolchainError
from breakglass.web import forms, pages, session

__all__ = ["STATIC", "mount_dashboard", "vendor_files"]

STATIC = Path(__file__).parent / "static"


def vendor_files() -> dict[str, Path]:
    """URL name -> file of each vendored script; raises ``ToolchainError`` when npm ci has not run."""
    dist = node_modules() / "htmx.org" / "dist"
    files = {"htmx.min.js": dist / "htmx.min.js"}
    for path in files.values():
        if not path.is_file():
            raise ToolchainError(f"{path} is missing: run `make setup` (npm ci) first")
    return files


def mount_dashboard(api: FastAPI) -> None:
    vendored = vendor_files()

    async def vendor(name: str) -> FileResponse:
        path = vendored.get(name)
        if path is None:
            raise HTTPException(404)
        return FileResponse(path, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip

    api.add_api_route("/static/vendor/{name}", vendor, methods=["GET"], include_in_schema=False)
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    api.include_router(session.router)
    api.include_router(pages.router)
    api.include_router(forms.router)
