"""Playbooks, the responder (guardian key, fees), Safes and the response policy: the ``respond`` config.

A playbook binds findings (by monitor, minimum severity, labels) to an ordered list of actions;
targeted actions come first, a global pause last. The policy is default-deny: a call is sent only if
its (contract, function) is allowed *and* each argument passes its rule (a fixed value, a set,
limits, or a bound read on chain that only lets the parameter tighten), and never if the function
matches a loosening pattern (built in: ``unpause*``, ``raise*``... plus the configured ones).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StrictBool, StrictInt, StrictStr, model_validator

from breakglass.config.base import Strict
from breakglass.config.refs import RefTo, UniqueKey

__all__ = [
    "BUILTIN_LOOSENING",
    "ArgBounds",
    "ArgRule",
    "CallAction",
    "FeeConfig",
    "GuardianKeyConfig",
    "IncidentAction",
    "KmsSignerConfig",
    "LookConfig",
    "NotifyAction",
    "PlaybookAction",
    "PlaybookConfig",
    "PlaybookMatch",
    "PolicyAllow",
    "PolicyConfig",
    "RateLimit",
    "RatifyConfig",
    "RemoteSignerConfig",
    "ResponderConfig",
    "SafeConfig",
]

_ID = r"^[a-z0-9][a-z0-9_.-]*$"
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
_FUNCTION = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SIGNATURE = r"^[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,\[\]() ]*\))?$"

BUILTIN_LOOSENING: tuple[str, ...] = (
    "unpause*",
    "resume*",
    "unblock*",
    "unfreeze*",
    "raise*",
    "increase*",
    "grant*",
    "enable*",
    "upgrade*",
    "transferOwnership",
    "renounce*",
    "withdraw*",
    "approve*",
    "setAdmin*",
)
"""Function-name patterns that loosen or hand over control: refused whatever else the policy says."""


class PlaybookMatch(Strict):
    # The marker sits on the list field: the reference checker walks the list's items.
    monitors: Annotated[list[str], RefTo("monitor")] = Field(
        default_factory=list, description="monitor ids; empty matches findings of any monitor"
    )
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "high"
    labels: dict[str, str] = Field(
        default_factory=dict, description="label -> required value; '*' only requires the label"
    )


class RatifyConfig(Strict):
    """Optimistic guardian: governance must ratify the action within ``within`` seconds."""

    within: int = Field(gt=0, description="seconds from inclusion to the ratification deadline")
    ratified: str = Field(
        pattern=_FUNCTION, description="view function on the same contract returning true once ratified"
    )
    args: list[str | int | bool] = Field(
        default_factory=list, description="its arguments, templated like calls'"
    )
    output: int = Field(
        default=0, ge=0, description="which output is the boolean (e.g. 1 of (until, ratified))"
    )


class CallAction(Strict):
    """Call one contract function, by the guardian key (``via: guardian``) or a Safe (``via: safe:NAME``)."""

    kind: Literal["call"]
    id: Annotated[str, Field(pattern=_ID)]
    contract: Annotated[str, RefTo("contract")]
    function: str = Field(pattern=_FUNCTION)
    args: list[str | int | bool] = Field(
        default_factory=list,
        description="literal values or templates: '{labels.market}', '{evidence.attacker}', "
        "'{finding.tx_hash}'; checked against the ABI before anything is sent",
    )
    via: str = Field(default="guardian", pattern=r"^(guardian|safe:[a-z0-9][a-z0-9_.-]*)$")
    once_per: Literal["finding", "target"] = Field(
        default="finding",
        description="idempotency scope: once per finding fingerprint, or once per target ever "
        "(a global pause: repeated attacks do not pause twice)",
    )
    ratify: RatifyConfig | None = None
    optional: bool = Field(
        default=False,
        description="skip (do not fail) this call for a finding that lacks a field its templates name, "
        "e.g. '{evidence.attacker}', which only findings of simulated transactions carry",
    )


class NotifyAction(Strict):
    kind: Literal["notify"]
    id: Annotated[str, Field(pattern=_ID)]
    message: str


class IncidentAction(Strict):
    """Ask the incident stage to open an incident for the finding, or escalate its severity."""

    kind: Literal["incident"]
    id: Annotated[str, Field(pattern=_ID)]
    severity: Literal["low", "medium", "high", "critical"] = "critical"


PlaybookAction = Annotated[CallAction | NotifyAction | IncidentAction, Field(discriminator="kind")]


class PlaybookConfig(Strict):
    id: Annotated[str, UniqueKey("playbook"), Field(pattern=_ID)]
    description: str = ""
    enabled: bool = True
    match: PlaybookMatch = Field(default_factory=PlaybookMatch)
    actions: list[PlaybookAction] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_action_ids(self) -> PlaybookConfig:
        ids = [a.id for a in self.actions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate action id(s) {duplicates} in playbook {self.id!r}")
        return self


class RemoteSignerConfig(Strict):
    """A signer that holds the key in another process: JSON-RPC ``eth_signTransaction`` (Web3Signer,
    Clef, geth/erigon's personal accounts)."""

    url: SecretStr = Field(description="http(s) URL of the signer's JSON-RPC endpoint (may carry a token)")
    address: str = Field(pattern=_ADDRESS, description="the guardian account the signer holds")
    timeout: float = Field(default=5.0, gt=0, le=60, description="seconds per signing request")


class KmsSignerConfig(Strict):
    """An AWS KMS key of spec ECC_SECG_P256K1 (sign/verify): the key never leaves KMS."""

    key_id: str = Field(min_length=1, description="key id, ARN or alias/NAME")
    address: str = Field(pattern=_ADDRESS, description="the key's Ethereum address (checked at start)")
    region: str | None = Field(default=None, description="AWS region; default from the environment")
    endpoint_url: str | None = Field(
        default=None, description="a KMS-compatible endpoint instead of AWS's (a VPC endpoint, tests)"
    )


class GuardianKeyConfig(Strict):
    """Where the guardian key comes from: a remote signer or AWS KMS (the key never in this process),
    an encrypted keystore, or an environment variable."""

    keystore: str | None = Field(default=None, description="eth-account keystore JSON, relative path")
    password: SecretStr | None = Field(default=None, description="keystore password, e.g. '${GUARDIAN_PW}'")
    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of a variable holding the hex key",
    )
    remote: RemoteSignerConfig | None = None
    kms: KmsSignerConfig | None = None

    @model_validator(mode="after")
    def _one_source(self) -> GuardianKeyConfig:
        sources = [self.keystore, self.env, self.remote, self.kms]
        if sum(source is not None for source in sources) != 1:
            raise ValueError("set exactly one of 'keystore' (with 'password'), 'env', 'remote' or 'kms'")
        if self.keystore is not None and self.password is None:
            raise ValueError("'keystore' needs 'password'")
        return self


