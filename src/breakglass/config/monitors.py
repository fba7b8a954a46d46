"""Monitors-as-code: the detector declarations of a configuration (owned by the detection engine).

Each ``kind`` is one model; ``docs/detection.md`` shows a YAML example of each. Expressions (``where``,
``expect``) are CEL and are compiled here, so a syntax error is reported by ``breakglass check`` with
its file and line. Contract names are ``RefTo("contract")`` and are checked against the manifest;
names inside ``calls`` strings and event/function names are checked when the engine is built.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from breakglass.config.base import Strict
from breakglass.config.refs import RefTo, UniqueKey

__all__ = [
    "AllowRole",
    "BalanceMonitor",
    "CallMonitor",
    "EventMonitor",
    "FlowMonitor",
    "GovernanceMonitor",
    "IntelMonitor",
    "InvariantMonitor",
    "MonitorConfig",
    "PluginMonitor",
    "ScheduledCall",
    "SetupMonitor",
    "SeverityName",
    "TransactionMonitor",
]

SeverityName = Literal["info", "low", "medium", "high", "critical"]
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
Address = Annotated[str, Field(pattern=_ADDRESS)]
ContractName = Annotated[str, RefTo("contract")]
ContractNames = Annotated[list[str], RefTo("contract")]
"""A list of contract names; the marker sits on the list so ``config.refs`` checks each element."""


def _cel(text: str | None) -> str | None:
    if text is None:
        return None
    from breakglass.detect.syntax import compile_expression  # the expression language's own parser

    try:
        compile_expression(text)
    except ValueError as exc:
        raise ValueError(f"invalid CEL expression: {exc}") from None
    return text


class _MonitorBase(Strict):
    id: Annotated[str, UniqueKey("monitor"), Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    severity: SeverityName = "high"
    title: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    chain: Annotated[str | None, RefTo("chain")] = Field(
        default=None,
        description="with several chains: the one watched (a monitor naming contracts watches theirs)",
    )


class EventMonitor(_MonitorBase):
    """A log of ``event`` emitted by ``contract``, optionally filtered by ``where`` (CEL)."""

    kind: Literal["event"]
    contract: ContractName
    event: str = Field(description="event name, or full signature when the ABI overloads it")
    where: str | None = Field(default=None, description="CEL over args, log, tx, block")

    _where = field_validator("where")(_cel)


class CallMonitor(_MonitorBase):
    """A transaction calling ``function`` of ``contract`` directly (top-level calls)."""

    kind: Literal["call"]
    contract: ContractName
    function: str
    where: str | None = Field(default=None, description="CEL over args, tx, block")
    include_reverted: bool = False

    _where = field_validator("where")(_cel)


class TransactionMonitor(_MonitorBase):
    """Any transaction (optionally only those sent to ``to``) matching ``where``."""

    kind: Literal["transaction"]
    to: ContractNames = Field(default_factory=list)
    where: str = Field(description="CEL over tx, block and logs (the transaction's decoded protocol logs)")

    _where = field_validator("where")(_cel)


class InvariantMonitor(_MonitorBase):
    """Expressions over contract view calls that must hold on every block."""

    kind: Literal["invariant"]
    calls: dict[str, str] = Field(
        description="name -> 'contract.function(args)': view calls read on every block"
    )
    expect: str = Field(description="expression over the call results that must hold")

    _expect = field_validator("expect")(_cel)


class FlowMonitor(_MonitorBase):
    """Net outflow of ``token`` from ``holders`` over a sliding window of blocks or seconds."""

    kind: Literal["flow"]
    token: ContractName
    holders: ContractNames = Field(min_length=1)
    window_blocks: int | None = Field(default=None, ge=1, le=100_000)
    window_seconds: float | None = Field(default=None, gt=0, le=30 * 86400)
    max_outflow: int | None = Field(default=None, ge=0, description="raw token units")
    max_fraction: float | None = Field(
        default=None, gt=0, le=1, description="of the holders' balance at the start of the window"
    )

    @model_validator(mode="after")
    def _one_window_and_a_limit(self) -> FlowMonitor:
        if (self.window_blocks is None) == (self.window_seconds is None):
            raise ValueError("set exactly one of window_blocks and window_seconds")
        if self.max_outflow is None and self.max_fraction is None:
            raise ValueError("set max_outflow, max_fraction, or both")
        return self


GovernanceAction = Literal["roles", "ownership", "upgrades", "timelock", "pause", "safe", "parameters"]
_ALL_ACTIONS: tuple[GovernanceAction, ...] = (
    "roles",
    "ownership",
    "upgrades",
    "timelock",
    "pause",
    "safe",
    "parameters",
)


class ScheduledCall(Strict):
    """A call a timelock may schedule without a finding: a contract of the deployment and its function
    (``*``: any of its functions)."""

    contract: ContractName
    function: str = Field(pattern=r"^([A-Za-z_][A-Za-z0-9_]*|\*)$")


class AllowRole(Strict):
    """Expected actors by AccessControl role: the accounts holding ``role`` on ``contract``, as its
    ``RoleGranted``/``RoleRevoked`` events say (``members``: holders granted before the first block
    the watcher sees)."""

    contract: ContractName
    role: str = Field(
        pattern=r"^([A-Za-z_][A-Za-z0-9_]*|0x[0-9a-fA-F]{64})$",
        description="a role's name (PROPOSER_ROLE: keccak256 of the name; DEFAULT_ADMIN_ROLE: 0x00..00) "
        "or its 32-byte hash",
    )
    members: list[Address] = Field(
        default_factory=list, description="holders granted before the watcher's first block"
    )


class GovernanceMonitor(_MonitorBase):
    """Privileged changes on ``contracts`` made by anyone not in ``allow``."""

    kind: Literal["governance"]
    contracts: ContractNames = Field(min_length=1)
    actions: list[GovernanceAction] = Field(default_factory=lambda: list(_ALL_ACTIONS))
    allow: list[Address] = Field(default_factory=list, description="expected actors, by address")
    allow_contracts: ContractNames = Field(
        default_factory=list, description="expected actors by contract name (a timelock, a Safe)"
    )
    allow_roles: list[AllowRole] = Field(
        default_factory=list, description="expected actors by AccessControl role, followed on chain"
    )
    parameter_events: list[str] | None = Field(
        default=None,
        description="event names that change a risk parameter; unset: every event of the watched "
        "contracts named like a setting (...Set, ...Updated, ...Changed), prices and caches excepted",
    )
    pause_events: list[str] = Field(
        default_factory=list,
        description="the protocol's own pause, freeze or block events, beyond Pausable's Paused/Unpaused",
    )
    scheduled_allow: list[ScheduledCall] | None = Field(
        default=None,
        description="TimelockController: the calls that may be scheduled. Any other scheduled call is a "
        "finding whoever scheduled it (a compromised proposer is not silent); unset: judged by who "
        "scheduled it, like every other change",
    )


class RevertBurst(Strict):
    count: int = Field(default=3, ge=2)
    window_blocks: int = Field(default=20, ge=1)


class SetupMonitor(_MonitorBase):
    """The set-up stage of an attack: tainted funding, fresh contracts, reverted probes."""

    kind: Literal["setup"]
    protocol: ContractNames = Field(min_length=1)
    mixers: list[Address] = Field(default_factory=list)
    mixer_contracts: ContractNames = Field(default_factory=list, description="mixers named in the manifest")
    flagged: list[Address] = Field(default_factory=list)
    hops: int = Field(default=2, ge=1, le=5)
    fresh_blocks: int = Field(default=7200, ge=1, description="a contract this young is fresh")
    reverts: RevertBurst | None = Field(default_factory=RevertBurst)
    sources: Annotated[list[str], RefTo("intel source")] = Field(
        default_factory=list,
        description="also taint from the funding sources (mixer hops) pulled from these intel.sources "
        "(breakglass intel pull) while they live; a funding source is never matched as an attacker",
    )


class IntelMonitor(_MonitorBase):
    """Threat-intelligence indicators: known-bad addresses, code hashes, selectors."""

    kind: Literal["intel"]
    addresses: list[Address] = Field(default_factory=list)
    code_hashes: list[Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]] = Field(default_factory=list)
    selectors: list[Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{8}$")]] = Field(default_factory=list)
    files: list[str] = Field(
        default_factory=list, description="files of indicators, one per line (relative to the config)"
    )
    sources: Annotated[list[str], RefTo("intel source")] = Field(
        default_factory=list,
        description="also match the indicators pulled from these intel.sources (breakglass intel pull), "
        "each at its source's severity",
    )


class BalanceMonitor(_MonitorBase):
    """An account's ether balance below a floor, read at every block: the guardian's gas (a pause it
    cannot pay for is never sent), a keeper's, an oracle updater's."""

    kind: Literal["balance"]
    address: Address = Field(description="the account watched")
    min_eth: float = Field(gt=0, le=1e9, description="the floor, in ether")


class PluginMonitor(_MonitorBase):
    """A Python detector: ``module:Class`` implementing ``breakglass.detect.plugins.Plugin``."""

    kind: Literal["plugin"]
    plugin: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    options: dict[str, object] = Field(default_factory=dict)


MonitorConfig = Annotated[
    EventMonitor
    | CallMonitor
    | TransactionMonitor
    | InvariantMonitor
    | FlowMonitor
    | GovernanceMonitor
    | SetupMonitor
    | IntelMonitor
    | BalanceMonitor
    | PluginMonitor,
    Field(discriminator="kind"),
]
