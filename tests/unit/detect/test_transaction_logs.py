"""Transaction monitors reading ``logs``: what happened inside one transaction (a deposit and a
redemption in one transaction is the flash-loan round trip), on the block path and on a pending
transaction's simulated post-state."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode

from breakglass.config.monitors import EventMonitor, TransactionMonitor
from breakglass.detect.abi import AbiIndex, EventAbi
from breakglass.detect.base import BlockContext, DecodedLog
from breakglass.detect.filters import EventDetector, TransactionDetector
from breakglass.detect.invariants import InvariantSet
from breakglass.domain import Address, Block, FindingStage, Hash32, Log, PendingTx, Receipt, Tx
from breakglass.errors import DetectionError
from breakglass.simulate.judge import Judge
from breakglass.simulate.request import SimulatedBlock, SimulatedTx

VAULT = "0x" + "11" * 20
ATTACKER = "0x" + "33" * 20
LP = "0x" + "44" * 20


def _event(name: str) -> dict[str, Any]:
    return {
        "type": "event",
        "name": name,
        "inputs": [
            {"name": "account", "type": "address", "indexed": True},
            {"name": "assets", "type": "uint256", "indexed": False},
            {"name": "shares", "type": "uint256", "indexed": False},
        ],
    }


DEPOSIT, WITHDRAW = EventAbi.of(_event("Deposit")), EventAbi.of(_event("Withdraw"))
CONTRACTS = {"vault": VAULT}
ABI = AbiIndex({"vault": (VAULT, [_event("Deposit"), _event("Withdraw")])})
ROUND_TRIP = (
    'logs.exists(d, d.contract == "vault" && d.event == "Deposit" && logs.exists(w, '
    'w.contract == "vault" && w.event == "Withdraw" && w.args.account == d.args.account))'
)


def vault_log(event: EventAbi, account: str, assets: int, tx: int, index: int) -> Log:
    return Log(
        Address(VAULT),
        (Hash32(event.topic0), Hash32("0x" + "00" * 12 + account[2:])),
        encode(["uint256", "uint256"], [assets, assets]),
        index,
        Hash32(f"0x{tx:064x}"),
        tx,
        1,
        Hash32("0x" + "bb" * 32),
    )


def tx_with(number: int, sender: str, logs: tuple[Log, ...]) -> Tx:
    tx_hash = Hash32(f"0x{number:064x}")
    receipt = Receipt(tx_hash, 1, 100_000, 1, None, logs)
    return Tx(
        tx_hash,
        Address(sender),
        Address(VAULT),
        0,
        b"\x12\x34\x56\x78",
        0,
        500_000,
        2,
        1,
        None,
        number,
        receipt,
    )


def context(*txs: Tx) -> BlockContext:
    decoded = []
    for tx in txs:
        assert tx.receipt is not None
        for entry in tx.receipt.logs:
            found = ABI.decode_log(entry)
            assert found is not None
            decoded.append(DecodedLog(entry, "vault", found[0], found[1], tx))
    block = Block(1, Hash32("0x" + "bb" * 32), Hash32("0x" + "aa" * 32), 12, 1, txs)
    return BlockContext(1, block, {}, decoded, CONTRACTS)


def monitor(where: str = ROUND_TRIP, **extra: Any) -> TransactionMonitor:
    return TransactionMonitor(id="round-trip", kind="transaction", severity="critical", where=where, **extra)


def test_a_deposit_and_a_redemption_by_one_account_in_one_transaction_is_flagged() -> None:
    loop = tx_with(
        0,
        ATTACKER,
        (vault_log(DEPOSIT, ATTACKER, 19_250_000, 0, 0), vault_log(WITHDRAW, ATTACKER, 19_550_000, 0, 1)),
    )
    [finding] = TransactionDetector(monitor(), []).on_block(context(loop))
    assert finding.tx_hash == loop.hash and finding.monitor_id == "round-trip"
    assert finding.evidence["logs"] == ["vault.Deposit", "vault.Withdraw"]


def test_a_deposit_and_a_redemption_in_separate_transactions_of_one_block_are_not() -> None:
    deposit = tx_with(0, LP, (vault_log(DEPOSIT, LP, 1_000, 0, 0),))
    redeem = tx_with(1, LP, (vault_log(WITHDRAW, LP, 1_000, 1, 1),))
    other = tx_with(2, ATTACKER, (vault_log(DEPOSIT, ATTACKER, 5, 2, 2), vault_log(WITHDRAW, LP, 5, 2, 3)))
    assert TransactionDetector(monitor(), []).on_block(context(deposit, redeem, other)) == []


def test_each_log_carries_contract_event_args_address_and_index() -> None:
    where = (
        'size(logs) == 2 && logs[1].contract == "vault" && logs[1].event == "Withdraw" && '
        f'logs[1].address == "{VAULT}" && logs[1].index == 7 && logs[1].args.assets == 250 && '
        f'logs[0].args.account == "{ATTACKER}"'
    )
    tx = tx_with(
        0, ATTACKER, (vault_log(DEPOSIT, ATTACKER, 100, 0, 6), vault_log(WITHDRAW, ATTACKER, 250, 0, 7))
    )
    assert len(TransactionDetector(monitor(where), []).on_block(context(tx))) == 1
    # a transaction without protocol logs sees an empty list
    quiet = tx_with(1, LP, ())
    assert len(TransactionDetector(monitor("size(logs) == 0"), []).on_block(context(tx, quiet))) == 1


def test_only_monitors_that_read_logs_build_them() -> None:
    assert TransactionDetector(monitor(), []).reads_logs
    plain = TransactionDetector(monitor("tx.value > 0 || tx.status == 0"), [])
    assert not plain.reads_logs
    loop = tx_with(0, ATTACKER, (vault_log(DEPOSIT, ATTACKER, 1, 0, 0),))
    [finding] = TransactionDetector(monitor("tx.status == 1"), []).on_block(context(loop))
    assert "logs" not in finding.evidence


def test_logs_are_a_transaction_monitor_variable_only() -> None:
    with pytest.raises(DetectionError, match=r"unknown name\(s\) \['log'\]"):
        TransactionDetector(monitor("log.exists(l, l.event == 'Deposit')"), [])
    event = EventMonitor(id="e", kind="event", contract="vault", event="Deposit", where="size(logs) > 1")
    with pytest.raises(DetectionError, match="logs"):
        EventDetector(event, VAULT, DEPOSIT)


def test_the_pending_judge_gives_the_simulated_transaction_its_logs() -> None:
    logs = (vault_log(DEPOSIT, ATTACKER, 19_250_000, 0, 0), vault_log(WITHDRAW, ATTACKER, 19_550_000, 0, 1))
    pending = PendingTx(tx_with(0, ATTACKER, ()), seen_at_ms=0.0)
    judge = Judge(
        [TransactionDetector(monitor(), [])],
        InvariantSet([]),
        chain_id=1,
        abi=ABI,
        contracts=CONTRACTS,
        reads=[],
    )

    def simulated(status: int) -> SimulatedBlock:
        return SimulatedBlock(2, 24, "0x" + "cc" * 32, 1, SimulatedTx(status, 90_000, logs, None), [], [])

    [finding] = judge.judge(pending, simulated(1), observed_at_ms=0.0)
    assert finding.stage is FindingStage.PENDING and finding.tx_hash == pending.tx.hash
    assert finding.evidence["pending_fees"]["max_priority_fee_per_gas"] == 1
    assert judge.judge(pending, simulated(0), observed_at_ms=0.0) == []  # a revert changes nothing


def test_transactions_without_protocol_logs_share_one_answer_only_when_the_expression_reads_logs_alone() -> (
    None
):
    quiet = [tx_with(i, LP if i % 2 else ATTACKER, ()) for i in range(4)]
    logs_only = TransactionDetector(monitor("size(logs) == 0"), [])
    assert len(logs_only.on_block(context(*quiet))) == 4
    mixed = TransactionDetector(monitor(f'size(logs) == 0 && tx.from == "{LP}"'), [])
    assert [f.tx_hash for f in mixed.on_block(context(*quiet))] == [quiet[1].hash, quiet[3].hash]
