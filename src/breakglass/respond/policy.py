"""The response policy: which calls the responder may send. Pure logic, default deny.

A call passes only if all hold, checked in this order (the first failing rule is reported):
``loosening`` (the function matches a built-in or configured loosening pattern: never, whatever the
allowlist says), ``allowlist`` ((contract, function) listed), ``tightening`` (the function is classified
as making things safer), ``value`` (0), ``gas`` and ``fee`` caps, ``rate`` (per action, sliding window).
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from breakglass.config.playbooks import BUILTIN_LOOSENING, PolicyConfig, RateLimit
from breakglass.errors import PolicyViolation

__all__ = ["Policy"]


@dataclass(frozen=True, slots=True)
class _Rules:
    allow: frozenset[tuple[str, str]]
    tightening: tuple[str, ...]
    loosening: tuple[str, ...]
    max_gas: int
    max_fee_wei: int
    rate: RateLimit
    rates: dict[str, RateLimit]


def _matches(name: str, patterns: Iterable[str]) -> str | None:
    """The first pattern matching ``name``; case-insensitive so ``Unpause`` cannot slip through."""
    lowered = name.lower()
    return next((p for p in patterns if fnmatch.fnmatchcase(lowered, p.lower())), None)


class Policy:
    """Checks calls against the configured policy; keeps the per-action rate windows in memory."""

    def __init__(self, config: PolicyConfig, clock: Callable[[], float]) -> None:
        self._rules = _Rules(
            allow=frozenset((a.contract, a.function) for a in config.allow),
            tightening=tuple(config.tightening),
            loosening=(*BUILTIN_LOOSENING, *config.loosening),
            max_gas=config.max_gas,
            max_fee_wei=int(config.max_fee_gwei * 10**9),
            rate=config.rate_limit,
            rates=dict(config.rate_limits),
        )
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    @property
    def max_gas(self) -> int:
        return self._rules.max_gas

    @property
    def max_fee_wei(self) -> int:
        return self._rules.max_fee_wei

    def check_call(self, contract: str, function: str, value: int = 0) -> None:
        """Raise ``PolicyViolation`` unless the policy allows calling ``contract.function``."""
        rules = self._rules
        pattern = _matches(function, rules.loosening)
        if pattern is not None:
            raise PolicyViolation(
                "loosening",
                f"{contract}.{function} matches loosening pattern {pattern!r}: "
                "the responder never unpauses or loosens",
            )
        if (contract, function) not in rules.allow:
            raise PolicyViolation("allowlist", f"{contract}.{function} is not in policy.allow")
        if _matches(function, rules.tightening) is None:
            raise PolicyViolation(
                "tightening", f"{function} is not classified as tightening in policy.tightening"
            )
        if value != 0:
            raise PolicyViolation("value", f"{contract}.{function} would send {value} wei; value must be 0")

    def check_costs(self, target: str, gas: int, max_fee_per_gas: int) -> None:
        if gas > self._rules.max_gas:
            raise PolicyViolation(
                "gas", f"{target} needs {gas} gas, above policy.max_gas {self._rules.max_gas}"
            )
        if max_fee_per_gas > self._rules.max_fee_wei:
            raise PolicyViolation(
                "fee", f"{target}: max fee {max_fee_per_gas} wei/gas is above policy.max_fee_gwei"
            )

    def seed(self, action: str, ages: list[float]) -> None:
        """Count uses of ``action`` made ``ages`` seconds ago (from the ledger, after a restart)."""
        now = self._clock()
        window = self._sent.setdefault(action, deque())
        window.extend(sorted(now - age for age in ages if age >= 0))

    def take_rate(self, action: str) -> None:
        """Count one use of ``action`` (``playbook.action``), or refuse if its window is full."""
        limit = self._rules.rates.get(action, self._rules.rate)
        now = self._clock()
        window = self._sent.setdefault(action, deque())
        while window and window[0] <= now - limit.per_seconds:
            window.popleft()
        if len(window) >= limit.count:
            raise PolicyViolation(
                "rate",
                f"{action} already ran {len(window)} time(s) in the last "
                f"{limit.per_seconds:g} s (limit {limit.count})",
            )
        window.append(now)
