"""One muting interface for silences and inhibition (Alertmanager's ``notify/mute.go``).

A ``Muter`` answers why an alert is muted (``"silence:12"``, ``"inhibit:venue-paused"``) or None;
``MuteStage`` marks muted alerts and lets the rest through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from breakglass.alerts.models import AlertStatus
from breakglass.alerts.stage import AlertContext, Candidate

__all__ = ["MultiMuter", "MuteStage", "Muter"]


class Muter(Protocol):
    async def mutes(self, ctx: AlertContext, candidate: Candidate) -> str | None:
        """The reason ``candidate`` is muted now, or None."""
        ...


class MultiMuter:
    """The first muter that mutes wins (silences are asked before inhibition)."""

    def __init__(self, muters: Sequence[Muter]) -> None:
        self.muters = tuple(muters)

    async def mutes(self, ctx: AlertContext, candidate: Candidate) -> str | None:
        for muter in self.muters:
            reason = await muter.mutes(ctx, candidate)
            if reason is not None:
                return reason
        return None


class MuteStage:
    name = "mute"

    def __init__(self, muter: Muter) -> None:
        self.muter = muter

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        passed: list[Candidate] = []
        for candidate in alerts:
            reason = await self.muter.mutes(ctx, candidate)
            if reason is None:
                passed.append(candidate)
            elif candidate.alert is not None:
                candidate.alert.status = AlertStatus.MUTED.value
                candidate.alert.muted_by = reason
        return passed
