"""Look before acting, on the real reference venue: a containment that would make an honest pending
liquidation revert is withheld and left to people; one that lets the way out work is sent, with its
numbers recorded."""

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
from breakglass.devnet.venue import USD, Venue, deploy_venue, dev_key
from breakglass.devnet.venue.tx import build_tx, call_data, sign_tx
from breakglass.domain import Finding, Severity
from breakglass.logs import Redactor
from breakglass.respond import ActionStep, Responder, build_responder
from breakglass.store.migrate import upgrade_async

pytestmark = [pytest.mark.node, pytest.mark.slow]

CONFIG = """
deployment: manifest.json
protocol: venue
monitors:
  - {id: price, kind: invariant, severity: critical, labels: {market: "0"},
     calls: {p: oracle.getPrice(0)}, expect: p > 0}
responder:
  guardian: {env: BREAKGLASS_GUARDIAN_KEY}
  look:
    recent_blocks: 2
    harm_per_transaction: 1000000
    protects:
      halt.halt-exits: ["vault.compartment({labels.market})"]
      pause.pause-venue: ["vault.cash()", "insurance.balance()"]
policy:
  allow:
    - {contract: guardian, function: haltExits, args: {marketId: any}}
    - {contract: guardian, function: pauseVenue}
playbooks:
  - id: halt
    match: {monitors: [price]}
    actions:
      - {kind: call, id: halt-exits, contract: guardian, function: haltExits, args: ["{labels.market}"]}
  - id: pause
    match: {monitors: [price]}
    actions: [{kind: call, id: pause-venue, contract: guardian, function: pauseVenue}]
"""


def _responder(anvil: Anvil, build: Build, folder: Path) -> tuple[Venue, Responder]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, build)
    venue = deploy_venue(deployer)
    deployer.manifest(anvil.url).write(folder / "manifest.json")
    config = yaml.safe_load(CONFIG)
    config["store"] = {"url": f"sqlite:///{folder / 'bg.db'}"}
    (folder / "breakglass.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    key = "0x" + bytes(venue.key("guardian").key).hex()
    responder = build_responder(load_config(folder / "breakglass.yaml"), InProcessBus(), Redactor(),
                                environ={"BREAKGLASS_GUARDIAN_KEY": key})  # fmt: skip
    return venue, responder


def _pending(venue: Venue, who: object, fn: object, gas: int = 1_000_000) -> str:
    w3 = venue.w3
    account = who  # an eth-account LocalAccount
    tx = build_tx(w3, account.address, to=fn.address, data=call_data(fn), gas=gas)  # type: ignore[attr-defined]
    return w3.eth.send_raw_transaction(sign_tx(account, tx)).to_0x_hex()  # type: ignore[arg-type]


async def test_a_containment_that_would_stop_an_honest_liquidation_is_withheld_not_sent(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    venue, responder = _responder(anvil, build, tmp_path)
    await upgrade_async(f"sqlite:///{tmp_path / 'bg.db'}")
    trader = dev_key(40)
    venue.fund(trader.address, usd=10_000 * USD, eth=10**18)
    eth = venue.market(0)
    venue.send(trader, venue.usd.functions.approve(eth.address, 10_000 * USD))
    venue.send(trader, eth.functions.openPosition(True, 10_000 * USD, 400_000 * USD), gas=1_000_000)
    venue.send(venue.key("price_keeper"), venue["feed_eth"].functions.updateAnswer(1_950 * 10**8))
    assert eth.functions.isLiquidatable(trader.address).call()
    guardian = venue.key("guardian").address
    anvil.rpc("evm_setAutomine", False)
    try:
        liquidation = _pending(venue, venue.key("keeper"), eth.functions.liquidate(trader.address))
        finding = Finding(monitor_id="price", severity=Severity.CRITICAL, chain_id=31337, block_number=1,
                          title="price", labels={"market": "0"})  # type: ignore[arg-type]  # fmt: skip
        events = await responder.handle(finding)
        by_action = {e.action: e for e in events}
        halted = by_action["halt-exits"]
        assert halted.step is ActionStep.WITHHELD
        look = halted.detail["look"]
        assert look["decision"] == "withhold" and look["never_revert_harmed"] == 1
        assert look["harmed"][0] == {"tx": liquidation, "sender": venue.key("keeper").address.lower(),
                                     "call": "market_eth.liquidate", "source": "pending"}  # fmt: skip
        assert look["value_at_risk"] == venue.vault.functions.compartment(0).call()
        # the venue pause lets liquidations through: it is sent, its numbers recorded
        paused = by_action["pause-venue"]
        assert paused.step is ActionStep.SUBMITTED
        assert venue.w3.eth.get_transaction_count(guardian, "pending") == 1  # one call sent, not two
        anvil.mine()
        assert venue.guard.functions.isVenuePaused().call()
        assert not venue.guard.functions.areExitsHalted(0).call()
        assert eth.functions.positions(trader.address).call()[1] == 0  # liquidated
        rows = await responder.ledger.rows()
        assert [r.step for r in rows if r.action == "halt-exits"] == [ActionStep.WITHHELD]
    finally:
        anvil.rpc("evm_setAutomine", True)
        await responder.close()


async def test_the_harm_of_reverted_honest_transactions_is_weighed_against_the_value_at_risk(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    venue, responder = _responder(anvil, build, tmp_path)
    assert responder.lookout is not None and responder.relayer is not None
    for i in range(3):
        lp = dev_key(60 + i)
        venue.fund(lp.address, usd=1_000 * USD, eth=10**18)
        venue.send(lp, venue.usd.functions.approve(venue.vault.address, 1_000 * USD))
    anvil.rpc("evm_setAutomine", False)
    try:
        # three honest LP deposits pending: a venue pause makes them revert
        hashes = [_pending(venue, dev_key(60 + i), venue.vault.functions.deposit(1_000 * USD), gas=300_000)
                  for i in range(3)]  # fmt: skip
        finding = Finding(monitor_id="price", severity=Severity.CRITICAL, chain_id=31337, block_number=1,
                          title="price", labels={"market": "0"})  # type: ignore[arg-type]  # fmt: skip
        [pause] = [s for s in responder.book.steps(responder.book.playbooks[1], finding)]
        call = pause.call  # type: ignore[union-attr]
        sender = responder.relayer.address
        look = await responder.lookout.assess("pause.pause-venue", call, finding, sender)
        assert sorted(t.tx_hash for t in look.harmed) == sorted(hashes)
        assert look.harm == 3 * 1_000_000 and not look.withhold  # 3 USD of harm against ~10.5M at risk
        responder.lookout.config = responder.lookout.config.model_copy(
            update={"harm_per_transaction": 10**14}
        )
        look = await responder.lookout.assess("pause.pause-venue", call, finding, sender)
        assert look.withhold and "exceeds the value at risk" in look.reason
        # the finding's own sender is never counted: stopping it is the point
        own = Finding(monitor_id="price", severity=Severity.CRITICAL, chain_id=31337, block_number=1,
                      title="price", labels={"market": "0"}, tx_hash=hashes[0],
                      evidence={"sender": dev_key(61).address})  # type: ignore[arg-type]  # fmt: skip
        look = await responder.lookout.assess("pause.pause-venue", call, own, sender)
        assert [t.tx_hash for t in look.harmed] == [hashes[2]]
    finally:
        anvil.rpc("evm_setAutomine", True)
        await responder.close()