class FeeConfig(Strict):
    priority_fee_gwei: float = Field(default=2.0, ge=0, description="tip when nothing is to be outbid")
    base_fee_multiplier: float = Field(default=2.0, ge=1, description="max fee = base fee x this + tip")
    outbid_margin: float = Field(default=0.25, ge=0.1, le=10, description="fraction above a pending tx")
    bump_factor: float = Field(default=1.25, ge=1.1, le=10, description="fee factor of a replacement")


class LookConfig(Strict):
    """Look before acting: every guardian call is first simulated against honest traffic (the node's
    pending protocol transactions and a replay of the last blocks' ones, as the next blocks' flow); one
    that would make a ``never_revert`` function revert, or whose harm exceeds the value it protects, is
    withheld and escalated to people instead of sent (docs/response.md)."""

    pending: bool = Field(default=True, description="sample the node's pending protocol transactions")
    recent_blocks: int = Field(
        default=2, ge=0, le=16, description="replay the protocol transactions of the last N blocks"
    )
    max_transactions: int = Field(default=64, ge=1, le=1000, description="sampled transactions at most")
    never_revert: list[str] = Field(
        default_factory=lambda: ["liquidate*"],
        description="function-name patterns (fnmatch): an action that would make an honest call of one "
        "revert is escalated whatever the value at risk (liquidations above all)",
    )
    attack_path: list[str] = Field(
        default_factory=list,
        description="'playbook.action' ids whose finding proves the never_revert calls are the attack "
        "path (halting a market whose price is manipulated): for them only harm and value are weighed",
    )
    harm_per_transaction: int = Field(
        default=0, ge=0, description="token units one other honest transaction that would revert costs"
    )
    protects: dict[str, list[str]] = Field(
        default_factory=dict,
        description="'playbook.action' -> view calls 'contract.function(args)' (args templated like a "
        "call's) whose sum is the value at risk the action protects",
    )


