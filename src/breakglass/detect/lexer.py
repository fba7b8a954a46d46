"""The expression language's tokens: numbers (exact), strings (CEL escapes), names, operators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from breakglass.detect.operators import exact

__all__ = ["Token", "tokenize"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<string>[rR]?(?:'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>+\-*/%!?:.,()\[\]{}])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "?": "?", "`": "`"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    value: Any
    at: int


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return "".join(out)


def _number_value(text: str) -> int | Fraction:
    if text[-1] in "uU":
        text = text[:-1]
    if text[:2] in ("0x", "0X"):
        return int(text, 16)
    if any(c in text for c in ".eE"):
        return exact(Fraction(text))
    return int(text)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            raise ValueError(f"unexpected {source[at]!r} at {at}")
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "number":
            tokens.append(Token("number", text, _number_value(text), at))
        elif kind == "string":
            raw = text[0] in "rR"
            body = text[2:-1] if raw else text[1:-1]
            tokens.append(Token("string", text, body if raw else _unescape(body), at))
        elif kind == "ident":
            if text in ("true", "false", "null"):
                tokens.append(Token("literal", text, {"true": True, "false": False, "null": None}[text], at))
            elif text == "in":
                tokens.append(Token("op", text, text, at))
            else:
                tokens.append(Token("ident", text, text, at))
        elif kind == "op":
            tokens.append(Token("op", text, text, at))
        at = match.end()
    tokens.append(Token("end", "", None, len(source)))
    return tokens
