"""An incident's lifecycle states and resolutions, apart from the store's models: the CLI names them
in its commands' signatures, and importing them must not load SQLAlchemy (``breakglass --help``)."""

from __future__ import annotations

import enum

__all__ = ["IncidentState", "Resolution"]


class IncidentState(enum.StrEnum):
    """The lifecycle, in order (NIST 800-61 phases). Valid moves: ``breakglass.incidents.lifecycle``."""

    DETECTED = "detected"
    TRIAGED = "triaged"
    CONTAINED = "contained"
    ERADICATED = "eradicated"
    RECOVERED = "recovered"
    CLOSED = "closed"


class Resolution(enum.StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"
    BENIGN = "benign"
