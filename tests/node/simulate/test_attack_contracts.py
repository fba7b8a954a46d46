"""Attack-contract simulation on the reference venue (spot-valued LP vault, the repeated-drain switch):
a contract is probed when it appears, before it is ever called, and proven harmful by the example
configuration's monitors on the simulated post-state; honest contracts that use the same venue stay
quiet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from simulate_support import EXAMPLE, Chain, deploy, probe, send, venue_chain
from web3 import Web3

from breakglass.chain.follower import fetch_blocks
from breakglass.detect.service import Watcher
from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, VenueOptions, deploy_venue
from breakglass.domain import Finding, FindingStage, Severity
from breakglass.simulate import AttackSimulator

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture(scope="module")
def chain(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with venue_chain(build, tmp_path_factory.mktemp("attack"), "spot_valuation") as chain:
        yield chain


@pytest.fixture
def funds() -> dict[str, int]:
    """``attack_simulation.funds`` over the example's (a test overrides it)."""
    return {}


@pytest.fixture
async def probing(
    chain: Chain, tmp_path: Path, funds: dict[str, int]
) -> AsyncIterator[tuple[Watcher, AttackSimulator]]:
    async with probe(chain, tmp_path, funds) as probing:
        yield probing


async def examine(watcher: Watcher, simulator: AttackSimulator, number: int) -> list[Finding]:
    [block] = await fetch_blocks(watcher.rpc, [number])
    return await simulator.examine(block)


def drain_args(venue: Venue) -> tuple[str, ...]:
    return (
        venue.usd.address,
        venue.vault.address,
        venue["amm_thin"].address,
        venue["thin_token"].address,
        venue["flash_lender"].address,
    )


