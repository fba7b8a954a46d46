"""An event monitor whose ``where`` reads the event's arguments alone is handed only those: the same
findings, and the same errors, as when it is handed every variable."""

from __future__ import annotations

import pytest
from test_abi_and_reads import CONTRACTS, TOKEN, TRANSFER  # type: ignore[import-not-found]
from test_engine import Balances, block  # type: ignore[import-not-found]

from breakglass.config.monitors import EventMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.base import BlockContext
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.filters import EventDetector
from breakglass.errors import DetectionError


def both_ways(where: str) -> tuple[EventDetector, EventDetector]:
    cfg = EventMonitor(id="moves", kind="event", contract="token", event="Transfer", where=where)
    fast, full = (
        EventDetector(cfg, TOKEN, EventAbi.of(TRANSFER)),
        EventDetector(cfg, TOKEN, EventAbi.of(TRANSFER)),
    )
    full._args_only = False  # every variable, as before the arguments-only path
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
    ["args.value > 10", "args.value % 2 == 0 || args.to == args.from", "size(args) == 3 && args.value >= 11"],
)
@pytest.mark.parametrize("value", [5, 10, 11, 12])
def test_an_arguments_only_expression_finds_what_the_full_variables_find(where: str, value: int) -> None:
    fast, full = both_ways(where)
    assert fast._args_only and not full._args_only
    found = fast.on_block(context(value))
    assert found == full.on_block(context(value))
    assert len(found) == (1 if value > 10 else 0) or "%" in where


def test_an_expression_reading_more_than_the_arguments_gets_every_variable() -> None:
    fast, _full = both_ways("args.value > 10 && tx.status == 1 && log.index == 0 && block.number == 7")
    assert not fast._args_only
    assert len(fast.on_block(context(11))) == 1


def test_an_arguments_only_expression_fails_as_it_did() -> None:
    fast, full = both_ways("args.nothing > 0")
    with pytest.raises(DetectionError) as quick:
        fast.on_block(context(11))
    with pytest.raises(DetectionError) as slow:
        full.on_block(context(11))
    assert str(quick.value) == str(slow.value)
