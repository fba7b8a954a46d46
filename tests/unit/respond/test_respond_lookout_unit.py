"""The lookout's decision as pure logic over a scripted node: never-revert calls, the attack-path
exemption, harm against value at risk, the finding's own sender left out, and failing open."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode

from breakglass.config.playbooks import LookConfig
from breakglass.devnet.manifest import ContractRecord
from breakglass.domain import Finding, Severity
from breakglass.errors import RpcError
from breakglass.respond.calls import CallTemplate
from breakglass.respond.lookout import Lookout

VENUE = "0x00000000000000000000000000000000000000aa"
KEEPER, TRADER, ATTACKER = ("0x" + c * 40 for c in "123")
ABI = [
    {"type": "function", "name": n, "inputs": i, "outputs": o, "stateMutability": "nonpayable"}
    for n, i, o in (
        ("liquidate", [{"name": "a", "type": "address"}], []),
        ("openPosition", [], []),
        ("pause", [], []),
        ("cash", [], [{"name": "", "type": "uint256"}]),
    )
]
OPEN = "0x00000001"  # a selector the ABI does not name


class Node:
    """Answers the lookout's requests; ``reverts`` are the selectors the action makes revert."""

    def __init__(self, pool: list[dict[str, Any]], reverts: set[str], fail: str | None = None) -> None:
        self.pool, self.reverts, self.fail = pool, reverts, fail
        self.calls: list[str] = []

    async def call(self, method: str, *params: Any) -> Any:
        self.calls.append(method)
        if method == self.fail:
            raise RpcError(method, "503")
        if method == "eth_blockNumber":
            return "0x10"
        if method == "txpool_content":
            pending: dict[str, dict[str, Any]] = {}
            for i, body in enumerate(self.pool):
                pending.setdefault(body["from"], {})[str(i)] = body
            return {"pending": pending}
        if method == "eth_getBlockByNumber":
            return {"transactions": []}
        if method == "eth_call":
            return "0x" + encode(["uint256"], [1_000]).hex()
        if method == "eth_simulateV1":
            calls = params[0]["blockStateCalls"][0]["calls"]
            acted = calls[0]["input"] == "0x" + PAUSE.data.hex()
            return [{"calls": [{"status": "0x0" if acted and c["input"][:10] in self.reverts else "0x1"}
                               for c in calls]}]  # fmt: skip
        raise AssertionError(method)

    async def close(self) -> None: ...


def tx(sender: str, data: str, n: int) -> dict[str, Any]:
    return {"hash": f"0x{n:064x}", "from": sender, "to": VENUE, "input": data + "00" * 32, "gas": "0x100000"}


def lookout(node: Node, **config: Any) -> Lookout:
    look = LookConfig(recent_blocks=1, **config)
    return Lookout(node, look, {"venue": ContractRecord(VENUE, ABI)})


FINDING = Finding(monitor_id="m", severity=Severity.CRITICAL, chain_id=1, block_number=1, title="t",
                  evidence={"attacker": ATTACKER})  # type: ignore[arg-type]  # fmt: skip
PAUSE = CallTemplate.build("venue", VENUE, ABI, "pause", []).render(FINDING)
LIQ = "0x" + CallTemplate.build("venue", VENUE, ABI, "liquidate", [KEEPER]).selector.hex()


async def test_an_action_that_would_stop_an_honest_liquidation_is_withheld_unless_it_is_the_attack_path() -> (
    None
):
    node = Node([tx(KEEPER, LIQ, 1), tx(ATTACKER, LIQ, 2)], reverts={LIQ})
    verdict = await lookout(node).assess("p.pause", PAUSE, FINDING, "0x" + "9" * 40)
    assert verdict.withhold and [t.call for t in verdict.never] == ["venue.liquidate"]
    assert [t.sender for t in verdict.harmed] == [KEEPER]  # the attacker's own is not counted
    proven = await lookout(node, attack_path=["p.pause"]).assess("p.pause", PAUSE, FINDING, "0x" + "9" * 40)
    assert not proven.withhold and proven.never == ()


async def test_harm_is_weighed_against_the_value_at_risk_read_only_when_something_is_harmed() -> None:
    node = Node([tx(TRADER, OPEN, 1), tx(TRADER, OPEN, 2)], reverts={OPEN})
    cheap = lookout(node, harm_per_transaction=100, protects={"p.pause": ["venue.cash()"]})
    verdict = await cheap.assess("p.pause", PAUSE, FINDING, "0x" + "9" * 40)
    assert (verdict.harm, verdict.value_at_risk, verdict.withhold) == (200, 1_000, False)
    dear = lookout(node, harm_per_transaction=600, protects={"p.pause": ["venue.cash()"]})
    verdict = await dear.assess("p.pause", PAUSE, FINDING, "0x" + "9" * 40)
    assert verdict.withhold and "exceeds the value at risk 1000" in verdict.reason
    quiet = Node([tx(TRADER, OPEN, 1)], reverts=set())
    verdict = await lookout(quiet, protects={"p.pause": ["venue.cash()"]}).assess(
        "p.pause", PAUSE, FINDING, "0xab"
    )
    assert not verdict.withhold and verdict.value_at_risk is None and "eth_call" not in quiet.calls


async def test_one_sample_serves_every_step_of_a_finding_and_a_node_that_fails_leaves_containment_on() -> (
    None
):
    node = Node([tx(TRADER, OPEN, 1)], reverts=set())
    look = lookout(node)
    await look.assess("p.a", PAUSE, FINDING, "0xab")
    await look.assess("p.b", PAUSE, FINDING, "0xab")
    assert node.calls.count("txpool_content") == 1 and node.calls.count("eth_simulateV1") == 3
    broken = Node([], reverts=set(), fail="eth_getBlockByNumber")
    verdict = await lookout(broken).assess("p.a", PAUSE, FINDING, "0xab")
    assert not verdict.withhold and verdict.reason.startswith("look failed")
