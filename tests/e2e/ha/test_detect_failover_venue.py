"""An attack on the reference venue while its active detector is SIGKILLed (issue 19): two ``breakglass
serve`` replicas with the shipped example configuration (PostgreSQL store, JetStream bus, NATS KV
lease), a block every half second, and the repeated-drain scenario played in real time. The active
replica is killed right after the attacker's first set-up step (the mixer funding it: taint the standby
has to read back from the saved detector state to flag the deployment that follows); the standby takes
the chain's lease, resumes at the block after the shared checkpoint, detects the attack and contains it
(the guardian's calls mined, each once), with no block missed."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.ha_detect import ACTIVE, STANDBY, Replica, active, services, wait

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.drills.benign import BenignConfig, BenignTraffic
from breakglass.drills.defense import PASSWORD_ENV, defended_config, write_keystore
from breakglass.drills.runner import DRILL_NODE_ARGS
from breakglass.drills.scenarios import SCENARIOS, Phase, ScenarioRun
from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(900)]

CHAIN_ID = 31337
BLOCK_TIME = 0.5
"""Each strike step waits for its receipt and one block more (30 flash loops): at anvil's own interval
mining (whole seconds only) the strike alone took 60 s."""


@contextlib.contextmanager
def interval_blocks(node: Anvil, seconds: float) -> Iterator[None]:
    """A block every ``seconds`` with or without transactions (anvil's ``evm_setIntervalMining`` takes
    whole seconds), until the block ends."""
    stop = threading.Event()

    def mine() -> None:
        while not stop.wait(seconds):
            node.rpc("evm_mine")

    node.rpc("evm_setAutomine", False)
    miner = threading.Thread(target=mine, name="interval-blocks", daemon=True)
    miner.start()
    try:
        yield
    finally:
        stop.set()
        miner.join(10)


def test_a_standby_taking_over_mid_attack_detects_and_contains_it(build: Build, tmp_path: Path) -> None:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    scenario = SCENARIOS["repeated-drain"]
    replicas: list[Replica] = []
    with (
        services(postgres, nats) as (store, prefix),
        Anvil(AnvilOptions(mode=BlockMode.AUTO, extra_args=DRILL_NODE_ARGS)) as node,
        contextlib.ExitStack() as stack,
    ):
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
        BenignTraffic(venue, BenignConfig(seed=7)).fund()
        deployer.manifest(node.url).write(tmp_path / "manifest.json")
        keystore, password = write_keystore(tmp_path, bytes(venue.key("guardian").key))
        path = defended_config(tmp_path, tmp_path / "manifest.json", keystore, ws_url=None)
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["store"] = {"url": store}
        config["bus"] = {"kind": "jetstream", "url": nats, "prefix": prefix}
        config["ha"] = {"lease": "nats", "ttl_seconds": 2}
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        stack.enter_context(interval_blocks(node, BLOCK_TIME))  # the chain goes on, whoever follows it
        replicas = [Replica(name, path, {PASSWORD_ENV: password}, tmp_path) for name in ("a", "b")]
        engine = create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            replicas[0].start()
            wait("the first replica active", lambda: bool(replicas[0].events(ACTIVE)), replicas)
            replicas[1].start()
            wait("the second replica standing by", lambda: bool(replicas[1].events(STANDBY)), replicas)
            first_block = w3.eth.block_number
            guardian = venue.key("guardian").address
            sent_before = w3.eth.get_transaction_count(guardian)
            run = ScenarioRun(scenario, venue, build, fast_forward=False, time_scale=0.02)
            run.fund_dirty_wallet()
            victim = None
            for phase, step in run.steps():
                run.execute(phase, step)
                if phase is Phase.SETUP and victim is None:  # the attacker's accounts are funded
                    victim = active(replicas)
                    assert victim is not None
                    victim.kill()
            assert victim is not None
            successor = next(r for r in replicas if r is not victim)
            run.finish()
            wait(  # containment: the guardian's calls mined
                "the guardian's containment",
                lambda: w3.eth.get_transaction_count(guardian) > sent_before,
                replicas,
                timeout=120,
            )
            time.sleep(5)  # the rest of the playbooks' calls, if any
            end = w3.eth.block_number
            wait("the checkpoint at the last block", lambda: _checkpoint(engine) >= end, replicas)
            assert successor.events(ACTIVE), "the standby took over"
            with engine.connect() as conn:
                numbers = {
                    int(n)
                    for (n,) in conn.execute(
                        text("SELECT number FROM chain_blocks WHERE chain_id = :c AND NOT orphaned"),
                        {"c": CHAIN_ID},
                    )
                }
                serious = conn.execute(text("SELECT monitor_id FROM alerts WHERE severity >= 3")).all()
            assert set(range(first_block, end + 1)) <= numbers  # no block missed across the kill
            assert serious, "the attack was detected"
            calls: Counter[str] = Counter()
            for number in range(first_block, w3.eth.block_number + 1):
                for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                    if str(tx["from"]).lower() == guardian.lower():  # type: ignore[index]
                        calls[tx["input"].to_0x_hex()] += 1  # type: ignore[index]
            assert calls and max(calls.values()) == 1, calls  # contained by the guardian, each call once
        finally:
            for replica in replicas:
                replica.stop()
            engine.dispose()


def _checkpoint(engine: object) -> int:
    from benchmarks.faults import checkpoint

    return checkpoint(engine, CHAIN_ID)
