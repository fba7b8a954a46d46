"""Follow-ups: the protocol's own actors' calls after each probe, in the same simulated bundle.

Some attack contracts do no harm by their own calls: they wait for the protocol to call them (a
keeper executing the order they created refunds its fee into their ``receive``, a liquidator's
callback). ``attack_simulation.follow_ups`` declares those actors' calls; ``FollowUps`` turns them
into ``ProbeCall`` s:

- without ``for_each``, one call after every probe (``{contract}`` is the probed contract);
- with ``for_each: contract.Event``, one call per such log naming the probed contract (an address
  argument equal to it) with ``{event.NAME}`` filled from the log: logs seen on chain in the blocks
  since its creation (``remember``), and logs the probe's own calls emitted (``from_logs``).

A follow-up that reverts (an order already executed) changes nothing; only the probe's own calls
decide whether a probe ran. ``compile_follow_ups`` checks the section against the ABIs, each problem
located at its key (``breakglass check``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode

from breakglass.config.attack import FollowUpConfig
from breakglass.config.refs import closest
from breakglass.config.yamlsource import PathKey
from breakglass.detect.abi import EventAbi, FunctionAbi, find_event
from breakglass.domain import Block, Log
from breakglass.errors import ConfigIssue
from breakglass.simulate.probes import ProbeCall

__all__ = ["MAX_REMEMBERED", "FollowUp", "FollowUps", "compile_follow_ups"]

MAX_REMEMBERED = 8
"""Follow-up calls remembered per contract from chain logs (the newest kept)."""

_TEMPLATE = re.compile(r"^\{(contract|event\.([A-Za-z_][A-Za-z0-9_]*))\}$")

Locate = Callable[[PathKey, str], ConfigIssue]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One compiled follow-up: who calls what, and, with ``event``, which logs it runs for."""

    id: str
    sender: str
    to: str
    function: FunctionAbi
    args: tuple[str | int | bool, ...]
    emitter: str | None = None
    event: EventAbi | None = None

    def call(self, contract: str, values: Mapping[str, Any] | None = None) -> ProbeCall | None:
        """The call for probed ``contract`` (and a ``for_each`` log's ``values``); None when an
        argument does not fit its type."""
        rendered: list[Any] = []
        for template, typ in zip(self.args, self.function.input_types, strict=True):
            value: Any = template
            if isinstance(template, str) and (m := _TEMPLATE.match(template)):
                value = contract if m.group(1) == "contract" else (values or {}).get(m.group(2))
            rendered.append(_coerce(value, typ))
        try:
            data = encode(list(self.function.input_types), rendered)
        except (TypeError, ValueError, OverflowError):
            return None
        return ProbeCall(self.sender, self.to, self.function.selector + data)

    def for_log(self, entry: Log, watched: Callable[[str], bool]) -> list[tuple[str, ProbeCall]]:
        """(contract, call) for each probed contract ``entry`` names, if it is this follow-up's event."""
        if self.event is None or entry.address.lower() != self.emitter or not entry.topics:
            return []
        if entry.topics[0] != self.event.topic0:
            return []
        values = self.event.decode(entry)
        if values is None:
            return []
        out: list[tuple[str, ProbeCall]] = []
        for value in values.values():
            if isinstance(value, str) and watched(value.lower()):
                call = self.call(value.lower(), values)
                if call is not None:
                    out.append((value.lower(), call))
        return out


def _coerce(value: Any, typ: str) -> Any:
    if isinstance(value, str) and typ.startswith(("uint", "int")) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if isinstance(value, str) and typ == "bool":
        return value.lower() == "true"
    return value


class FollowUps:
    """The configured follow-ups, and the calls each watched contract collected from chain logs."""

    def __init__(self, follow_ups: Sequence[FollowUp]) -> None:
        self.always = [f for f in follow_ups if f.event is None]
        self.per_log = [f for f in follow_ups if f.event is not None]
        self._remembered: dict[str, list[ProbeCall]] = {}

    def __bool__(self) -> bool:
        return bool(self.always or self.per_log)

    def remember(self, block: Block, watched: Callable[[str], bool]) -> None:
        """Keep the calls ``block``'s successful transactions' logs ask for, per contract they name."""
        if not self.per_log:
            return
        for tx in block.transactions:
            if tx.receipt is None or tx.receipt.status != 1:
                continue
            for contract, call in self.from_logs(contract=None, logs=tx.receipt.logs, watched=watched):
                calls = self._remembered.setdefault(contract, [])
                if call not in calls:
                    calls.append(call)
                    del calls[:-MAX_REMEMBERED]

    def from_logs(
        self, *, contract: str | None, logs: Iterable[Log], watched: Callable[[str], bool] | None = None
    ) -> list[tuple[str, ProbeCall]]:
        """The (contract, call) pairs ``logs`` ask for: naming ``contract``, or any ``watched`` one."""
        named = watched or (lambda address: address == contract)
        return [pair for entry in logs for f in self.per_log for pair in f.for_log(entry, named)]

    def calls(self, contract: str) -> list[ProbeCall]:
        """The follow-ups after each probe of ``contract``: the unconditional ones, then the remembered."""
        fixed = [c for f in self.always if (c := f.call(contract)) is not None]
        return [*fixed, *self._remembered.get(contract, ())]

    def forget(self, contract: str) -> None:
        self._remembered.pop(contract, None)


