"""The htmx the package serves is the one package-lock.json pins, byte for byte."""

from __future__ import annotations

import json

from breakglass.devnet.toolchain import node_modules, project_root
from breakglass.web.mount import HTMX, HTMX_VERSION


def test_the_vendored_htmx_is_the_pinned_npm_package_file() -> None:
    lock = json.loads((project_root() / "package-lock.json").read_text(encoding="utf-8"))
    pinned = lock["packages"]["node_modules/htmx.org"]["version"]
    assert pinned == HTMX_VERSION, (
        "package-lock.json moved htmx.org: copy its dist/htmx.min.js and bump HTMX_VERSION"
    )
    npm_file = node_modules() / "htmx.org" / "dist" / "htmx.min.js"
    assert HTMX.read_bytes() == npm_file.read_bytes(), f"{HTMX} differs from {npm_file}: copy it again"
