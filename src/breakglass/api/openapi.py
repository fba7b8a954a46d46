"""The OpenAPI spec as a reviewable file: ``python -m breakglass.api.openapi [PATH]`` writes it
(default ``docs/openapi.json``); a test checks the committed file equals what the server publishes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from breakglass.api.application import create_api
from breakglass.app import build_app
from breakglass.config import LoadedConfig
from breakglass.config.models import Settings

__all__ = ["render", "spec"]


def spec() -> dict[str, Any]:
    """The spec of the API as built for a default configuration (routes do not depend on it)."""
    config = LoadedConfig(path=Path("breakglass.yaml"), settings=Settings(), contracts={})
    # No I/O: the engine connects lazily and nothing is served. The dashboard has no spec entries.
    api = create_api(build_app(config), session_secret="0" * 32, web=False)
    return api.openapi()


def render(document: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, final newline, so diffs show only real changes."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else Path("docs/openapi.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(spec()), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
