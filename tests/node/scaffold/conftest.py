"""The scaffold and check tests drive the CLI in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto CliRunner's stream, which closes after each invocation: a later
    test of the same process logging through it would fail."""
    yield
    structlog.reset_defaults()
