"""Follow-ups in attack-contract simulation, on the reference venue with the GMX-v1 refund switch: a
contract whose own calls do no harm, armed to re-enter when the venue's keeper executes its order, is
proven harmful by the keeper's call that ``examples/venue.yaml``'s ``follow_ups`` run after each probe,
before the keeper's real call; an honest contract's order, executed the same way, stays quiet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from simulate_support import Chain, deploy, probe, send, venue_chain
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from breakglass.chain.follower import fetch_blocks
from breakglass.detect.service import Watcher
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, role_key
from breakglass.domain import Finding, FindingStage
from breakglass.simulate import AttackSimulator

pytestmark = [pytest.mark.node, pytest.mark.slow]

FEE = 10**15


@pytest.fixture(scope="module")
def chain(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("follow-ups")
    with venue_chain(build, folder, "reentrant_refund", gas=15_000_000) as chain:
        # an honest rally: the seeded shorts are under water, as in the reentrant-aum scenario
        for price in (2_080, 2_160, 2_240, 2_300):
            update = chain.venue["feed_eth"].functions.updateAnswer(price * 10**8)
            assert send(chain, update, role_key("price_keeper").address) > 0
        yield chain


@pytest.fixture
async def probing(chain: Chain, tmp_path: Path) -> AsyncIterator[tuple[Watcher, AttackSimulator]]:
    async with probe(chain, tmp_path) as probing:
        yield probing


async def examine(watcher: Watcher, simulator: AttackSimulator, numbers: list[int]) -> list[Finding]:
    found: list[Finding] = []
    for number in numbers:
        [block] = await fetch_blocks(watcher.rpc, [number])
        found += await simulator.examine(block)
    return found


def create_order(chain: Chain, contract: Any, sender: str, *args: Any) -> tuple[int, int]:
    """(block, order id) of ``contract.createOrder(*args)`` with the execution fee."""
    tx = contract.functions.createOrder(*args).transact({"from": sender, "value": FEE, "gas": 5_000_000})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    market = chain.venue.market(0)
    [event] = market.events.OrderCreated().process_receipt(receipt, errors=DISCARD)
    return int(receipt["blockNumber"]), int(event["args"]["orderId"])


def execute(chain: Chain, order_id: int) -> int:
    return send(chain, chain.venue.market(0).functions.executeOrder(order_id), role_key("keeper").address)


def order_both_ways(chain: Chain, attacker: str) -> tuple[Contract, list[int], int]:
    """reentrant-aum's set-up before ``arm``: the attack contract deployed and funded, its increase
    order created and executed by the keeper, its decrease order created. The contract, the blocks
    of those transactions and the decrease order's id."""
    venue = chain.venue
    market = venue.market(0)
    args = (venue.usd.address, market.address, venue.vault.address, venue["flash_lender"].address)
    attack, created = deploy(chain, attacker, "ReentrantAumAttack", *args)
    blocks = [created, send(chain, venue.usd.functions.mint(attack.address, 700_000 * USD), attacker)]
    number, increase = create_order(chain, attack, attacker, True, 10_000 * USD, 100_000 * USD)
    blocks += [number, execute(chain, increase)]
    number, decrease = create_order(chain, attack, attacker, False, 0, 0)
    blocks.append(number)
    return attack, blocks, decrease


