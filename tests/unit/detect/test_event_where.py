"""An event monitor whose ``where`` reads the event's arguments alone is handed only those, and one
that compares one argument with an integer is decided on the decoded value (``Expression.decide``):
the same findings, and the same errors, as when it is handed every variable."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_abi_and_reads import CONTRACTS, TOKEN, TRANSFER  # type: ignore[import-not-found]
from test_engine import Balances, block  # type: ignore[import-not-found]

from breakglass.config.monitors import EventMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.base import BlockContext
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.expr import Expression, to_cel
from breakglass.detect.filters import EventDetector
from breakglass.errors import DetectionError


def both_ways(where: str) -> tuple[EventDetector, EventDetector]:
    cfg = EventMonitor(id="moves", kind="event", contract="token", event="Transfer", where=where)
    fast, full = (
        EventDetector(cfg, TOKEN, EventAbi.of(TRANSFER)),
        EventDetector(cfg, TOKEN, EventAbi.of(TRANSFER)),
    )
    full._args_only = False  # every variable, as before the arguments-only path
    assert full.where is not None
    full.where._test = None  # and no decision on the decoded value
    return fast, full


def context(value: int) -> BlockContext:
    wanting, _full = both_ways("true")
    engine = DetectionEngine([wanting], chain_id=1, contracts=CONTRACTS, executor=Balances(0))
    mined = block(7, value)
    logs = engine._decode_logs(mined)
    assert len(logs) == 1
    return BlockContext(1, mined, {}, logs, engine.addresses, observed_at_ms=5.0)


@pytest.mark.parametrize(
    "where",
    [
        "args.value > 10",
        "args.value >= 11",
        "args.value != 12",
        "args.value == 0x0c",
        "args.value < 1.1e1",
        "11 <= args.value",
        "args.value % 2 == 0 || args.to == args.from",
        "size(args) == 3 && args.value >= 11",
    ],
)
@pytest.mark.parametrize("value", [5, 10, 11, 12])
def test_an_arguments_only_expression_finds_what_the_full_variables_find(where: str, value: int) -> None:
    fast, full = both_ways(where)
    assert fast._args_only and not full._args_only
    decided = (
        "args.value > 10",
        "args.value >= 11",
        "args.value != 12",
        "args.value == 0x0c",
        "args.value < 1.1e1",
    )
    assert fast.where is not None and (fast.where.decide({"value": value}) is not None) == (where in decided)


def test_an_expression_reading_more_than_the_arguments_gets_every_variable() -> None:
    fast, _full = both_ways("args.value > 10 && tx.status == 1 && log.index == 0 && block.number == 7")
    assert not fast._args_only
    assert len(fast.on_block(context(11))) == 1


@pytest.mark.parametrize("where", ["args.nothing > 0", "args.to > 0"])  # no such key; an address
def test_an_arguments_only_expression_fails_as_it_did(where: str) -> None:
    fast, full = both_ways(where)
    with pytest.raises(DetectionError) as quick:
        fast.on_block(context(11))
    with pytest.raises(DetectionError) as slow:
        full.on_block(context(11))
    assert str(quick.value) == str(slow.value)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(st.integers(min_value=-(2**256), max_value=2**256), st.booleans(), st.text(max_size=3)),
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    literal=st.integers(min_value=0, max_value=2**256),
)
def test_a_decision_on_the_decoded_value_is_the_expression_s_verdict(
    value: Any, op: str, literal: int
) -> None:
    expression = Expression(f"args.amount {op} {literal}", "m")
    decided = expression.decide({"amount": value})
    try:
        verdict: bool | None = expression.holds({"args": to_cel({"amount": value})})
    except DetectionError:
        verdict = None
    if type(value) is int:
        assert decided is verdict is not None
    else:
        assert decided is None  # the general path decides (or fails) as before
