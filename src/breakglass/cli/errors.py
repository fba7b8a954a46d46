"""Map library errors to exit codes and readable messages; the only place that exits the process."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from breakglass.errors import BreakglassError, ConfigError, PolicyViolation, StageFailed, ToolchainError

__all__ = ["EXIT_CODES", "exit_code_for", "handle_errors", "stderr"]

P = ParamSpec("P")
R = TypeVar("R")


def stderr() -> Console:
    """The console for error messages, made when one is printed: it sizes itself to the terminal of the
    moment rather than to the one seen at import (the CLI modules create no console at import)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


EXIT_CODES: dict[type[BreakglassError], int] = {
    ConfigError: 2,
    ToolchainError: 3,
    PolicyViolation: 4,
    StageFailed: 5,  # serve: a stage ended with an error (a detect replica's lost lease); restart it
    BreakglassError: 1,
}
"""Exit codes (docs/going-live.md, "Exit codes"): 0 success (serve: stopped by SIGTERM or Ctrl-C), 1 any
other error, 2 an invalid configuration, 3 anvil or solc-js, 4 refused by the response policy, 5 a stage
of ``serve`` failed."""


def exit_code_for(error: BreakglassError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code
    return 1


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command; a ``BreakglassError`` becomes a red message and its exit code, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except BreakglassError as exc:
            stderr().print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(exit_code_for(exc)) from exc

    return wrapper
