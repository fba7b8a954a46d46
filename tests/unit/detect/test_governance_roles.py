"""Allow lists by AccessControl role (issue 14): the holders of a role follow the chain's
``RoleGranted``/``RoleRevoked``, are forgotten on a reorg and kept across a restart."""

from __future__ import annotations

import json
from typing import Any

from eth_utils.crypto import keccak

from breakglass.config.monitors import AllowRole, GovernanceMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.base import BlockContext, DecodedLog
from breakglass.detect.governance import GovernanceDetector, role_hash
from breakglass.domain import Address, Block, Finding, Hash32, Log, Receipt, Tx

TIMELOCK = "0x" + "71" * 20
OWNED = "0x" + "0d" * 20
ADMIN = "0x" + "ad" * 20
ALICE = "0x" + "a1" * 20
PROPOSER = keccak(text="PROPOSER_ROLE")


def _event(name: str, *inputs: tuple[str, str]) -> EventAbi:
    fields = [{"name": n, "type": t, "indexed": True} for n, t in inputs]
    return EventAbi.of({"type": "event", "name": name, "inputs": fields})


ROLE = (("role", "bytes32"), ("account", "address"), ("sender", "address"))
GRANTED, REVOKED = _event("RoleGranted", *ROLE), _event("RoleRevoked", *ROLE)
PAUSED = _event("Paused", ("account", "address"))


def block(number: int, sender: str, *events: tuple[str, EventAbi, dict[str, Any]]) -> BlockContext:
    """Block ``number``: one transaction by ``sender`` emitting ``events`` (emitter, event, args)."""
    tx_hash = Hash32(f"0x{number:064x}")
    logs = [
        Log(Address(at), (Hash32(event.topic0),), b"", i, tx_hash, 0, number, tx_hash)
        for i, (at, event, _args) in enumerate(events)
    ]
    receipt = Receipt(tx_hash, 1, 50_000, 1, None, tuple(logs))
    tx = Tx(tx_hash, Address(sender), Address(OWNED), 0, b"", 0, 1, None, None, 1, 0, receipt)
    chain = Block(number, tx_hash, Hash32(f"0x{number - 1:064x}"), 12 * number, 1, (tx,))
    pairs = zip(logs, events, strict=True)
    decoded = [DecodedLog(log, "x", event, args, tx) for log, (_a, event, args) in pairs]
    return BlockContext(chain_id=1, block=chain, reads={}, logs=decoded, contracts={})


def grant(number: int, account: str, by: str = ADMIN, event: EventAbi = GRANTED) -> BlockContext:
    return block(number, by, (TIMELOCK, event, {"role": PROPOSER, "account": account, "sender": by}))


def pause(number: int, by: str) -> BlockContext:
    return block(number, by, (OWNED, PAUSED, {"account": by}))


def detector(**roles: Any) -> GovernanceDetector:
    allow = [AllowRole(contract="timelock", role="PROPOSER_ROLE", **roles)]
    cfg = GovernanceMonitor(id="gov", kind="governance", contracts=["owned"], allow_roles=allow)
    return GovernanceDetector(cfg, {"owned": OWNED}, known={"timelock": (TIMELOCK, [])})


def actors(found: list[Finding]) -> list[str]:
    return [f.evidence["actor"] for f in found]


def test_role_names_are_hashed_as_access_control_does() -> None:
    assert role_hash("PROPOSER_ROLE") == "0x" + PROPOSER.hex()
    assert role_hash("DEFAULT_ADMIN_ROLE") == "0x" + "00" * 32
    assert role_hash("0x" + "AB" * 32) == "0x" + "ab" * 32


def test_a_holder_is_allowed_from_its_grant_until_its_revocation() -> None:
    gov = detector()
    assert actors(gov.on_block(pause(1, ALICE))) == [ALICE]  # not a holder yet
    assert gov.on_block(grant(2, ALICE)) == []  # the timelock is not watched here
    assert gov.on_block(pause(3, ALICE)) == []
    gov.on_block(grant(4, ALICE, event=REVOKED))
    assert actors(gov.on_block(pause(5, ALICE))) == [ALICE]


def test_members_listed_in_the_configuration_hold_the_role_until_revoked() -> None:
    gov = detector(members=[ALICE])
    assert gov.on_block(pause(1, ALICE)) == []
    gov.on_block(grant(2, ALICE, event=REVOKED))
    assert actors(gov.on_block(pause(3, ALICE))) == [ALICE]


def test_another_role_or_contract_grants_nothing() -> None:
    gov = detector()
    other_role = {"role": keccak(text="EXECUTOR_ROLE"), "account": ALICE, "sender": ADMIN}
    other_contract = {"role": PROPOSER, "account": ALICE, "sender": ADMIN}
    gov.on_block(block(1, ADMIN, (TIMELOCK, GRANTED, other_role), (OWNED, GRANTED, other_contract)))
    assert actors(gov.on_block(pause(2, ALICE))) == [ALICE]


def test_a_reorg_forgets_the_grants_and_revocations_of_orphaned_blocks() -> None:
    gov = detector(members=[ADMIN])
    gov.on_block(grant(5, ALICE))
    gov.on_block(grant(6, ADMIN, event=REVOKED))
    gov.rewind(5)  # block 6 orphaned: ADMIN holds the role again
    assert gov.on_block(pause(6, ADMIN)) == [] and gov.on_block(pause(7, ALICE)) == []
    gov.rewind(4)  # the grant orphaned too
    assert actors(gov.on_block(pause(5, ALICE))) == [ALICE]


def test_holders_survive_a_restart_and_new_members_join() -> None:
    gov = detector(members=[ADMIN])
    gov.on_block(grant(1, ALICE))
    gov.on_block(grant(2, ADMIN, event=REVOKED))
    state = json.loads(json.dumps(gov.snapshot()))  # as the follower stores it
    bob = "0x" + "b0" * 20
    again = detector(members=[ADMIN, bob])
    again.restore(state)
    assert again.on_block(pause(3, ALICE)) == [] and again.on_block(pause(4, bob)) == []
    assert actors(again.on_block(pause(5, ADMIN))) == [ADMIN]  # revoked on chain: the snapshot wins
