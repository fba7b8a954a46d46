"""The example playbooks against the real reference venue: targeted containment, last resort, lapse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from web3 import Web3

from breakglass.bus import InProcessBus
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import deploy_venue
from breakglass.devnet.venue.handle import Venue
from breakglass.domain import Finding, Severity
from breakglass.logs import Redactor
from breakglass.respond import ActionStep, Responder, build_responder
from breakglass.store.migrate import upgrade_async

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = Path(__file__).parents[3] / "examples" / "playbooks.venue.yaml"
ATTACKER = Web3.to_checksum_address("0x000000000000000000000000000000000000a77a")


def responder_for(anvil: Anvil, build: Build, folder: Path) -> tuple[Venue, Responder]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, build)
    venue = deploy_venue(deployer)
    deployer.manifest(anvil.url).write(folder / "manifest.json")
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["deployment"] = "manifest.json"
    config["store"] = {"url": f"sqlite:///{folder / 'bg.db'}"}
    (folder / "breakglass.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    key = "0x" + bytes(venue.key("guardian").key).hex()
    responder = build_responder(load_config(folder / "breakglass.yaml"), InProcessBus(), Redactor(),
                                environ={"BREAKGLASS_GUARDIAN_KEY": key})  # fmt: skip
    return venue, responder


def finding(monitor: str, **labels: str) -> Finding:
    return Finding(
        monitor_id=monitor,
        severity=Severity.CRITICAL,
        chain_id=31337,
        block_number=1,
        title=monitor,
        tx_hash="0x" + "11" * 32,
        labels=labels,
        evidence={"attacker": ATTACKER},
    )  # type: ignore[arg-type]


async def test_the_example_playbooks_contain_a_market_then_pause_the_venue_as_a_last_resort(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    venue, responder = responder_for(anvil, build, tmp_path)
    await upgrade_async(f"sqlite:///{tmp_path / 'bg.db'}")
    guard = venue.guard.functions
    try:
        events = await responder.handle(finding("oracle-deviation-btc", market="1"))
        assert [e.step for e in events] == [ActionStep.SUBMITTED] * 3 + [
            ActionStep.NOTIFY,
            ActionStep.ESCALATE,
        ]
        for event in events[:3]:
            assert (await responder.relayer.wait(event.key)).step is ActionStep.CONFIRMED  # type: ignore[union-attr]
        assert guard.blocked(ATTACKER).call() and guard.isMarketPaused(1).call()
        assert guard.areExitsHalted(1).call() and not guard.isVenuePaused().call()  # targeted only
        assert not guard.isMarketPaused(0).call()  # the other markets keep trading
        [task] = responder.ratifier.open_tasks  # type: ignore[union-attr]
        assert task.check["view"] == "guardian.marketPause(1)"

        [pause, *_] = await responder.handle(finding("vault-books-match-balance"))
        await responder.relayer.wait(pause.key)  # type: ignore[union-attr]
        assert guard.isVenuePaused().call()
        again = await responder.handle(finding("vault-books-match-balance", other="x"))  # still once
        assert again[0].step is ActionStep.DUPLICATE

        # Governance lets both pauses lapse: the venue resumes by itself and breakglass records it.
        anvil.rpc("evm_increaseTime", hex(7201))
        anvil.mine()
        closed = await responder.poll()
        assert sorted(e.step for e in closed) == [ActionStep.LAPSED, ActionStep.LAPSED]
        assert not guard.isVenuePaused().call() and not guard.isMarketPaused(1).call()
    finally:
        await responder.close()


async def test_the_example_playbooks_take_the_least_mode_that_stops_each_threat(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    venue, responder = responder_for(anvil, build, tmp_path)
    await upgrade_async(f"sqlite:///{tmp_path / 'bg.db'}")
    guard = venue.guard.functions
    try:
        # exposure past the thin pool's depth: that market reduce-only, nothing else
        events = await responder.handle(finding("thin-open-interest", market="2"))
        await responder.relayer.wait(events[0].key)  # type: ignore[union-attr]
        assert guard.isReduceOnly(2).call() and not guard.isMarketPaused(2).call()
        assert not guard.isReduceOnly(0).call() and not guard.areExitsHalted(2).call()
        # value extracted from the LP vault: venue reduce-only and a withdrawal limit, no pause
        events = await responder.handle(finding("vault-round-trip"))
        sent = [e for e in events if e.step is ActionStep.SUBMITTED]
        assert [e.action for e in sent] == ["block-attacker", "reduce-only-venue", "limit-withdrawals"]
        for event in sent:
            assert (await responder.relayer.wait(event.key)).step is ActionStep.CONFIRMED  # type: ignore[union-attr]
        assert guard.isReduceOnly(0).call() and guard.withdrawalLimit().call() == 1_000_000 * 10**6
        assert not guard.isVenuePaused().call() and not guard.isMarketPaused(0).call()
    finally:
        await responder.close()
