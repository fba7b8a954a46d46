"""YAML read with a line number for every value, ``${ENV}`` interpolation and duplicate-key errors.

The result keeps, for each path (``("monitors", 3, "contract")``), the line it came from, so that
every later error (pydantic's, or a broken reference) can be reported as ``file:line path: message``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from breakglass.errors import ConfigError, ConfigIssue

__all__ = ["Located", "PathKey", "format_path", "line_of", "read_yaml"]

PathKey = tuple[str | int, ...]
_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(slots=True)
class Located:
    """Plain data from a YAML file plus where each value sits in it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    env_paths: set[PathKey] = field(default_factory=set)
    """Paths whose value came (partly) from the environment: their values are never echoed."""

    def line_of(self, path: PathKey) -> int | None:
        return line_of(self.lines, path)


def line_of(lines: Mapping[PathKey, int], path: PathKey) -> int | None:
    """The line of ``path``, else of its nearest located parent (a value built by a default)."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Builder:
    def __init__(self, file: str, environ: Mapping[str, str]) -> None:
        self.file = file
        self.environ = environ
        self.lines: dict[PathKey, int] = {}
        self.env_paths: set[PathKey] = set()
        self.issues: list[ConfigIssue] = []

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                if not isinstance(key, str) or not isinstance(key_node, yaml.ScalarNode):
                    self._issue(key_node, path, "mapping keys must be plain strings")
                    continue
                if key == "<<":
                    self._issue(key_node, path, "YAML merge keys ('<<') are not supported")
                    continue
                if key in out:
                    self._issue(key_node, (*path, key), "duplicate key")
                    continue
                out[key] = self.build(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        value = yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), node)
        if node.tag == "tag:yaml.org,2002:str" or node.style in ("'", '"'):
            return self._interpolate(str(value), node, path)
        return _resolve_scalar(node)

    def _interpolate(self, text: str, node: yaml.Node, path: PathKey) -> str:
        if "${" not in text:
            return text

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            if name in self.environ:
                return self.environ[name]
            if default is not None:
                return default
            self._issue(node, path, f"environment variable {name} is not set")
            return ""

        self.env_paths.add(path)
        return _ENV.sub(substitute, text)

    def _issue(self, node: yaml.Node, path: PathKey, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, node.start_mark.line + 1, format_path(path), message))


def _resolve_scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def read_yaml(path: Path, environ: Mapping[str, str] | None = None) -> Located:
    """Parse one YAML file. Raises ``ConfigError`` naming the file and line of every problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(file, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"cannot read: {exc}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([ConfigIssue(file, line, "", f"invalid YAML: {exc.problem}")]) from exc
    if node is None:
        raise ConfigError([ConfigIssue(file, None, "", "the file is empty")])
    builder = _Builder(file, os.environ if environ is None else environ)
    data = builder.build(node, ())
    if builder.issues:
        raise ConfigError(builder.issues)
    return Located(file=file, data=data, lines=builder.lines, env_paths=builder.env_paths)