async def test_a_contract_created_by_a_factory_is_proven_harmful_before_its_first_call(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    watcher, simulator = probing
    attacker = chain.w3.eth.accounts[7]
    factory, _ = deploy(chain, attacker, "DrainFactory")
    salt = b"\x01" * 32
    child = factory.functions.create(salt, *drain_args(chain.venue)).call({"from": attacker})  # its address
    number = send(chain, factory.functions.create(salt, *drain_args(chain.venue)), attacker)
    assert simulator.finder.method in (None, "trace_block")
    findings = await examine(watcher, simulator, number)

    assert findings, "the factory's child was not proven harmful"
    assert {f.stage for f in findings} == {FindingStage.SETUP_PROVEN}
    assert all(f.severity is Severity.CRITICAL for f in findings)
    proof = findings[0].evidence
    assert proof["contract"] == child.lower() == proof["attacker"]
    assert proof["deployer"] == attacker.lower() and proof["creator"] == factory.address.lower()
    go = "0x" + Web3.keccak(text="go()")[:4].hex()
    assert [c["selector"] for c in proof["calls"]] == [go]
    assert proof["calls"][0]["from"] == attacker.lower()  # the owner: a fresh account is refused
    assert simulator.watched[child.lower()].proven
    # the proof is of a real harm: the call it names drains the vault
    cash = chain.venue.vault.functions.cash().call()
    mine = chain.w3.eth.contract(address=child, abi=chain.build["FactoryDrainChild"].abi)
    assert send(chain, mine.functions.go(), attacker) > 0
    assert chain.venue.vault.functions.cash().call() < cash - 100_000 * USD


async def test_a_two_step_attack_is_proven_by_its_sequence_prepare_then_strike(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    watcher, simulator = probing
    attacker = chain.w3.eth.accounts[8]
    attack, number = deploy(chain, attacker, "TwoStepDrainAttack", *drain_args(chain.venue))
    findings = await examine(watcher, simulator, number)

    assert findings and {f.stage for f in findings} == {FindingStage.SETUP_PROVEN}
    calls = findings[0].evidence["calls"]
    names = {"0x" + Web3.keccak(text=f"{n}()")[:4].hex(): n for n in ("prepare", "strike")}
    assert [names.get(c["selector"]) for c in calls] == ["prepare", "strike"]
    assert {c["from"] for c in calls} == {attacker.lower()}
    assert findings[0].evidence["contract"] == attack.address.lower()


@pytest.mark.parametrize("funds", [{"usd": 3_000_000 * USD}])
async def test_a_contract_that_needs_capital_is_proven_with_funds_given_flash_loan_style(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    """A pump contract holding nothing can do nothing; given 3M USD by state override (as its owner
    would fund it just before the strike) its ``pump(3M)`` moves the thin pool the vault values."""
    watcher, simulator = probing
    venue, attacker = chain.venue, chain.w3.eth.accounts[6]
    args = (
        venue.usd.address,
        venue["market_thin"].address,
        venue["amm_thin"].address,
        venue["thin_token"].address,
    )
    attack, number = deploy(chain, attacker, "SpotPumpAttack", *args)
    findings = await examine(watcher, simulator, number)

    assert findings and {f.stage for f in findings} == {FindingStage.SETUP_PROVEN}, simulator.stats
    proof = findings[0].evidence
    pump = "0x" + Web3.keccak(text="pump(uint256)")[:4].hex()
    assert [c["selector"] for c in proof["calls"]] == [pump]
    assert proof["calls"][0]["input"][10:74] == f"{3_000_000 * USD:064x}"  # the funded amount, guessed
    assert proof["funded"] == {venue.usd.address.lower(): 3_000_000 * USD}
    assert chain.venue.usd.functions.balanceOf(attack.address).call() == 0  # on chain it holds nothing


async def test_honest_contracts_that_use_the_venue_stay_quiet(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    watcher, simulator = probing
    venue, user = chain.venue, chain.w3.eth.accounts[9]
    zap, zap_block = deploy(chain, user, "VaultZap", venue.usd.address, venue.vault.address)
    flash, flash_block = deploy(chain, user, "FlashRepay", venue.usd.address, venue["flash_lender"].address)
    blocks = [zap_block, flash_block]
    # funded (a touch: both are probed again with their new balances), then used
    send(chain, venue.usd.functions.mint(user, 2_000_000 * USD), user)
    blocks.append(send(chain, venue.usd.functions.transfer(zap.address, 1_000_000 * USD), user))
    blocks.append(send(chain, venue.usd.functions.transfer(flash.address, 10_000 * USD), user))
    blocks.append(send(chain, zap.functions.roundTrip(), user))
    blocks.append(send(chain, zap.functions.zapIn(), user))
    blocks.append(send(chain, flash.functions.borrowAndRepay(), user))
    assert all(b > 0 for b in blocks)
    findings = [f for number in blocks for f in await examine(watcher, simulator, number)]

    assert findings == [], [(f.monitor_id, f.title) for f in findings]
    assert simulator.watched[zap.address.lower()].probes >= 2  # probed when created and again when used
    assert simulator.stats.simulations > 0 and simulator.stats.errors == 0


async def test_a_proven_attack_contract_is_contained_by_the_playbooks_before_its_first_call(
    build: Build, tmp_path: Path
) -> None:
    """The whole pipeline with the examples (no mempool): the factory's child is
    proven harmful when it appears, the extraction playbook puts the venue in reduce-only, and the
    attacker's first call finds the way in closed."""
    import asyncio

    from breakglass.drills.defense import Defense, defended_config, write_keystore
    from breakglass.messages.actions import ActionStep

    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches("spot_valuation"))
        deployer.manifest(node.url).write(tmp_path / "manifest.json")
        keystore, password = write_keystore(tmp_path, bytes(venue.key("guardian").key))
        config = defended_config(tmp_path, tmp_path / "manifest.json", keystore, ws_url=None)
        defense = await Defense.start(config, password, w3.eth.block_number + 1)
        chain = Chain(node, w3, build, venue, tmp_path / "manifest.json")
        try:
            attacker = w3.eth.accounts[7]
            factory, _ = await asyncio.to_thread(deploy, chain, attacker, "DrainFactory")
            salt = b"\x02" * 32
            child = factory.functions.create(salt, *drain_args(venue)).call({"from": attacker})
            await asyncio.to_thread(send, chain, factory.functions.create(salt, *drain_args(venue)), attacker)

            def reduce_only() -> bool:
                return bool(venue.guard.functions.isReduceOnly(0).call())

            for _ in range(600):
                if await asyncio.to_thread(reduce_only):
                    break
                await asyncio.sleep(0.05)
            await defense.settle(w3.eth.block_number)
            cash = venue.vault.functions.cash().call()
            mine = w3.eth.contract(address=child, abi=build["FactoryDrainChild"].abi)
            struck = await asyncio.to_thread(send, chain, mine.functions.go(), attacker)
            assert venue.vault.functions.cash().call() == cash
        finally:
            await defense.close()
    observed = defense.observed
    proven = [f for f in observed.findings if f.stage is FindingStage.SETUP_PROVEN]
    assert proven and all(f.evidence["contract"] == child.lower() for f in proven)
    confirmed = [a for a in observed.actions if a.step is ActionStep.CONFIRMED]
    assert any(
        a.playbook == "contain-extraction" and a.detail.get("stage") == "setup-proven" for a in confirmed
    ), [(a.playbook, a.action, a.step, a.detail) for a in observed.actions]
    assert struck == -1  # the attack call reverted: the venue takes no deposit in reduce-only
    blocks = [a for a in confirmed if a.action == "block-attacker"]
    assert len(blocks) == 1  # one breach per contract, whichever monitors it breaks
    assert defense.errors == []


def test_test_contract_probes_one_deployed_contract_from_the_command_line(
    chain: Chain, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from breakglass.cli.main import app

    snapshot = chain.node.snapshot()
    try:
        config_data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
        config_data.update(deployment=str(chain.manifest), store={"url": f"sqlite:///{tmp_path / 's.db'}"})
        config = tmp_path / "venue.yaml"
        config.write_text(yaml.safe_dump(config_data), encoding="utf-8")
        attacker, user = chain.w3.eth.accounts[5], chain.w3.eth.accounts[4]
        attack, _ = deploy(chain, attacker, "TwoStepDrainAttack", *drain_args(chain.venue))
        zap, _ = deploy(chain, user, "VaultZap", chain.venue.usd.address, chain.venue.vault.address)
        runner = CliRunner()
        proven = runner.invoke(
            app, ["test-contract", str(config), attack.address, "--caller", attacker, "--json"]
        )
        assert proven.exit_code == 1, proven.output
        lines = [json.loads(line) for line in proven.output.splitlines() if line.startswith("{")]
        assert lines and {line["monitor"] for line in lines} <= {"lp-value-extraction", "vault-round-trip"}
        quiet = runner.invoke(app, ["test-contract", str(config), zap.address, "--caller", user])
        assert quiet.exit_code == 0 and "nothing proven" in quiet.output, quiet.output
    finally:
        chain.node.revert(snapshot)


async def test_without_traces_creations_come_from_receipts_and_a_code_diff(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    """A node offering neither trace method: a top-level deployment is in its receipt; a factory's
    child is found when the block's transaction calls it or a log names it as emitter, and is missed
    otherwise (docs/detection.md)."""
    from breakglass.simulate.discover import CreationFinder

    watcher, _simulator = probing
    finder = CreationFinder(watcher.rpc, method="receipts")
    attacker = chain.w3.eth.accounts[3]
    factory, number = deploy(chain, attacker, "DrainFactory")
    [block] = await fetch_blocks(watcher.rpc, [number])
    assert [c.address for c in await finder.created(block)] == [factory.address.lower()]
    number = send(chain, factory.functions.create(b"\x03" * 32, *drain_args(chain.venue)), attacker)
    [block] = await fetch_blocks(watcher.rpc, [number])
    assert await finder.created(block) == []  # the child neither was called nor logged: not seen
    traced = await CreationFinder(watcher.rpc).created(block)
    assert (
        len(traced) == 1 and traced[0].creator == factory.address.lower() and traced[0].via == "trace_block"
    )
