"""Monitors checked offline (``breakglass check``): everything start-up builds, then each expression tried.

Start-up (``build.build_detectors``) resolves every contract, event and view function against the ABIs
and compiles every expression. Some mistakes survive that and would fail on every matching block: a
field the event does not have (``args.asset`` where the event's field is ``reserve``), an output the
view call does not return, a comparison of an address with a number. So each expression is also
evaluated once on sample values shaped exactly as the chain's will be (each ABI type given a value,
encoded and decoded by the same code as at run time), and each ``name.field`` path it reads is walked
through those values, so an unknown field is named with the fields that exist ("did you mean").

Every problem is located (file:line of the monitor's key) and collected; a monitor referring to a
contract whose ABI could not be read is skipped (that is one error, reported where it is).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eth_abi.abi import encode

from breakglass.config import LoadedConfig
from breakglass.config.monitors import (
    CallMonitor,
    EventMonitor,
    GovernanceMonitor,
    InvariantMonitor,
)
from breakglass.config.refs import closest
from breakglass.config.yamlsource import PathKey
from breakglass.detect.abi import EventAbi, FunctionAbi
from breakglass.detect.base import Detector, tx_vars
from breakglass.detect.build import build_one, contracts_of
from breakglass.detect.expr import Expression, to_cel
from breakglass.detect.filters import CallDetector, EventDetector, TransactionDetector
from breakglass.detect.governance import SetUp
from breakglass.detect.invariants import Invariant
from breakglass.detect.operators import EvalError, kind_of
from breakglass.detect.syntax import compile_expression
from breakglass.domain import Address, Hash32, Receipt, Tx
from breakglass.errors import ConfigIssue, DetectionError

__all__ = ["check_monitors", "monitor_warnings", "sample_value"]

SAMPLE_ADDRESS = "0x" + "11" * 20


def _split_tuple(typ: str) -> list[str]:
    inner, depth, parts, start = typ[1:-1], 0, [], 0
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    if inner:
        parts.append(inner[start:])
    return parts


def sample_value(typ: str) -> Any:
    """A value of ABI type ``typ`` as eth-abi takes it (one element per dynamic array)."""
    if typ.endswith("]"):
        base, size = typ[: typ.rindex("[")], typ[typ.rindex("[") + 1 : -1]
        return [sample_value(base)] * (int(size) if size else 1)
    if typ.startswith("("):
        return tuple(sample_value(t) for t in _split_tuple(typ))
    if typ.startswith(("uint", "int")):
        return 1
    if typ == "address":
        return SAMPLE_ADDRESS
    if typ == "bool":
        return False
    if typ == "string":
        return "x"
    if typ == "bytes":
        return b"\x01"
    if typ.startswith("bytes"):
        return b"\x01" * int(typ[5:])
    return 1


def _outputs(function: FunctionAbi) -> Any:
    """What ``function`` returns, decoded by the run-time decoder."""
    values = [sample_value(t) for t in function.output_types]
    return function.decode_output(encode(list(function.output_types), values))


def _event_args(event: EventAbi) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typ in event.indexed:  # dynamic indexed values are their topic: a 32-byte hash
        dynamic = typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("(")
        out[name] = b"\x00" * 32 if dynamic else sample_value(typ)
    for name, typ in event.data:
        out[name] = sample_value(typ)
    return {name: out[name] for name in event.all_names}


def _tx() -> dict[str, Any]:
    digest, account = Hash32("0x" + "00" * 32), Address(SAMPLE_ADDRESS)
    receipt = Receipt(digest, 1, 21_000, 1, None, ())
    tx = Tx(digest, account, account, 1, b"\x01" * 4, 1, 21_000, 1, 1, None, 0, receipt)
    return tx_vars(tx)


_STRING = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")
_PATH = re.compile(r"(?<![\w.])([A-Za-z_]\w*)((?:\s*\.\s*[A-Za-z_]\w*)+)(\s*\()?")
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def field_problems(source: str, variables: Mapping[str, Any]) -> list[str]:
    """Each ``name.field...`` path of ``source`` walked through ``variables``: the fields that are not
    there, with the ones that are."""
    text = _STRING.sub("''", source)
    bound = set(_BOUND.findall(text))
    problems: list[str] = []
    for match in _PATH.finditer(text):
        root = match[1]
        if root in bound or root not in variables:
            continue
        fields = [f.strip() for f in match[2].split(".")[1:]]
        if match[3]:  # the last name is a method (``x.size()``), not a field
            fields = fields[:-1]
        value, walked = variables[root], root
        for name in fields:
            if not isinstance(value, Mapping):
                break
            if name not in value:
                problems.append(f"{walked} has no field {name!r} {closest(name, list(value))}")
                break
            value, walked = value[name], f"{walked}.{name}"
    return problems


def _try(expression: Expression, variables: Mapping[str, Any]) -> list[str]:
    """Problems of ``expression`` on sample values: unknown fields first, then a failed evaluation.
    Evaluated strictly: a sample that makes one side of ``&&`` false must not hide the other's error."""
    used = {name: value for name, value in variables.items() if name in expression.variables}
    problems = field_problems(expression.source, used)
    if problems:
        return problems
    try:
        result = compile_expression(expression.source, strict=True).run(used)
    except EvalError as exc:
        if "index out of bounds" not in str(exc):  # samples have one element per list
            return [str(exc)]
        return []
    if not isinstance(result, bool):
        return [f"gives {kind_of(result)}, not true/false"]
    return []


