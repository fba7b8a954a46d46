"""Detect replicas of a configuration with two chains (issue 19): ``examples/two-chains.yaml`` served by
two ``breakglass serve`` replicas on PostgreSQL, JetStream and NATS KV leases, two anvil nodes making a
block every 0.5 s. Each chain has its own lease (``detect:31337``, ``detect:31338``); the replica that
started first leads both and is SIGKILLed; the other takes both chains over, each from its own
checkpoint with no block missed, and contains an exploit on one chain while the other is untouched."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import create_engine, text
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.faults import checkpoint
from benchmarks.ha_detect import ACTIVE, STANDBY, Replica, services, wait

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLE = Path(__file__).parents[3] / "examples" / "two-chains.yaml"
CHAINS = (31337, 31338)


def test_a_standby_takes_over_every_chain_of_a_killed_replica(tmp_path: Path) -> None:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    build = compile_contracts(["contracts/mocks"])
    guardian = Account.create()
    replicas: list[Replica] = []
    with (
        services(postgres, nats) as (store, prefix),
        Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=0.5, chain_id=CHAINS[0])) as alpha,
        Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=0.5, chain_id=CHAINS[1])) as beta,
    ):
        venues = []
        for node in (alpha, beta):
            w3 = Web3(Web3.HTTPProvider(node.url))
            node.rpc("anvil_setBalance", guardian.address, hex(10**20))
            admin = w3.eth.accounts[0]
            venues.append(
                (
                    w3,
                    admin,
                    Deployer(w3, build).deploy("venue", "MockGuardedVenue", admin, guardian.address, 3600),
                )
            )
        assert venues[0][2].address == venues[1][2].address
        abi = tmp_path / "MockGuardedVenue.json"
        abi.write_text(json.dumps(build["MockGuardedVenue"].abi), encoding="utf-8")
        config = tmp_path / "two-chains.yaml"
        shutil.copy(EXAMPLE, config)
        with config.open("a", encoding="utf-8") as out:
            out.write(f'\nbus: {{kind: jetstream, url: "{nats}", prefix: {prefix}}}\n')
            out.write("ha: {lease: nats, ttl_seconds: 2}\n")
        env = {
            "ALPHA_RPC": alpha.url,
            "BETA_RPC": beta.url,
            "VENUE": venues[0][2].address,
            "VENUE_ABI": str(abi),
            "GUARDIAN_KEY": "0x" + bytes(guardian.key).hex(),
            "STORE_URL": store,
        }
        replicas = [Replica(name, config, env, tmp_path) for name in ("a", "b")]
        engine = create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            first, second = replicas
            first.start()
            wait("the first replica leading both chains", lambda: len(first.events(ACTIVE)) == 2, replicas)
            second.start()
            wait("the second standing by for both", lambda: len(second.events(STANDBY)) == 2, replicas)
            starts = {chain: checkpoint(engine, chain) for chain in CHAINS}
            first.kill()
            wait("the second leading both chains", lambda: len(second.events(ACTIVE)) == 2, replicas)
            _w3_beta, admin_beta, venue_beta = venues[1]
            venue_beta.functions.setMaxLeverage(900).transact({"from": admin_beta})  # the exploit, on beta
            wait("beta paused", lambda: bool(venue_beta.functions.paused().call()), replicas)
            ends = {chain: w3.eth.block_number for chain, (w3, _a, _v) in zip(CHAINS, venues, strict=True)}
            for chain in CHAINS:
                wait(
                    f"chain {chain} checkpointed", lambda c=chain: checkpoint(engine, c) >= ends[c], replicas
                )
            with engine.connect() as conn:
                for chain in CHAINS:
                    numbers = {
                        int(n)
                        for (n,) in conn.execute(
                            text("SELECT number FROM chain_blocks WHERE chain_id = :c AND NOT orphaned"),
                            {"c": chain},
                        )
                    }
                    assert set(range(starts[chain], ends[chain] + 1)) <= numbers, chain  # none missed
                alerts = conn.execute(text("SELECT monitor_id, chain_id FROM alerts")).all()
            assert [tuple(a) for a in alerts] == [("leverage-beta", CHAINS[1])]
            assert not venues[0][2].functions.paused().call()  # alpha untouched
        finally:
            for replica in replicas:
                replica.stop()
            engine.dispose()