async def test_a_contract_armed_to_reenter_the_keeper_is_proven_by_the_keepers_follow_up(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    """reentrant-aum's set-up: the contract's order, then ``arm``. No call of the contract's own
    harms (outside the keeper's window leverage is off); the keeper executing its order does."""
    watcher, simulator = probing
    venue, attacker = chain.venue, chain.w3.eth.accounts[8]
    attack, blocks, decrease = order_both_ways(chain, attacker)
    assert all(b > 0 for b in blocks)
    assert await examine(watcher, simulator, blocks) == []  # not armed: the keeper's call is harmless

    armed = send(chain, attack.functions.arm(40_000_000 * USD, 18_000_000 * USD, 400_000 * USD, 4), attacker)
    findings = await examine(watcher, simulator, [armed])

    assert findings and {f.stage for f in findings} == {FindingStage.SETUP_PROVEN}, simulator.stats
    proof = findings[0].evidence
    assert proof["contract"] == attack.address.lower()
    execute_order = "0x" + Web3.keccak(text="executeOrder(uint256)")[:4].hex()
    keeper = role_key("keeper").address.lower()
    ran = [(c["from"], c["selector"], int(c["input"][10:], 16)) for c in proof["follow_ups"]]
    assert (keeper, execute_order, decrease) in ran
    # the proof is of a real harm: the keeper's real call drains the vault
    cash = venue.vault.functions.cash().call()
    assert execute(chain, decrease) > 0
    assert venue.vault.functions.cash().call() < cash - 1_000_000 * USD


async def test_an_honest_contracts_order_executed_by_the_keeper_stays_quiet(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    """A contract that trades through keeper orders (a trading bot): the keeper's follow-up runs after
    each probe, opens and closes its position, and breaks nothing."""
    watcher, simulator = probing
    venue, user = chain.venue, chain.w3.eth.accounts[9]
    market = venue.market(0)
    args = (venue.usd.address, market.address, venue.vault.address, venue["flash_lender"].address)
    bot, created = deploy(chain, user, "ReentrantAumAttack", *args)  # never armed: an honest trader
    blocks = [created, send(chain, venue.usd.functions.mint(bot.address, 700_000 * USD), user)]
    number, increase = create_order(chain, bot, user, True, 10_000 * USD, 100_000 * USD)
    blocks.append(number)
    findings = await examine(watcher, simulator, blocks)

    assert findings == [], [(f.monitor_id, f.title) for f in findings]
    assert simulator.watched[bot.address.lower()].probes >= 2
    assert simulator.stats.simulations > 0 and simulator.stats.errors == 0
    assert execute(chain, increase) > 0


async def test_the_arming_block_is_proven_by_one_follow_up_check_before_its_evaluation(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    """The fast lane: the block that arms the contract, handed over as it is fetched (``on_fetched``,
    before the block path evaluates it), is checked with one simulation, the keeper's pending call
    alone on the latest state: proven before the keeper's real call, without a probe of its own."""
    watcher, simulator = probing
    attacker = chain.w3.eth.accounts[7]
    attack, blocks, decrease = order_both_ways(chain, attacker)
    assert await examine(watcher, simulator, blocks) == []

    armed = send(chain, attack.functions.arm(40_000_000 * USD, 18_000_000 * USD, 400_000 * USD, 4), attacker)
    [block] = await fetch_blocks(watcher.rpc, [armed])
    simulator.on_fetched(block)
    assert list(simulator._urgent) == [block]  # queued for the fast lane, not the probes
    spent = simulator.stats.simulations
    findings = await simulator.check_follow_ups(*simulator._urgent)

    assert findings and {f.stage for f in findings} == {FindingStage.SETUP_PROVEN}, simulator.stats
    assert simulator.stats.simulations == spent + 1
    proof = findings[0].evidence
    assert proof["contract"] == attack.address.lower() and proof["calls"] == []  # none of its own
    assert decrease in [int(c["input"][10:], 16) for c in proof["follow_ups"]]
    assert "no call of its own" in findings[0].title
    assert simulator.watched[attack.address.lower()].proven  # the probes leave it alone now
    assert await simulator.examine(block) == []


async def test_a_follow_up_check_of_an_honest_contracts_order_stays_quiet(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    """The block that creates an honest contract's order is checked with the keeper's call too:
    nothing breaks, nothing is found."""
    watcher, simulator = probing
    venue, user = chain.venue, chain.w3.eth.accounts[6]
    market = venue.market(0)
    args = (venue.usd.address, market.address, venue.vault.address, venue["flash_lender"].address)
    bot, created = deploy(chain, user, "ReentrantAumAttack", *args)  # never armed
    blocks = [created, send(chain, venue.usd.functions.mint(bot.address, 700_000 * USD), user)]
    assert await examine(watcher, simulator, blocks) == []
    number, _order = create_order(chain, bot, user, True, 10_000 * USD, 100_000 * USD)
    [block] = await fetch_blocks(watcher.rpc, [number])
    simulator.on_fetched(block)
    assert await simulator.check_follow_ups(*simulator._urgent) == []
    assert simulator.stats.simulations >= 1 and simulator.stats.errors == 0
