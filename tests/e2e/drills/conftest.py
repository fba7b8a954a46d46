"""The drill suite's fixtures: logging put back on the real stderr after each test, because the CLI
commands under test reconfigure it onto CliRunner's stream, which is closed when the command returns."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from breakglass.logs import configure_logging


@pytest.fixture(autouse=True)
def _logging_on_real_stderr() -> Iterator[None]:
    yield
    configure_logging(level="info", stream=sys.__stderr__)
