"""``serve --role`` with several chains, and responder failover on one of them (issue 19).

A configuration like ``examples/two-chains.yaml`` (chains alpha 31337 and beta 31338, one guardian key,
one guarded mock venue and token on each anvil) served by one process per role: ``detect``,
``incidents``, ``api`` and two ``respond`` replicas (NATS KV leases, one per chain and key), on
PostgreSQL and JetStream. A holder's balance crossing a limit breaks a chain's ``breach`` invariant;
its playbook pauses the market numbered after the block. First a breach on each chain: each is paused
once, by the replica leading both chains, and both alerts reach the store. Then the leader is SIGKILLed
mid-incident on beta, as its pause is about to leave (signed and claimed, never broadcast: owed), and a
breach begins on alpha while it is dead: the standby takes both chains over and sends what is owed on
each (beta's very transaction), with no guardian call sent twice on either chain.

Helpers come from the HA harnesses: ``benchmarks/guarded_venue.py`` (each chain's anvil, venue, token
and limit), ``benchmarks/ha_detect.py`` (``serve`` processes, their JSON logs, the test's database and
prefix) and ``benchmarks/ha_respond.py`` (the JSON-RPC proxy that kills a replica at its next guardian
transaction)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.guarded_venue import LIMIT, GuardedVenue, guarded_venue
from benchmarks.ha_detect import ACTIVE, Replica, services, wait
from benchmarks.ha_respond import SendProxy

from breakglass.devnet.solc import compile_contracts
from breakglass.store.migrate import upgrade
from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

CHAINS = {"alpha": 31337, "beta": 31338}


def config_text(nats: str, prefix: str, venue: str, usd: str, holder: str, abis: Path) -> str:
    """The two-chain configuration: per chain its contracts, its breach monitor, its playbook and
    what the policy allows; the RPC endpoints, key and store from the environment of each process."""
    out = [
        "protocol: chains",
        'store: {url: "${STORE_URL}"}',
        f'bus: {{kind: jetstream, url: "{nats}", prefix: {prefix}}}',
        "ha: {lease: nats, ttl_seconds: 2}",
        "responder: {guardian: {env: GUARDIAN_KEY}, fees: {priority_fee_gwei: 1}}",
        "chains:",
    ]
    for name, chain_id in CHAINS.items():
        rpc = f"${{{name.upper()}_RPC}}"
        out.append(f'  - {{name: {name}, chain_id: {chain_id}, rpc: ["{rpc}"], confirmations: 0, '
                   "poll_interval: 0.1}")  # fmt: skip
    out.append("contracts:")
    for name in CHAINS:
        out.append(f'  - {{name: venue_{name}, chain: {name}, address: "{venue}", abi: "{abis}/venue.json"}}')
        out.append(f'  - {{name: usd_{name}, chain: {name}, address: "{usd}", abi: "{abis}/usd.json"}}')
    out.append("monitors:")
    for name in CHAINS:
        out.append(f'  - {{id: breach-{name}, kind: invariant, severity: critical, labels: {{market: "1"}}, '
                   f"calls: {{held: usd_{name}.balanceOf({holder})}}, "
                   f"expect: held < {LIMIT}.0}}")  # fmt: skip
    out.append("playbooks:")
    for name in CHAINS:
        out.append(f"  - {{id: contain-{name}, match: {{monitors: [breach-{name}]}}, actions: [{{kind: call, "
                   f"id: pause-market, contract: venue_{name}, function: pauseMarket, "
                   'args: ["{finding.block_number}"]}]}')  # fmt: skip
    out.append("policy:\n  max_fee_gwei: 1000\n  allow:")
    for name in CHAINS:
        out.append(f"    - {{contract: venue_{name}, function: pauseMarket, args: {{marketId: any}}}}")
    return "\n".join(out) + "\n"


class Chain:
    """One chain's guarded venue (``benchmarks/guarded_venue.py``), and the proxy every responder
    replica sends through."""

    def __init__(self, name: str, world: GuardedVenue) -> None:
        self.name, self.chain_id, self.world = name, CHAINS[name], world
        self.w3, self.admin, self.holder, self.sink = world.w3, world.admin, world.holder, world.sink
        self.venue, self.usd, self.guardian = world.venue, world.token, world.guardian.address
        self.proxy = SendProxy(world.node.url).start()
        self.first_block = self.w3.eth.block_number

    def breach(self) -> int:
        """The exploit: the holder's balance crosses the limit. The block it begins in."""
        tx = self.usd.functions.mint(self.holder, LIMIT).transact({"from": self.admin})
        return int(self.w3.eth.wait_for_transaction_receipt(tx)["blockNumber"])

    def heal(self) -> None:
        tx = self.usd.functions.transfer(self.sink, self.usd.functions.balanceOf(self.holder).call())
        self.w3.eth.wait_for_transaction_receipt(tx.transact({"from": self.holder}))

    def paused(self, market: int) -> bool:
        return bool(self.venue.functions.marketPaused(market).call())

    def guardian_calls(self) -> Counter[str]:
        """Guardian transactions on this chain since the test began, by calldata."""
        calls: Counter[str] = Counter()
        for number in range(self.first_block, self.w3.eth.block_number + 1):
            for tx in self.w3.eth.get_block(number, full_transactions=True)["transactions"]:
                if str(tx["from"]).lower() == self.guardian.lower():  # type: ignore[index]
                    calls[tx["input"].to_0x_hex()] += 1  # type: ignore[index]
        return calls


