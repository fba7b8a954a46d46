"""Monitors-as-code: the detector declarations of a configuration (owned by the detection engine)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from breakglass.config.base import Strict
from breakglass.config.refs import RefTo, UniqueKey

__all__ = ["EventMonitor", "InvariantMonitor", "MonitorConfig", "SeverityName"]

SeverityName = Literal["info", "low", "medium", "high", "critical"]


class _MonitorBase(Strict):
    id: Annotated[str, UniqueKey("monitor"), Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    severity: SeverityName = "high"
    title: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True


class EventMonitor(_MonitorBase):
    kind: Literal["event"]
    contract: Annotated[str, RefTo("contract")]
    event: str
    where: str | None = None


class InvariantMonitor(_MonitorBase):
    kind: Literal["invariant"]
    calls: dict[str, str] = Field(
        description="name -> 'contract.function(args)': view calls read on every block"
    )
    expect: str = Field(description="expression over the call results that must hold")


MonitorConfig = Annotated[EventMonitor | InvariantMonitor, Field(discriminator="kind")]
