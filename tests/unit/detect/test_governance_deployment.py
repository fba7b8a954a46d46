"""The governance detector and the deployment manifest: the deployment's own set-up is expected (its
constructors, the deployer's calls up to the deployment block); the same key afterwards is not."""

from __future__ import annotations

from pathlib import Path

from breakglass.config.deployment import ContractRecord, Manifest
from breakglass.config.monitors import GovernanceMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.base import BlockContext, DecodedLog
from breakglass.detect.governance import GovernanceDetector, SetUp
from breakglass.domain import Address, Block, Finding, Hash32, Log, Receipt, Tx

GUARD = "0x" + "11" * 20
DEPLOYER = "0x" + "de" * 20
STRANGER = "0x" + "55" * 20
ROLE_GRANTED = EventAbi.of(
    {
        "type": "event",
        "name": "RoleGranted",
        "inputs": [
            {"name": "role", "type": "bytes32", "indexed": True},
            {"name": "account", "type": "address", "indexed": True},
            {"name": "sender", "type": "address", "indexed": True},
        ],
    }
)


def grant(number: int, sender: str, *, creates_guard: bool = False) -> BlockContext:
    """Block ``number`` with one ``RoleGranted`` on the guard by ``sender`` (in the guard's
    constructor when ``creates_guard``)."""
    tx_hash = Hash32(f"0x{number:064x}")
    log = Log(Address(GUARD), (Hash32(ROLE_GRANTED.topic0),), b"", 0, tx_hash, 0, number, tx_hash)
    created = Address(GUARD) if creates_guard else None
    receipt = Receipt(tx_hash, 1, 50_000, 1, created, (log,))
    to = None if creates_guard else Address(GUARD)
    tx = Tx(tx_hash, Address(sender), to, 0, b"", 0, 1, None, None, 1, 0, receipt)
    block = Block(number, tx_hash, Hash32(f"0x{number - 1:064x}"), 12 * number, 1, (tx,))
    args = {"role": b"\x00" * 32, "account": STRANGER, "sender": sender}
    return BlockContext(
        chain_id=1,
        block=block,
        reads={},
        logs=[DecodedLog(log, "guardian", ROLE_GRANTED, args, tx)],
        contracts={},
    )


def manifest(*, deployer: str | None = None, deployment_block: int | None = None) -> Manifest:
    return Manifest(
        chain_id=1,
        rpc_url="http://node",
        contracts={"guardian": ContractRecord(address=GUARD, abi=[])},
        deployer=deployer,
        deployment_block=deployment_block,
    )


def detector(deployment: SetUp | None) -> GovernanceDetector:
    cfg = GovernanceMonitor(id="gov", kind="governance", contracts=["guardian"])
    return GovernanceDetector(cfg, {"guardian": GUARD}, deployment=deployment)


def run(gov: GovernanceDetector, *blocks: BlockContext) -> list[Finding]:
    return [f for b in blocks for f in gov.on_block(b)]


def test_the_deployers_changes_up_to_the_deployment_block_are_its_set_up() -> None:
    gov = detector(SetUp.of(manifest(deployer=DEPLOYER, deployment_block=5).deployment()))
    assert run(gov, grant(1, DEPLOYER, creates_guard=True), grant(3, DEPLOYER), grant(5, DEPLOYER)) == []
    assert gov.deployment_changes == 3


def test_the_deployer_key_after_the_deployment_block_is_judged_like_anyone() -> None:
    gov = detector(SetUp.of(manifest(deployer=DEPLOYER, deployment_block=5).deployment()))
    [finding] = run(gov, grant(6, DEPLOYER))
    assert finding.evidence["actor"] == DEPLOYER and finding.block_number == 6


def test_another_account_during_the_deployment_is_a_finding() -> None:
    gov = detector(SetUp.of(manifest(deployer=DEPLOYER, deployment_block=5).deployment()))
    assert [f.evidence["actor"] for f in run(gov, grant(3, STRANGER))] == [STRANGER]


def test_without_a_deployment_block_only_the_constructors_are_expected() -> None:
    gov = detector(SetUp.of(manifest(deployer=DEPLOYER).deployment()))
    found = run(gov, grant(1, DEPLOYER, creates_guard=True), grant(2, DEPLOYER))
    assert [f.block_number for f in found] == [2]


def test_without_a_manifest_every_change_is_judged() -> None:
    gov = detector(SetUp.of(None))
    assert len(run(gov, grant(1, DEPLOYER, creates_guard=True))) == 1


def test_the_manifest_keeps_its_deployer_and_deployment_block(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    manifest(deployer=DEPLOYER, deployment_block=42).write(path)
    deployment = SetUp.of(Manifest.read(path).deployment())
    assert deployment == SetUp(frozenset({GUARD}), DEPLOYER, 42)
    path.write_text(path.read_text().replace('"deployment_block": 42', '"deployment_block": null'))
    assert SetUp.of(Manifest.read(path).deployment()) == SetUp(frozenset({GUARD}), DEPLOYER, None)


def _event(name: str) -> dict[str, object]:
    return {"type": "event", "name": name, "inputs": [], "anonymous": False}


def test_parameter_events_are_found_from_the_abi_unless_listed() -> None:
    abi = [_event(n) for n in ("MaxLeverageSet", "FeeUpdated", "OracleChanged", "AnswerUpdated", "Deposit",
                               "RoleAdminChanged", "Paused")]  # fmt: skip
    known = {"guardian": (GUARD, abi)}
    found = GovernanceDetector(GovernanceMonitor(id="g", kind="governance", contracts=["guardian"]),
                               {"guardian": GUARD}, known=known)  # fmt: skip
    parameters = sorted(name for name, action in found.events.items() if action == "parameters")
    assert parameters == ["FeeUpdated", "MaxLeverageSet", "OracleChanged"]  # prices and standard events not
    assert found.events["RoleAdminChanged"] == "roles" and found.events["Paused"] == "pause"
    listed = GovernanceMonitor(
        id="g", kind="governance", contracts=["guardian"], parameter_events=["FeeUpdated"]
    )
    only = GovernanceDetector(listed, {"guardian": GUARD}, known=known)
    assert sorted(n for n, a in only.events.items() if a == "parameters") == ["FeeUpdated"]