def ready(replica: Replica) -> dict[str, Any] | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{replica.port}/readyz", timeout=5)
    except httpx.TransportError:
        return None
    return dict(answer.json()) if answer.status_code == 200 else None


def test_role_processes_on_two_chains_and_a_responder_killed_mid_incident_on_beta_owes_nothing(
    tmp_path: Path,
) -> None:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    build = compile_contracts(["contracts/mocks"])
    guardian = Account.create()
    (tmp_path / "venue.json").write_text(json.dumps(build["MockGuardedVenue"].abi), encoding="utf-8")
    (tmp_path / "usd.json").write_text(json.dumps(build["MockERC20"].abi), encoding="utf-8")
    processes: list[Replica] = []
    chains: dict[str, Chain] = {}
    with services(postgres, nats) as (store, prefix), contextlib.ExitStack() as stack:
        try:
            for name, chain_id in CHAINS.items():
                (tmp_path / name).mkdir()
                options = {"token": ("Chains USD", "cUSD"), "chain_id": chain_id, "guardian": guardian}
                world = stack.enter_context(guarded_venue(build, tmp_path / name, **options))
                chains[name] = Chain(name, world)
            alpha, beta = chains["alpha"], chains["beta"]
            assert alpha.venue.address == beta.venue.address and alpha.usd.address == beta.usd.address
            config = tmp_path / "chains.yaml"
            config.write_text(
                config_text(nats, prefix, alpha.venue.address, alpha.usd.address, alpha.holder, tmp_path),
                encoding="utf-8",
            )
            upgrade(store)
            env = {"GUARDIAN_KEY": "0x" + bytes(guardian.key).hex(), "STORE_URL": store}
            direct = {**env, "ALPHA_RPC": alpha.world.node.url, "BETA_RPC": beta.world.node.url}

            def responder(tag: str) -> Replica:  # its guardian transactions go through the chains' proxies
                rpc = {"ALPHA_RPC": f"{alpha.proxy.url}/{tag}", "BETA_RPC": f"{beta.proxy.url}/{tag}"}
                return Replica(f"respond-{tag}", config, {**env, **rpc}, tmp_path, "respond")

            first, second = responder("a"), responder("b")
            incidents = Replica("incidents", config, direct, tmp_path, "incidents")
            api = Replica("api", config, direct, tmp_path, "api")
            detect = Replica("detect", config, direct, tmp_path, "detect")
            processes += [first, second, incidents, api, detect]

            # the consumers first (their durable consumers keep their place from then on); the first
            # responder leads both chains before the second starts, as a standby for both
            for process in (first, incidents, api):
                process.start()
            wait("a responder leading both chains", lambda: len(first.events("respond.took_over")) == 2,
                 processes, timeout=180)  # fmt: skip
            second.start()
            wait("a standby for both chains", lambda: len(second.events("respond.replica_started")) == 2,
                 processes, timeout=180)  # fmt: skip
            detect.start()
            wait("detect following both chains", lambda: len(detect.events(ACTIVE)) == 2, processes, 180)
            for process in (incidents, api, detect):
                wait(f"{process.name} ready", lambda p=process: ready(p), processes, timeout=180)

            # --role with two chains: a breach on each, each contained once, both recorded
            markets = {name: chain.breach() for name, chain in chains.items()}
            for name, chain in chains.items():
                wait(f"{name} paused", lambda c=chain, m=markets[name]: c.paused(m), processes)
            engine = create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
            try:

                def alerts() -> set[tuple[str, int]]:
                    with engine.connect() as conn:
                        rows = conn.execute(text("SELECT monitor_id, chain_id FROM alerts")).all()
                    return {(str(m), int(c)) for m, c in rows}

                expected = {(f"breach-{name}", chain_id) for name, chain_id in CHAINS.items()}
                wait("both breaches' alerts in the store", lambda: alerts() == expected, processes)
            finally:
                engine.dispose()
            for chain in chains.values():
                assert sum(chain.guardian_calls().values()) == 1, chain.name
                assert {s.tag for s in chain.proxy.sends} == {"a"}  # the leader of both chains sent
                chain.heal()

            # the leader dies as its pause on beta is about to leave; alpha's breach begins meanwhile
            assert first.proc is not None
            beta.proxy.arm("a", first.proc.pid)
            markets["beta"] = beta.breach()
            assert beta.proxy.fired.wait(60), "the leader sent nothing on beta"
            killed = beta.proxy.killed
            assert killed is not None
            first.proc.wait(10)
            markets["alpha"] = alpha.breach()
            for name, chain in chains.items():
                wait(f"{name} paused by the standby", lambda c=chain, m=markets[name]: c.paused(m), processes)
            wait("the standby leading both chains", lambda: len(second.events("respond.took_over")) == 2,
                 processes)  # fmt: skip
            owed_beta = [s for s in beta.proxy.sends if s.tag == "b" and s.forwarded]
            assert owed_beta[0].tx_hash == killed.tx_hash  # the very transaction the leader signed
            assert [s.tag for s in alpha.proxy.sends if s.at > killed.at] == ["b"]
            for chain in chains.values():
                calls = chain.guardian_calls()
                assert sum(calls.values()) == 2 and max(calls.values()) == 1, (chain.name, calls)
        finally:
            for process in processes:
                process.stop()
            for chain in chains.values():
                chain.proxy.stop()
