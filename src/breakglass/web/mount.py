"""Attach the dashboard to the API application: static files (vendored htmx included) and the pages.

htmx is a file of the package, ``static/vendor/htmx.min.js`` (``HTMX_VERSION``), copied from the npm
package ``htmx.org`` pinned in ``package-lock.json``; ``tests/unit/api/test_vendored_htmx.py`` fails
when the two differ. So an installed wheel serves the dashboard without ``node_modules``, and the
browser never fetches anything from the internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from breakglass.web import forms, pages, session

__all__ = ["HTMX", "HTMX_VERSION", "STATIC", "mount_dashboard"]

STATIC = Path(__file__).parent / "static"
HTMX = STATIC / "vendor" / "htmx.min.js"
HTMX_VERSION = "2.0.11"
"""The version of ``htmx.org`` that ``HTMX`` is (package-lock.json pins the same)."""


def mount_dashboard(api: FastAPI) -> None:
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    api.include_router(session.router)
    api.include_router(pages.router)
    api.include_router(forms.router)
