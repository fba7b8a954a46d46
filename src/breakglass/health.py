"""Readiness and liveness of the pipeline: named checks, registered by the wiring, run on request.

``GET /readyz`` answers 200 when every *readiness* check passes: the follower is caught up, the
responder has started with a funded key, the store takes writes, the stages' bus consumers run (any
stage may add its own). ``GET /livez`` answers 200 unless a *liveness* check fails: something the
process will not recover from by itself (a stage's task has ended). A load balancer routes to ready
processes; a supervisor restarts dead ones (``docs/going-live.md``).

A check is an ``async`` callable returning a ``CheckResult``; it is given ``timeout`` seconds, and an
exception or a timeout counts as a failure named by its class (never its message: a driver's error may
quote a URL with a password). Each run also sets ``breakglass_ready{check}`` to 1 or 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from breakglass.metrics import READY

__all__ = ["Check", "CheckResult", "Health", "Report"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        word = "ok" if self.ok else "fail"
        return f"{word}: {self.detail}" if self.detail else word


Check = Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class Report:
    ok: bool
    checks: dict[str, CheckResult] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "fail", "checks": {k: str(v) for k, v in self.checks.items()}}


class Health:
    """The process's readiness and liveness checks (``app.health``)."""

    def __init__(self, *, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self._ready: dict[str, Check] = {}
        self._live: dict[str, Check] = {}

    def add_readiness(self, name: str, check: Check) -> None:
        """``check`` must pass before the process takes traffic; a name given twice replaces the first."""
        self._ready[name] = check

    def add_liveness(self, name: str, check: Check) -> None:
        """``check`` fails only when the process should be restarted."""
        self._live[name] = check

    @property
    def names(self) -> tuple[list[str], list[str]]:
        """(readiness check names, liveness check names)."""
        return list(self._ready), list(self._live)

    async def readiness(self) -> Report:
        report = await self._run(self._ready)
        for name, result in report.checks.items():
            READY.labels(name).set(1 if result.ok else 0)
        return report

    async def liveness(self) -> Report:
        return await self._run(self._live)

    async def _run(self, checks: dict[str, Check]) -> Report:
        names = list(checks)
        results = await asyncio.gather(*(self._one(checks[n]) for n in names))
        out = dict(zip(names, results, strict=True))
        return Report(all(r.ok for r in results), out)

    async def _one(self, check: Check) -> CheckResult:
        try:
            async with asyncio.timeout(self.timeout):
                return await check()
        except TimeoutError:
            return CheckResult(False, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # a check that breaks is a failed check, never a 500
            return CheckResult(False, type(exc).__name__)
