"""Each monitor kind on a real anvil, against the probe protocol (token, vault with roles, mixer)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from detect_support import USD, Probe  # type: ignore[import-not-found]
from eth_utils.crypto import keccak

from breakglass.detect import Retraction
from breakglass.domain import Severity

pytestmark = pytest.mark.node


def yaml(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip() + "\n", "  ")


async def test_event_monitor_matches_where_on_decoded_args(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml("""
        - id: big-deposit
          kind: event
          contract: vault
          event: Deposit
          where: args.amount >= 1000000 * 1000000 && tx.to == contracts.vault
        """)
    )
    probe.deposit(probe.users[0], 5 * USD)
    probe.deposit(probe.users[1], 2_000_000 * USD)
    [finding] = await watch.catch_up()
    assert finding.monitor_id == "big-deposit" and finding.severity is Severity.HIGH
    assert finding.evidence["args"] == {"account": probe.users[1].lower(), "amount": 2_000_000 * USD}
    assert finding.tx_hash and finding.log_index is not None and finding.block_hash


async def test_call_monitor_sees_the_function_and_its_arguments(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml("""
        - id: leverage-up
          kind: call
          contract: vault
          function: setMaxLeverage
          where: args.value > 10
          severity: medium
        """)
    )
    probe.send(probe.vault.functions.setMaxLeverage(5), probe.admin)
    probe.send(probe.vault.functions.setMaxLeverage(50), probe.admin)
    [finding] = await watch.catch_up()
    assert finding.evidence["args"] == {"value": 50} and finding.severity is Severity.MEDIUM


async def test_transaction_monitor_filters_on_tx_fields(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml("""
        - id: whale-eth
          kind: transaction
          where: tx.value >= 100.0 * 1e18
        """)
    )
    probe.w3.eth.send_transaction({"from": probe.admin, "to": probe.users[0], "value": 10**18})
    tx = probe.w3.eth.send_transaction({"from": probe.admin, "to": probe.users[0], "value": 200 * 10**18})
    [finding] = await watch.catch_up()
    assert finding.tx_hash == "0x" + tx.hex().removeprefix("0x")


async def test_invariants_read_in_one_round_trip_and_fire_once_when_broken(
    probe: Probe, watch_factory: Any
) -> None:
    monitors = "".join(
        yaml(f"""
        - id: solvent-{i}
          kind: invariant
          severity: critical
          calls:
            assets: vault.totalAssets()
            liabilities: vault.totalLiabilities()
            held: usd.balanceOf(vault)
          expect: assets >= liabilities && held == assets && block.number > {i}
        """)
        for i in range(3)
    )
    watch = await watch_factory(monitors)
    probe.deposit(probe.users[0], 100 * USD)
    assert await watch.catch_up() == []
    before = watch.rpc.requests
    probe.send(probe.vault.functions.skim(probe.users[1], 1 * USD), probe.users[1])
    probe.node.mine(1)
    found = await watch.catch_up()
    # the head poll, one batch fetching both blocks with receipts, one batch of both blocks' reads
    assert watch.rpc.requests - before == 1 + 1 + 1
    assert sorted(f.monitor_id for f in found) == ["solvent-0", "solvent-1", "solvent-2"]
    assert all(f.severity is Severity.CRITICAL for f in found)
    assert found[0].evidence["values"] == {"assets": 99 * USD, "liabilities": 100 * USD, "held": 99 * USD}
    assert len(watch.engine.calls) == 3  # deduplicated across the three invariants


async def test_flow_monitor_fires_on_fraction_of_balance_leaving(probe: Probe, watch_factory: Any) -> None:
    probe.deposit(probe.users[0], 100 * USD)  # before the watch: deposits inside a window offset outflows
    watch = await watch_factory(
        yaml("""
        - id: vault-outflow
          kind: flow
          token: usd
          holders: [vault]
          window_blocks: 10
          max_fraction: 0.5
        """)
    )
    probe.send(probe.vault.functions.withdraw(30 * USD), probe.users[0])
    assert await watch.catch_up() == []
    probe.send(probe.vault.functions.skim(probe.users[2], 25 * USD), probe.users[2])
    [finding] = await watch.catch_up()
    assert finding.evidence["outflow"] == 55 * USD and finding.evidence["fraction"] == pytest.approx(0.55)
    probe.send(probe.vault.functions.skim(probe.users[2], 1 * USD), probe.users[2])
    assert await watch.catch_up() == []  # still the same window: no second finding


async def test_governance_changes_by_unlisted_actors_are_findings(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml(f"""
        - id: gov
          kind: governance
          contracts: [vault]
          allow: ["{probe.users[5]}"]
          parameter_events: [ParameterChanged]
        """)
    )
    guardian = probe.vault.functions.GUARDIAN_ROLE().call()
    probe.send(probe.vault.functions.grantRole(guardian, probe.users[5]), probe.admin)
    probe.send(probe.vault.functions.pause(), probe.users[5])  # allowlisted actor: expected
    probe.send(probe.vault.functions.unpause(), probe.admin)
    probe.send(probe.vault.functions.setMaxLeverage(20), probe.admin)
    found = await watch.catch_up()
    assert [(f.evidence["action"], f.evidence["event"]) for f in found] == [
        ("roles", "RoleGranted"),
        ("pause", "Unpaused"),
        ("parameters", "ParameterChanged"),
    ]


async def test_setup_signals_follow_mixer_funding_to_deployment_and_first_strike(
    probe: Probe, watch_factory: Any
) -> None:
    watch = await watch_factory(
        yaml(f"""
        - id: setup
          kind: setup
          severity: high
          protocol: [vault]
          mixers: ["{probe.mixer.address}"]
          reverts: {{count: 3, window_blocks: 10}}
        """)
    )
    probe.deposit(probe.users[0], 100 * USD)
    attacker, relay = probe.users[7], probe.users[8]
    probe.send(probe.mixer.functions.deposit(), probe.admin, value=10**18)
    probe.send(probe.mixer.functions.withdraw(relay, 5 * 10**17), probe.admin)  # hop 1, via a log
    probe.w3.eth.send_transaction({"from": relay, "to": attacker, "value": 10**17})  # hop 2
    factory = probe.w3.eth.contract(
        abi=probe.build["ProbeAttacker"].abi, bytecode=probe.build["ProbeAttacker"].bytecode
    )
    receipt = probe.send(factory.constructor(probe.vault.address), attacker)
    contract = probe.w3.eth.contract(address=receipt["contractAddress"], abi=probe.build["ProbeAttacker"].abi)
    probe.send(contract.functions.attack(10 * USD), attacker)
    for _ in range(3):  # probing: withdrawals it has no deposit for
        tx = probe.vault.functions.withdraw(1).build_transaction({"from": attacker, "gas": 100_000})
        probe.w3.eth.wait_for_transaction_receipt(probe.w3.eth.send_transaction(tx))
    found = await watch.catch_up()
    signals = [(f.evidence["signal"], f.severity) for f in found]
    assert signals == [
        ("tainted-deployment", Severity.HIGH),
        ("fresh-contract-interaction", Severity.HIGH),
        ("revert-burst", Severity.HIGH),
    ]
    assert found[0].evidence["hops_from_source"] == 2


async def test_an_innocent_fresh_contract_is_only_a_medium_signal(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml("""
        - id: setup
          kind: setup
          protocol: [vault]
        """)
    )
    probe.deposit(probe.users[0], 100 * USD)
    factory = probe.w3.eth.contract(
        abi=probe.build["ProbeAttacker"].abi, bytecode=probe.build["ProbeAttacker"].bytecode
    )
    receipt = probe.send(factory.constructor(probe.vault.address), probe.users[3])
    contract = probe.w3.eth.contract(address=receipt["contractAddress"], abi=probe.build["ProbeAttacker"].abi)
    probe.send(contract.functions.attack(1 * USD), probe.users[3])
    [finding] = await watch.catch_up()
    assert finding.evidence["signal"] == "fresh-contract-interaction" and finding.severity is Severity.MEDIUM


async def test_intel_lists_match_addresses_selectors_and_code_hashes(
    probe: Probe, watch_factory: Any, tmp_path: Path
) -> None:
    runtime = bytes.fromhex(probe.build["ProbeMixer"].deployed_bytecode[2:])
    (tmp_path / "intel.txt").write_text(f"# a feed\n0x{keccak(runtime).hex()}\n", encoding="utf-8")
    watch = await watch_factory(
        yaml(f"""
        - id: intel
          kind: intel
          addresses: ["{probe.users[6]}"]
          selectors: ["0x{keccak(text="skim(address,uint256)")[:4].hex()}"]
          files: [intel.txt]
        """)
    )
    probe.w3.eth.send_transaction({"from": probe.users[6], "to": probe.admin, "value": 1})
    probe.deposit(probe.users[0], 10 * USD)
    probe.send(probe.vault.functions.skim(probe.users[1], 1), probe.users[1])
    factory = probe.w3.eth.contract(
        abi=probe.build["ProbeMixer"].abi, bytecode=probe.build["ProbeMixer"].bytecode
    )
    probe.send(factory.constructor(), probe.users[4])
    found = await watch.catch_up()
    assert [f.evidence["match"] for f in found] == ["sender", "selector", "code_hash"]


async def test_plugins_get_blocks_and_transactions(
    probe: Probe, watch_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "probe_plugin.py").write_text(
        textwrap.dedent("""
        class ManyTx:
            def __init__(self, options):
                self.limit = options["limit"]
                self.seen = 0

            def on_transaction(self, ctx, tx, block):
                self.seen += 1
                return []

            def on_block(self, ctx, block):
                if len(block.transactions) >= self.limit:
                    n = len(block.transactions)
                    return [ctx.finding(f"{n} txs", evidence={"n": n})]
                return []
        """),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    watch = await watch_factory(
        yaml("""
        - id: busy
          kind: plugin
          plugin: probe_plugin:ManyTx
          options: {limit: 1}
        """)
    )
    probe.node.mine(1)
    probe.deposit(probe.users[0], 1)
    found = await watch.catch_up()
    assert len(found) == 3 and all(f.monitor_id == "busy" for f in found)
    plugin = watch.engine.detectors[0].plugin
    assert plugin.seen == 3


async def test_a_reorg_retracts_the_findings_of_orphaned_blocks(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml("""
        - id: deposits
          kind: event
          contract: vault
          event: Deposit
        """)
    )
    probe.deposit(probe.users[0], 7)
    [finding] = await watch.catch_up()
    probe.node.rpc("anvil_reorg", 2, [])
    probe.node.mine(1)
    await watch.catch_up()
    await watch.catch_up()
    retractions: list[Retraction] = watch.bus.published["retractions"]
    assert finding.block_hash in {r.block_hash for r in retractions}
    [mine] = [r for r in retractions if r.block_hash == finding.block_hash]
    assert mine.fingerprints == (finding.fingerprint,)


async def test_deep_in_a_backfill_state_is_read_only_near_the_head(probe: Probe, watch_factory: Any) -> None:
    watch = await watch_factory(
        yaml("""
        - id: solvent
          kind: invariant
          calls: {assets: vault.totalAssets(), liabilities: vault.totalLiabilities()}
          expect: assets >= liabilities
        - id: deposits
          kind: event
          contract: vault
          event: Deposit
        """)
    )
    watch.engine.state_horizon = 3
    probe.deposit(probe.users[0], 100 * USD)
    probe.send(probe.vault.functions.skim(probe.users[1], 1 * USD), probe.users[1])  # broken from here on
    probe.node.mine(10)
    head = probe.w3.eth.block_number
    found = await watch.catch_up()
    assert [f.monitor_id for f in found] == ["deposits", "solvent"]  # events on every block
    assert found[1].block_number == head - 3  # the invariant: first block whose state is read
    assert watch.engine.skipped_reads > 0
