"""Cross-references between configuration sections, checked by name after the models validate.

A field annotated ``Annotated[str, RefTo("contract")]`` must name a known contract; the checker walks
every model, so a new section gets reference checks by annotating its fields, with no extra code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from breakglass.config.yamlsource import PathKey

__all__ = ["RefTo", "UniqueKey", "closest", "find_refs"]


@dataclass(frozen=True, slots=True)
class RefTo:
    """Marks a string field as a reference to a named thing of ``kind`` (contract, monitor, ...)."""

    kind: str


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """Marks a string field as the name of a thing of ``kind``: unique, and referable by ``RefTo``."""

    kind: str


def closest(name: str, known: list[str] | set[str] | Mapping[str, Any]) -> str:
    """The ``(known: ...)`` / ``did you mean`` tail of an error about an unknown name."""
    names = sorted(known)
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    hint = f"; did you mean {match[0]!r}?" if match else ""
    return f"(known: {shown or 'none'}){hint}"


def _walk(value: Any, path: PathKey) -> Iterator[tuple[PathKey, object, Any]]:
    """Yield (path, marker, value) for every marked field under ``value``."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            alias = info.alias or name
            for marker in info.metadata:
                if isinstance(marker, RefTo | UniqueKey) and item is not None:
                    if isinstance(item, list | tuple):
                        for i, element in enumerate(item):
                            yield (*path, alias, i), marker, element
                    else:
                        yield (*path, alias), marker, item
            yield from _walk(item, (*path, alias))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))


def find_refs(
    root: BaseModel,
) -> tuple[dict[str, dict[str, PathKey]], list[tuple[PathKey, str, str]], list[tuple[PathKey, str, str]]]:
    """Collect declared names by kind, references, and duplicate declarations."""
    declared: dict[str, dict[str, PathKey]] = {}
    refs: list[tuple[PathKey, str, str]] = []
    duplicates: list[tuple[PathKey, str, str]] = []
    for path, marker, value in _walk(root, ()):
        if isinstance(marker, UniqueKey):
            names = declared.setdefault(marker.kind, {})
            if value in names:
                duplicates.append((path, marker.kind, str(value)))
            else:
                names[str(value)] = path
        elif isinstance(marker, RefTo):
            refs.append((path, marker.kind, str(value)))
    return declared, refs, duplicates
