"""Signing and sending venue transactions from local keys, the way real users do: EIP-1559, raw.

A transaction that reverts is still mined and returned as a receipt with status 0; callers decide
whether that is an error (deployment) or an observation (a scenario blocked by a pause).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxParams, TxReceipt, Wei

from breakglass.errors import DevnetError

__all__ = ["PRIORITY_FEE_WEI", "SentTx", "build_tx", "call_data", "send_signed", "sign_tx", "transact"]

PRIORITY_FEE_WEI = 1_500_000_000
"""A typical mainnet tip (1.5 gwei); defenders outbid it to land a pause first."""


@dataclass(frozen=True, slots=True)
class SentTx:
    tx_hash: HexBytes
    receipt: TxReceipt | None

    @property
    def ok(self) -> bool:
        return self.receipt is not None and self.receipt["status"] == 1


def build_tx(
    w3: Web3,
    sender: str,
    *,
    to: str | None,
    data: bytes | str = b"",
    value: int = 0,
    gas: int = 3_000_000,
    nonce: int | None = None,
    priority_fee: int = PRIORITY_FEE_WEI,
    base_fee: int | None = None,
    chain_id: int | None = None,
) -> TxParams:
    """An EIP-1559 transaction; pass ``base_fee``/``chain_id`` to save the RPC round trips."""
    if base_fee is None:
        base_fee = int(w3.eth.get_block("pending").get("baseFeePerGas", 1_000_000_000))
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id if chain_id is not None else w3.eth.chain_id,
        "from": sender,
        "nonce": nonce if nonce is not None else w3.eth.get_transaction_count(sender, "pending"),  # type: ignore[arg-type]
        "gas": gas,
        "maxPriorityFeePerGas": priority_fee,
        "maxFeePerGas": 2 * base_fee + priority_fee,
        "value": value,
        "data": HexBytes(data),
    }
    if to is not None:
        tx["to"] = Web3.to_checksum_address(to)
    return tx  # type: ignore[return-value]


def sign_tx(account: LocalAccount, tx: TxParams) -> HexBytes:
    signed = account.sign_transaction(dict(tx))  # type: ignore[arg-type]
    return HexBytes(signed.raw_transaction)


def send_signed(w3: Web3, raw: HexBytes, *, wait: bool = True, timeout: float = 60) -> SentTx:
    tx_hash = w3.eth.send_raw_transaction(raw)
    if not wait:
        return SentTx(tx_hash, None)
    return SentTx(tx_hash, w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout))


def call_data(fn: ContractFunction) -> str:
    return str(fn._encode_transaction_data())


def transact(
    w3: Web3,
    account: LocalAccount,
    fn: ContractFunction,
    *,
    value: int = 0,
    gas: int | None = None,
    check: bool = True,
) -> TxReceipt:
    """Sign and send one contract call from ``account``; raise on revert when ``check``."""
    if gas is None:
        gas = int(fn.estimate_gas({"from": account.address, "value": Wei(value)}) * 1.3) + 30_000
    tx = build_tx(w3, account.address, to=fn.address, data=call_data(fn), value=value, gas=gas)
    sent = send_signed(w3, sign_tx(account, tx))
    assert sent.receipt is not None
    if check and sent.receipt["status"] != 1:
        raise DevnetError(f"{fn.fn_name} from {account.address} reverted ({sent.tx_hash.hex()})")
    return sent.receipt