def _sample_variables(detector: Detector | Invariant, loaded: LoadedConfig) -> dict[str, Any]:
    contracts = {name: record.address.lower() for name, record in loaded.contracts.items()}
    common: dict[str, Any] = {
        "block": {"number": 1, "timestamp": 1, "hash": "0x" + "00" * 32},
        "contracts": contracts,
        "tx": _tx(),
    }
    if isinstance(detector, EventDetector):
        log = {"address": detector.address, "index": 0, "contract": detector.contract}
        return {k: to_cel(v) for k, v in {**common, "args": _event_args(detector.event), "log": log}.items()}
    if isinstance(detector, CallDetector):
        args = {n: sample_value(t) for n, t in zip(detector.function.input_names,
                                                    detector.function.input_types, strict=True)}  # fmt: skip
        return {k: to_cel(v) for k, v in {**common, "args": args}.items()}
    if isinstance(detector, TransactionDetector):
        logs = _sample_logs(loaded) if "logs" in detector.where.variables else []
        return {k: to_cel(v) for k, v in {**common, "logs": logs}.items()}
    if isinstance(detector, Invariant):
        current = {name: to_cel(_outputs(call.function)) for name, call in detector.calls.items()}
        return {**current, "block": to_cel(common["block"]), "prev": current}
    return {}


def _sample_logs(loaded: LoadedConfig) -> list[dict[str, Any]]:
    """One log of every event of every configured contract, as a transaction monitor's ``logs`` holds
    them: a macro over them evaluates its body on each event's shape (``w.args.assets`` of a Withdraw)."""
    out: list[dict[str, Any]] = []
    for name, record in loaded.contracts.items():
        for entry in record.abi:
            if entry.get("type") == "event" and not entry.get("anonymous"):
                event = EventAbi.of(entry)
                out.append({"contract": name, "event": event.name, "args": _event_args(event),
                            "address": record.address.lower(), "index": len(out)})  # fmt: skip
    return out


def _expression(detector: Detector | Invariant) -> tuple[Expression | None, str]:
    if isinstance(detector, Invariant):
        return detector.expect, "expect"
    return getattr(detector, "where", None), "where"


def _contract_names(monitor: Any) -> set[str]:
    """Every contract name a monitor refers to, its view calls' included."""
    names: set[str] = set()
    for key in ("contract", "token"):
        value = getattr(monitor, key, None)
        if isinstance(value, str):
            names.add(value)
    for key in ("to", "holders", "contracts", "allow_contracts", "protocol", "mixer_contracts"):
        value = getattr(monitor, key, None)
        if isinstance(value, list):
            names.update(str(v) for v in value)
    if isinstance(monitor, GovernanceMonitor):
        names.update(allowed.contract for allowed in monitor.scheduled_allow or [])
        names.update(role.contract for role in monitor.allow_roles)
    if isinstance(monitor, InvariantMonitor):
        for text in monitor.calls.values():
            head, _, args = text.partition("(")
            names.add(head.split(".")[0].strip())
            names.update(
                a.strip() for a in args.rstrip(") ").split(",") if re.fullmatch(r"\s*[A-Za-z_][\w-]*\s*", a)
            )
    return names - {"true", "false"}


def _locate(monitor: Any, message: str) -> tuple[str, ...]:
    """The monitor key a build error is about, for its line."""
    if isinstance(monitor, EventMonitor) and "no event" in message:
        return ("event",)
    if isinstance(monitor, CallMonitor) and "no function" in message:
        return ("function",)
    if isinstance(monitor, InvariantMonitor):
        for name, text in monitor.calls.items():
            if repr(text) in message or f"call {text!r}" in message:
                return ("calls", name)
        if "expect" in message or "unknown name" in message or "invalid CEL" in message:
            return ("expect",)
    if "unknown name" in message or "invalid CEL" in message:
        return ("where",)
    return ()