class ResponderConfig(Strict):
    guardian: GuardianKeyConfig | None = None
    look: LookConfig | None = Field(
        default=None, description="look before acting: simulate each call's harm on honest traffic first"
    )
    fees: FeeConfig = Field(default_factory=FeeConfig)
    gas_margin: float = Field(default=1.25, ge=1, le=5, description="gas limit = estimate x this")
    bump_after_blocks: int = Field(default=2, ge=1, le=100)
    receipt_timeout: float = Field(default=120.0, gt=0)


class SafeConfig(Strict):
    name: Annotated[str, UniqueKey("safe"), Field(pattern=_ID)]
    address: str = Field(pattern=_ADDRESS)
    chain: Annotated[str | None, RefTo("chain")] = Field(
        default=None, description="with several chains: the chain the Safe is on"
    )


class ArgBounds(Strict):
    """What an argument may be, beyond one fixed value: a set of values, static limits, and a monotonic
    bound read on chain (the new value only ever tighter than the contract's current one)."""

    one_of: list[StrictBool | StrictInt | StrictStr] | None = Field(
        default=None, alias="in", min_length=1, description="the accepted values"
    )
    min: int | None = Field(default=None, description="lowest accepted value (integers)")
    max: int | None = Field(default=None, description="highest accepted value (integers)")
    tighter: Literal["lower", "higher"] | None = Field(
        default=None,
        description="which way is safer for this parameter: the value must not be above (lower) or "
        "below (higher) `current`, read on chain before every send",
    )
    current: str | None = Field(
        default=None,
        description="the view call giving the parameter's value now, e.g. "
        "'guardian.maxLeverage(args.marketId)' (args.NAME: an argument of the call being checked)",
    )
    output: str | int | None = Field(
        default=None, description="which output of `current` is the value, when it returns several"
    )

    @model_validator(mode="after")
    def _bound_needs_both(self) -> ArgBounds:
        if (self.tighter is None) != (self.current is None):
            raise ValueError("'tighter' and 'current' go together: which way is safer, and the value now")
        if self.output is not None and self.current is None:
            raise ValueError("'output' selects an output of 'current'")
        if self.one_of is None and self.min is None and self.max is None and self.tighter is None:
            raise ValueError("give 'in', 'min', 'max', or 'tighter' with 'current'")
        return self


ArgRule = StrictBool | StrictInt | StrictStr | ArgBounds
"""One argument's rule: ``any``; one value (``true``, ``3``, ``"0x…"``); or ``ArgBounds``."""


class PolicyAllow(Strict):
    """One call the responder may send: a contract's function, and what each of its arguments may be.

    Every argument must have a rule (``any`` included): a call is refused unless each value passes."""

    contract: Annotated[str, RefTo("contract")]
    function: str = Field(
        pattern=_SIGNATURE, description="a function name, or its signature when the ABI overloads it"
    )
    args: dict[str, ArgRule] = Field(
        default_factory=dict,
        description="argument name (or position '0', '1'... when unnamed) -> rule: any | a value | "
        "{in, min, max, tighter, current, output}",
    )


class RateLimit(Strict):
    count: int = Field(ge=1)
    per_seconds: float = Field(gt=0)


class PolicyConfig(Strict):
    allow: list[PolicyAllow] = Field(default_factory=list)
    loosening: list[str] = Field(
        default_factory=list, description="function-name patterns refused, on top of the built-ins"
    )
    max_gas: int = Field(default=1_000_000, ge=21_000)
    max_fee_gwei: float = Field(default=1_000.0, gt=0, description="cap on max fee per gas")
    rate_limit: RateLimit = Field(default_factory=lambda: RateLimit(count=10, per_seconds=3600))
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict, description="per 'playbook.action' id, overriding rate_limit"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_name_classification(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tightening" in data:
            raise ValueError(
                "'tightening' (function-name patterns) was replaced by argument rules: list each call "
                "under 'allow' with what each argument may be (docs/response.md, Policy)"
            )
        return data
