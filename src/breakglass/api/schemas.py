"""Shapes shared by several routers: the error answer, input types bounded to what the store holds,
and the responses they document.

Inputs are checked against the columns they land in, so nothing valid for the API is refused by the
database (a 500): text has a length and no NUL (PostgreSQL text cannot hold one), integers are JSON
integers (never ``false`` or ``1.0``) within the column's range, unknown fields are refused. A lone
surrogate (``"\\ud800"``) fails validation as not a string (422), and error answers never echo the
input back (``breakglass.api.application``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from breakglass.domain import Severity
from breakglass.timeline import TimelineEntry

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "NOT_FOUND",
    "NO_NUL",
    "ApiInput",
    "BodyInt",
    "Issue",
    "Problem",
    "TimelineOut",
    "severity_name",
    "text",
]

INT32_MAX = 2**31 - 1
"""The largest value of an ``Integer`` column (ids of silences, tasks): PostgreSQL's ``integer``."""
INT64_MAX = 2**63 - 1
"""The largest value of a ``BigInteger`` column (blocks, times): PostgreSQL's ``bigint``."""
NO_NUL = r"^[^\x00]*$"
"""No NUL character: PostgreSQL text columns cannot hold one."""


def text(max_length: int, *, min_length: int = 1) -> Any:
    """A string field for text that is stored: bounded, without NUL."""
    return Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)


class ApiInput(BaseModel):
    """A request body: unknown fields are refused (a typo'd ``resolutoin`` is not silently dropped)."""

    model_config = ConfigDict(extra="forbid")


BodyInt = Annotated[int, Field(strict=True)]
"""An integer in a JSON body: a JSON integer, never ``false``, ``"1"`` or ``1.0``."""


class Issue(BaseModel):
    """One reason a request was refused: where (``["body", "text"]``) and what."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Every error answer: ``detail`` is a sentence, or one ``Issue`` per invalid part of the request."""

    detail: str | list[Issue]


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such item"}}


def severity_name(value: int) -> str:
    try:
        return str(Severity(value))
    except ValueError:
        return str(value)


class TimelineOut(BaseModel):
    """One timeline event. ``hash`` chains it to the one before (``breakglass audit verify``)."""

    seq: int
    incident_id: str | None
    kind: str
    actor: str
    at: int
    data: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineOut:
        return cls(seq=entry.seq, incident_id=entry.incident_id, kind=entry.kind.value,
                   actor=entry.actor, at=entry.at, data=dict(entry.data), hash=entry.hash)  # fmt: skip