def _governance(monitor: GovernanceMonitor, loaded: LoadedConfig) -> list[tuple[PathKey, str]]:
    """Events named by ``parameter_events``/``pause_events`` that no watched contract has, and
    ``scheduled_allow`` functions their contract does not have."""

    def names(contract: str, kind: str) -> list[str]:
        record = loaded.contracts.get(contract)
        return sorted({str(e["name"]) for e in (record.abi if record else []) if e.get("type") == kind})

    events = sorted({event for contract in monitor.contracts for event in names(contract, "event")})
    problems: list[tuple[PathKey, str]] = []
    for key in ("parameter_events", "pause_events"):
        for j, event in enumerate(getattr(monitor, key) or []):
            if event not in events and "(" not in event:
                message = f"no contract of {monitor.contracts} has event {event!r} {closest(event, events)}"
                problems.append(((key, j), message))
    for j, allowed in enumerate(monitor.scheduled_allow or []):
        functions = names(allowed.contract, "function")
        if (
            allowed.function != "*"
            and allowed.contract not in loaded.unresolved
            and allowed.function not in functions
        ):
            hint = closest(allowed.function, functions)
            message = f"{allowed.contract} has no function {allowed.function!r} {hint}"
            problems.append((("scheduled_allow", j, "function"), message))
    for j, role in enumerate(monitor.allow_roles):
        functions = names(role.contract, "function")
        if "RoleGranted" not in names(role.contract, "event"):
            message = f"{role.contract} has no RoleGranted event: it is not an AccessControl contract"
            problems.append((("allow_roles", j, "contract"), message))
        elif not role.role.startswith("0x") and role.role not in functions:
            # OpenZeppelin's convention: every role is a public constant named like it
            roles = [f for f in functions if f.endswith("_ROLE")]
            message = f"{role.contract} has no role {role.role!r} {closest(role.role, roles)}"
            problems.append((("allow_roles", j, "role"), message))
    return problems


def check_monitors(loaded: LoadedConfig, *, chain_id: int | None = None) -> list[ConfigIssue]:
    """Every problem of every enabled monitor of ``loaded``, located, without touching a chain."""
    contracts = contracts_of(loaded)
    usable = {name for name in contracts if name not in loaded.unresolved}
    deployment = SetUp.of(loaded.deployment)
    issues: list[ConfigIssue] = []
    for i, monitor in enumerate(loaded.settings.monitors):
        if not monitor.enabled:
            continue
        at: PathKey = ("monitors", i)
        names = _contract_names(monitor)
        if names & loaded.unresolved or (not loaded.complete and not names <= usable):
            continue  # its contract's ABI is unknown: that is the one error, reported at its cause
        try:
            detector = build_one(monitor, contracts, loaded.path.parent, chain_id or 0, deployment)
        except DetectionError as exc:
            message = str(exc).split(": ", 1)[-1]
            issues.append(loaded.issue((*at, *_locate(monitor, message)), message))
            continue
        if isinstance(monitor, GovernanceMonitor):
            for where, message in _governance(monitor, loaded):
                issues.append(loaded.issue((*at, *where), message))
        expression, key = _expression(detector)
        if expression is not None:
            for message in _try(expression, _sample_variables(detector, loaded)):
                issues.append(loaded.issue((*at, key), message))
    return issues


def monitor_warnings(loaded: LoadedConfig) -> list[ConfigIssue]:
    """Legal but risky monitor settings: a governance monitor watching a TimelockController whose
    scheduled calls are judged only by who scheduled them (a compromised proposer is silent)."""
    out: list[ConfigIssue] = []
    for i, monitor in enumerate(loaded.settings.monitors):
        if not (isinstance(monitor, GovernanceMonitor) and monitor.enabled and "timelock" in monitor.actions):
            continue
        if monitor.scheduled_allow is not None:
            continue
        timelocks = [
            name
            for name in monitor.contracts
            if name in loaded.contracts
            and any(
                e.get("type") == "event" and e.get("name") == "CallScheduled"
                for e in loaded.contracts[name].abi
            )
        ]
        if timelocks:
            message = (
                f"{', '.join(timelocks)} schedules calls judged only by who scheduled them: a compromised "
                "proposer is silent until the call executes; list what governance may schedule in "
                "scheduled_allow (docs/detection.md)"
            )
            out.append(loaded.issue(("monitors", i, "contracts"), message))
    return out
