"""The response policy: which calls the responder may send. Pure logic, default deny.

A call passes only if all hold, checked in this order (the first failing rule is reported):

1. ``loosening``: the function name matches no built-in or configured loosening pattern (never,
   whatever else the policy says);
2. ``allowlist``: the (contract, function) is listed under ``policy.allow``;
3. ``arguments``: every argument passes its rule: ``any``, one value (``setPoolPause(true)``), a set
   (``in``), static limits (``min``/``max``);
4. ``value``: 0;
5. ``bound``: an argument with ``tighter: lower|higher`` is not looser than ``current``, the
   parameter's value read on chain (``Policy.bounds`` lists the reads; the responder reads them before
   every send, ``playbook test`` too, and ``check_bound`` judges each answer);
6. ``gas``, ``fee``: the simulated gas and the max fee per gas are under the caps (at plan time);
7. ``rate``: the action's sliding window is not full.

Every argument of an allowed function must have a rule, and a boolean one must be pinned to a value:
a boolean argument is a switch, and ``any`` would let the responder switch a pause off. ``Policy.compile``
refuses such a policy, so a responder can never be configured to loosen, whatever the functions are
called. The rules are compiled against the ABIs once (``Policy.compile``); per call only comparisons
remain.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from breakglass.config.deployment import ContractRecord
from breakglass.config.playbooks import (
    BUILTIN_LOOSENING,
    ArgBounds,
    ArgRule,
    PolicyAllow,
    PolicyConfig,
    RateLimit,
)
from breakglass.config.refs import closest
from breakglass.config.yamlsource import PathKey
from breakglass.errors import ConfigError, ConfigIssue, PolicyViolation, ResponseError
from breakglass.respond.bounds import BoundRead
from breakglass.respond.calls import CallTemplate, ContractCall, coerce_arg, type_of

__all__ = ["ArgCheck", "CallRule", "Policy"]

Locate = Callable[[PathKey, str], ConfigIssue]
"""Turns (path in the configuration, message) into a located issue (``LoadedConfig.issue``)."""


@dataclass(frozen=True, slots=True)
class ArgCheck:
    """The rule of one argument of one allowed function, with values in the form calls carry them."""

    index: int
    name: str
    type: str
    values: tuple[Any, ...] | None = None
    low: int | None = None
    high: int | None = None
    tighter: str | None = None
    current: BoundRead | None = None

    def refusal(self, value: Any) -> str | None:
        """Why ``value`` is refused by the static part of this rule, or None."""
        if self.values is not None and value not in self.values:
            shown = self.values[0] if len(self.values) == 1 else list(self.values)
            return f"argument {self.name!r} is {_show(value)}, the policy allows {_show(shown)}"
        if self.low is not None and value < self.low:
            return f"argument {self.name!r} is {value}, below the policy's min {self.low}"
        if self.high is not None and value > self.high:
            return f"argument {self.name!r} is {value}, above the policy's max {self.high}"
        return None

    def bound_refusal(self, value: int, current: int) -> str | None:
        """Why ``value`` is looser than ``current`` (the parameter's value on chain), or None."""
        if self.tighter == "lower" and value > current:
            return f"argument {self.name!r} is {value}, above its current value {current}: that loosens it"
        if self.tighter == "higher" and value < current:
            return f"argument {self.name!r} is {value}, below its current value {current}: that loosens it"
        return None


@dataclass(frozen=True, slots=True)
class CallRule:
    contract: str
    signature: str
    checks: tuple[ArgCheck, ...]

    @property
    def bounds(self) -> tuple[ArgCheck, ...]:
        return tuple(c for c in self.checks if c.current is not None)


@dataclass(slots=True)
class _Limits:
    loosening: tuple[str, ...]
    max_gas: int
    max_fee_wei: int
    rate: RateLimit
    rates: dict[str, RateLimit] = field(default_factory=dict)


def _matches(name: str, patterns: Iterable[str]) -> str | None:
    """The first pattern matching ``name``; case-insensitive so ``Unpause`` cannot slip through."""
    lowered = name.lower()
    return next((p for p in patterns if fnmatch.fnmatchcase(lowered, p.lower())), None)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


class Policy:
    """Checks calls against the compiled policy; keeps the per-action rate windows in memory."""

    def __init__(
        self, config: PolicyConfig, clock: Callable[[], float], rules: Mapping[tuple[str, str], CallRule]
    ) -> None:
        """``rules``: (contract, signature) -> rule, from ``Policy.compile``."""
        self._rules = dict(rules)
        self._limits = _Limits(
            loosening=(*BUILTIN_LOOSENING, *config.loosening),
            max_gas=config.max_gas,
            max_fee_wei=int(config.max_fee_gwei * 10**9),
            rate=config.rate_limit,
            rates=dict(config.rate_limits),
        )
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    @classmethod
    def compile(
        cls,
        config: PolicyConfig,
        contracts: Mapping[str, ContractRecord],
        clock: Callable[[], float],
        *,
        locate: Locate | None = None,
        issues: list[ConfigIssue] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> Policy:
        """Check every ``policy.allow`` entry against its contract's ABI.

        Problems are appended to ``issues`` when given (``breakglass check``), else raised together as
        one ``ConfigError``. Entries naming a contract in ``skip`` (whose ABI is unknown; reported
        elsewhere) are left out."""
        where = locate or (lambda path, message: ConfigIssue("", None, ".".join(map(str, path)), message))
        found: list[ConfigIssue] = []
        rules: dict[tuple[str, str], CallRule] = {}
        for i, allow in enumerate(config.allow):
            at: PathKey = ("policy", "allow", i)
            if allow.contract in skip:
                continue
            record = contracts.get(allow.contract)
            if record is None:
                found.append(
                    where(
                        (*at, "contract"),
                        f"unknown contract {allow.contract!r} {closest(allow.contract, contracts)}",
                    )
                )
                continue
            try:
                rule = _compile_allow(allow, record, contracts, at, where, found)
            except ResponseError as exc:
                found.append(where((*at, "function"), str(exc)))
                continue
            if rule is None:
                continue
            pattern = _matches(rule.signature.split("(")[0], (*BUILTIN_LOOSENING, *config.loosening))
            if pattern is not None:
                message = (f"{allow.contract}.{rule.signature} matches loosening pattern {pattern!r}: "
                           "the responder never sends it, whatever the allow list says")  # fmt: skip
                found.append(where((*at, "function"), message))
            if (allow.contract, rule.signature) in rules:
                found.append(where((*at, "function"), f"{allow.contract}.{rule.signature} is allowed twice"))
            rules[(allow.contract, rule.signature)] = rule
        if issues is not None:
            issues += found
        elif found:
            raise ConfigError(found)
        return cls(config, clock, rules)

    @property
    def max_gas(self) -> int:
        return self._limits.max_gas

    @property
    def max_fee_wei(self) -> int:
        return self._limits.max_fee_wei

    def loosening_pattern(self, function: str) -> str | None:
        """The loosening pattern ``function`` matches (the responder never sends it), or None."""
        return _matches(function, self._limits.loosening)

    def rule_for(self, contract: str, signature: str) -> CallRule | None:
        return self._rules.get((contract, signature))

    def check_call(self, call: ContractCall) -> CallRule:
        """Raise ``PolicyViolation`` unless the static rules allow ``call``; return its rule (whose
        ``bounds`` the caller still reads on chain and judges with ``check_bound``)."""
        target = f"{call.contract}.{call.function}"
        pattern = _matches(call.function, self._limits.loosening)
        if pattern is not None:
            raise PolicyViolation(
                "loosening",
                f"{target} matches loosening pattern {pattern!r}: the responder never unpauses or loosens",
            )
        rule = self._rules.get((call.contract, call.signature))
        if rule is None:
            raise PolicyViolation("allowlist", f"{call.contract}.{call.signature} is not in policy.allow")
        for check in rule.checks:
            reason = check.refusal(call.args[check.index])
            if reason is not None:
                raise PolicyViolation("arguments", f"{call.target}: {reason}")
        if call.value != 0:
            raise PolicyViolation("value", f"{target} would send {call.value} wei; value must be 0")
        return rule

    def check_static(self, template: CallTemplate) -> str | None:
        """Why a playbook's call would always be refused, judging its literal arguments (templated ones
        are judged per finding), or None. For ``breakglass check``."""
        pattern = _matches(template.function, self._limits.loosening)
        if pattern is not None:
            return f"{template.contract}.{template.function} matches loosening pattern {pattern!r}"
        rule = self._rules.get((template.contract, template.signature))
        if rule is None:
            return f"{template.contract}.{template.signature} is not in policy.allow"
        for check in rule.checks:
            arg = template.args[check.index]
            if isinstance(arg, str) and "{" in arg:
                continue
            reason = check.refusal(coerce_arg(check.type, arg, check.name))
            if reason is not None:
                return reason
        return None

    def check_bound(self, call: ContractCall, check: ArgCheck, current: int) -> None:
        """Raise ``PolicyViolation`` (rule ``bound``) if ``call`` would loosen ``check``'s parameter."""
        reason = check.bound_refusal(call.args[check.index], current)
        if reason is not None:
            raise PolicyViolation(
                "bound", f"{call.target}: {reason} (read {check.current.text if check.current else ''})"
            )

    def check_costs(self, target: str, gas: int, max_fee_per_gas: int) -> None:
        if gas > self._limits.max_gas:
            raise PolicyViolation(
                "gas", f"{target} needs {gas} gas, above policy.max_gas {self._limits.max_gas}"
            )
        if max_fee_per_gas > self._limits.max_fee_wei:
            raise PolicyViolation(
                "fee", f"{target}: max fee {max_fee_per_gas} wei/gas is above policy.max_fee_gwei"
            )

    def forget_rates(self) -> None:
        """Empty every rate window (before seeding them again from the ledger: a replica taking over)."""
        self._sent.clear()

    def seed(self, action: str, ages: list[float]) -> None:
        """Count uses of ``action`` made ``ages`` seconds ago (from the ledger, after a restart)."""
        now = self._clock()
        window = self._sent.setdefault(action, deque())
        window.extend(sorted(now - age for age in ages if age >= 0))

    def take_rate(self, action: str) -> None:
        """Count one use of ``action`` (``playbook.action``), or refuse if its window is full."""
        limit = self._limits.rates.get(action, self._limits.rate)
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


def _compile_allow(
    allow: PolicyAllow,
    record: ContractRecord,
    contracts: Mapping[str, ContractRecord],
    at: PathKey,
    where: Locate,
    found: list[ConfigIssue],
) -> CallRule | None:
    entry = _function_entry(allow, record)
    inputs = list(entry.get("inputs", []))
    params = [(str(p.get("name") or i), type_of(p)) for i, p in enumerate(inputs)]
    signature = f"{entry['name']}({','.join(t for _n, t in params)})"
    if entry.get("stateMutability") in ("view", "pure"):
        raise ResponseError(
            f"{allow.contract}.{signature} is a {entry['stateMutability']} function: it changes nothing"
        )
    names = [n for n, _t in params]
    for name in allow.args:
        if name not in names:
            message = f"{allow.contract}.{signature} has no argument {name!r} {closest(name, names)}"
            found.append(where((*at, "args", name), message))
    checks: list[ArgCheck] = []
    ok = True
    for index, (name, kind) in enumerate(params):
        if name not in allow.args:
            found.append(where((*at, "args"), _missing_rule(allow.contract, signature, name, kind)))
            ok = False
            continue
        try:
            check = _arg_check(allow.args[name], index, name, kind, contracts, params)
        except ResponseError as exc:
            found.append(where((*at, "args", name), str(exc)))
            ok = False
            continue
        if check is not None:
            checks.append(check)
    return CallRule(allow.contract, signature, tuple(checks)) if ok else None


def _function_entry(allow: PolicyAllow, record: ContractRecord) -> Mapping[str, Any]:
    functions = [e for e in record.abi if e.get("type") == "function"]
    if "(" in allow.function:
        wanted = allow.function.replace(" ", "")
        for entry in functions:
            if f"{entry['name']}({','.join(type_of(i) for i in entry.get('inputs', []))})" == wanted:
                return entry
        known = sorted(f"{e['name']}({','.join(type_of(i) for i in e.get('inputs', []))})" for e in functions)
        raise ResponseError(f"{allow.contract} has no function {wanted} {closest(wanted, known)}")
    matches = [e for e in functions if e.get("name") == allow.function]
    if not matches:
        known = sorted({str(e.get("name")) for e in functions})
        raise ResponseError(
            f"{allow.contract} has no function {allow.function!r} {closest(allow.function, known)}"
        )
    if len(matches) > 1:
        shown = ", ".join(
            f"{e['name']}({','.join(type_of(i) for i in e.get('inputs', []))})" for e in matches
        )
        raise ResponseError(f"{allow.contract}.{allow.function} is overloaded: write its signature ({shown})")
    return matches[0]


def _missing_rule(contract: str, signature: str, name: str, kind: str) -> str:
    if kind == "bool":
        hint = "true or false (a boolean is a switch: pin it)"
    elif kind.startswith(("uint", "int")):
        hint = "a value, in/min/max, tighter+current for a limit, or any for an index"
    else:
        hint = "a value, a list (in), or any"
    return f"{contract}.{signature}: argument {name!r} ({kind}) needs a rule: {hint}"


def _arg_check(
    rule: ArgRule,
    index: int,
    name: str,
    kind: str,
    contracts: Mapping[str, ContractRecord],
    params: list[tuple[str, str]],
) -> ArgCheck | None:
    integer = kind.startswith(("uint", "int"))
    if rule == "any" and not isinstance(rule, bool):
        if kind == "bool":
            raise ResponseError(
                f"argument {name!r} is a bool: 'any' would let the responder switch it both ways; "
                "pin it to true or false"
            )
        return None
    if not isinstance(rule, ArgBounds):
        return ArgCheck(index, name, kind, values=(_value(kind, rule, name, contracts),))
    values = None
    if rule.one_of is not None:
        values = tuple(_value(kind, v, name, contracts) for v in rule.one_of)
    if (rule.min is not None or rule.max is not None or rule.tighter is not None) and not integer:
        raise ResponseError(f"argument {name!r} is {kind}: min, max and tighter apply to integers")
    if kind == "bool" and values is not None and len(set(values)) > 1:
        raise ResponseError(
            f"argument {name!r} is a bool: allowing both values lets the responder switch it both ways"
        )
    current = None
    if rule.current is not None:
        current = BoundRead.parse(rule.current, rule.output, contracts, params)
    return ArgCheck(index, name, kind, values, rule.min, rule.max, rule.tighter, current)


def _value(kind: str, value: bool | int | str, name: str, contracts: Mapping[str, ContractRecord]) -> Any:
    if kind == "address" and isinstance(value, str) and value in contracts:
        value = contracts[value].address
    return coerce_arg(kind, value, f"argument {name!r}")
