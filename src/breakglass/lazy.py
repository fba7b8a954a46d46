"""Package exports that load on first use (PEP 562), for packages whose ``__init__`` would otherwise
import heavy submodules at every start (``breakglass.respond``, ``breakglass.devnet``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, sources: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``sources[name]`` (the module defining ``name``) when
    ``name`` is first read from ``package``, and keeps it in ``namespace`` (the package's globals) so
    later look-ups skip it."""

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    return __getattr__
