"""The ``attack_simulation:`` section: new contracts called on a simulated latest state before they act
(docs/detection.md, "Attack-contract simulation")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from breakglass.config.base import Strict
from breakglass.config.refs import RefTo

__all__ = ["AttackSimulationConfig", "FollowUpConfig"]


class FollowUpConfig(Strict):
    """A call one of the protocol's own permissioned actors (a keeper, a liquidator, an oracle
    updater) makes after each probe, in the same simulated bundle: the harm of a contract that lets
    the protocol strike for it (an order it created, executed by the keeper) shows on the post-state."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    contract: Annotated[str, RefTo("contract")]
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="a function of the contract")
    sender: str = Field(
        alias="from",
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="the actor's account: it holds the role the function checks on chain",
    )
    for_each: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w-]*\.[A-Za-z_][A-Za-z0-9_]*$",
        description="contract.Event: one call per such log naming the probed contract (an address "
        "argument equal to it), seen in a block since its creation or emitted by the probe itself; "
        "without it, one call after every probe",
    )
    args: list[str | int | bool] = Field(
        default_factory=list,
        description="literals or templates: '{contract}' (the probed contract), '{event.NAME}' "
        "(an argument of the for_each log)",
    )


class AttackSimulationConfig(Strict):
    """Probe each contract created near the head (by an account or a factory) and each such contract
    touched again later: call its selectors on a simulated latest state and judge the post-states
    with the protocol's monitors. A monitor broken at ``min_severity`` or above is a finding at the
    ``setup-proven`` stage, which playbooks act on like any other."""

    enabled: bool = False
    reach: Literal["protocol", "tainted", "all"] = Field(
        default="all",
        description="which new contracts to probe: those whose code embeds a protocol address "
        "(protocol), those or the ones deployed by a tainted account (tainted, needs a setup monitor), "
        "or every one within the budget (all; those first)",
    )
    min_severity: Literal["high", "critical"] = Field(
        default="critical", description="the least severity of a broken monitor that proves harm"
    )
    trace: Literal["auto", "trace_block", "debug_traceBlockByNumber", "receipts"] = Field(
        default="auto",
        description="how contracts created inside transactions are found (auto: the first the node answers)",
    )
    watch_blocks: int = Field(
        default=7200,
        ge=1,
        le=1_000_000,
        description="a contract touched within this many blocks of its creation is probed again",
    )
    max_reprobes: int = Field(
        default=8, ge=0, le=1000, description="probes of one contract after its creation's"
    )
    max_contracts_per_block: int = Field(default=4, ge=1, le=1000)
    max_simulations_per_contract: int = Field(default=160, ge=1, le=10_000)
    max_simulations_per_block: int = Field(default=320, ge=1, le=100_000)
    max_pairs: int = Field(default=24, ge=0, le=1000, description="two-call sequences per contract")
    timeout: float = Field(default=3.0, gt=0, le=600, description="seconds for one contract's probes")
    concurrency: int = Field(default=8, ge=1, le=256, description="simulations sent at once")
    funds: dict[str, Annotated[int, Field(ge=0, lt=2**256)]] = Field(
        default_factory=dict,
        description="token contract name -> amount (its base units) each probed contract holds in the "
        "simulation, flash-loan style (written to the token's balance mapping by state override)",
    )
    leverage: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=lambda: [8, 40],
        min_length=1,
        max_length=8,
        description="multiples of a margin tried as a position size in the arguments derived from what "
        "a probed contract holds (default 8 and 40: 80% of the common 10x and 50x caps, an opening "
        "fee coming off the margin); set your protocol's own caps' 80%",
    )
    follow_ups: list[FollowUpConfig] = Field(
        default_factory=list,
        description="the protocol's own actors' calls after each probe, in the same simulated bundle",
    )