def compile_follow_ups(
    configs: Sequence[FollowUpConfig],
    contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]],
    locate: Locate,
    *,
    skip: Iterable[str] = (),
) -> tuple[list[FollowUp], list[ConfigIssue]]:
    """Each follow-up against ``contracts`` (name -> (address, ABI)); problems at their keys
    (``attack_simulation.follow_ups[i].KEY``). Contracts in ``skip`` (unreadable ABI) are not checked."""
    skipped = set(skip)
    out: list[FollowUp] = []
    issues: list[ConfigIssue] = []
    for i, cfg in enumerate(configs):
        at: PathKey = ("attack_simulation", "follow_ups", i)
        before = len(issues)
        if cfg.contract in skipped or cfg.contract not in contracts:
            continue  # unknown names are the reference checker's error; unreadable ABIs reported once
        address, abi = contracts[cfg.contract]
        functions = [e for e in abi if e.get("type") == "function"]
        matches = [e for e in functions if e.get("name") == cfg.function]
        if len(matches) > 1:
            matches = [e for e in matches if len(e.get("inputs", [])) == len(cfg.args)]
        function: FunctionAbi | None = None
        if not matches:
            known = sorted({str(e.get("name")) for e in functions})
            message = f"{cfg.contract} has no function {cfg.function!r} {closest(cfg.function, known)}"
            issues.append(locate((*at, "function"), message))
        elif len(matches) > 1:
            issues.append(locate((*at, "function"), f"function {cfg.function!r} is overloaded"))
        else:
            function = FunctionAbi.of(matches[0])
            if len(function.input_types) != len(cfg.args):
                message = (
                    f"{function.signature} takes {len(function.input_types)} arguments, "
                    f"args has {len(cfg.args)}"
                )
                issues.append(locate((*at, "args"), message))
        event: EventAbi | None = None
        emitter: str | None = None
        if cfg.for_each is not None:
            name, _, event_name = cfg.for_each.partition(".")
            if name not in contracts:
                message = f"{cfg.for_each!r}: {name!r} is no contract {closest(name, contracts)}"
                issues.append(locate((*at, "for_each"), message))
            elif name not in skipped:
                emitter_abi = contracts[name][1]
                event = find_event(emitter_abi, event_name)
                emitter = contracts[name][0].lower()
                if event is None:
                    known = sorted({str(e.get("name")) for e in emitter_abi if e.get("type") == "event"})
                    message = f"{name} has no event {event_name!r} {closest(event_name, known)}"
                    issues.append(locate((*at, "for_each"), message))
        for j, arg in enumerate(cfg.args):
            if not isinstance(arg, str) or not arg.startswith("{"):
                continue
            m = _TEMPLATE.match(arg)
            if m is None:
                message = f"{arg!r}: use '{{contract}}' or '{{event.NAME}}' (an argument of for_each's event)"
                issues.append(locate((*at, "args", j), message))
            elif m.group(2) is not None and cfg.for_each is None:
                issues.append(locate((*at, "args", j), f"{arg!r} needs for_each (the event it reads)"))
            elif m.group(2) is not None and event is not None and m.group(2) not in event.all_names:
                known = list(event.all_names)
                message = f"{event.name} has no argument {m.group(2)!r} {closest(m.group(2), known)}"
                issues.append(locate((*at, "args", j), message))
        if function is None or len(issues) > before:
            continue
        out.append(
            FollowUp(
                id=cfg.id,
                sender=cfg.sender.lower(),
                to=address.lower(),
                function=function,
                args=tuple(cfg.args),
                emitter=emitter,
                event=event,
            )
        )
    return out, issues
