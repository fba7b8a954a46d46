"""Raw JSON-RPC answers (TypedDicts) decoded at the edge into the frozen types of ``breakglass.domain``.

Anything that does not decode raises ``ChainDataError`` naming the method and the field, so a broken
or lying endpoint is reported precisely instead of surfacing as a ``KeyError`` three stages later.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypedDict

import msgspec
from eth_utils.address import to_checksum_address

from breakglass.domain import Address, Block, Hash32, Log, Receipt, Tx
from breakglass.errors import ChainDataError

__all__ = [
    "RawBlock",
    "RawLog",
    "RawReceipt",
    "RawTx",
    "decode_block",
    "decode_receipt",
    "decode_window",
    "hex_int",
]


class RawLog(TypedDict, total=False):
    address: str
    topics: list[str]
    data: str
    logIndex: str
    transactionHash: str
    transactionIndex: str
    blockNumber: str
    blockHash: str
    removed: bool


class RawReceipt(TypedDict, total=False):
    transactionHash: str
    status: str
    gasUsed: str
    effectiveGasPrice: str
    contractAddress: str | None
    logs: list[RawLog]


class RawTx(TypedDict, total=False):
    hash: str
    to: str | None
    value: str
    input: str
    nonce: str
    gas: str
    maxFeePerGas: str
    maxPriorityFeePerGas: str
    gasPrice: str
    transactionIndex: str
    blockNumber: str


RawTx.__annotations__["from"] = str  # ``from`` is a keyword; TypedDict's functional form is uglier


class RawBlock(TypedDict, total=False):
    number: str
    hash: str
    parentHash: str
    timestamp: str
    baseFeePerGas: str
    transactions: list[RawTx]
    withdrawals: list[dict[str, str]]


def hex_int(value: Any, method: str, field: str) -> int:
    """A JSON-RPC quantity (``0x``-hex string) as int."""
    return _int(value, method, field, "")


# The decoders below take the location as (where, key) and join them only to report an error: a
# backfill decodes every field of thousands of blocks, and formatting each location cost more than
# the decoding itself.


def _int(value: Any, method: str, where: str, key: str) -> int:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise ChainDataError(method, f"{where}{key}", value, "not a hex quantity")


def _hex_bytes(value: Any, method: str, where: str, key: str) -> bytes:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise ChainDataError(method, f"{where}{key}", value, "not hex data")


def _hash(value: Any, method: str, where: str, key: str) -> Hash32:
    if isinstance(value, str) and len(value) == 66 and value.startswith("0x"):
        return Hash32(value.lower())
    raise ChainDataError(method, f"{where}{key}", value, "not a 32-byte hash")


@functools.lru_cache(maxsize=65536)
def _checksum(value: str) -> Address:
    # keccak per address is the decoder's hottest cost; the same few addresses recur in every block
    return Address(to_checksum_address(value))


def _address(value: Any, method: str, where: str, key: str) -> Address:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        try:
            return _checksum(value)
        except ValueError:
            pass
    raise ChainDataError(method, f"{where}{key}", value, "not an address")


def _opt_int(raw: dict[str, Any], key: str, method: str, where: str) -> int | None:
    value = raw.get(key)
    return None if value is None else _int(value, method, where, key)


def _get(raw: dict[str, Any], key: str, method: str, where: str) -> Any:
    try:
        return raw[key]
    except KeyError:
        raise ChainDataError(method, f"{where}{key}", None, "missing") from None


def decode_log(raw: RawLog, method: str, where: str) -> Log:
    r: dict[str, Any] = raw  # type: ignore[assignment]
    if not isinstance(r, dict):
        raise ChainDataError(method, where.rstrip(".") or "log", r, "not an object")
    topics = _get(r, "topics", method, where)
    if not isinstance(topics, list):
        raise ChainDataError(method, f"{where}topics", topics, "not a list")
    return Log(
        address=_address(_get(r, "address", method, where), method, where, "address"),
        topics=tuple(_hash(t, method, where, f"topics[{i}]") for i, t in enumerate(topics)),
        data=_hex_bytes(_get(r, "data", method, where), method, where, "data"),
        log_index=_int(_get(r, "logIndex", method, where), method, where, "logIndex"),
        tx_hash=_hash(_get(r, "transactionHash", method, where), method, where, "transactionHash"),
        tx_index=_int(_get(r, "transactionIndex", method, where), method, where, "transactionIndex"),
        block_number=_int(_get(r, "blockNumber", method, where), method, where, "blockNumber"),
        block_hash=_hash(_get(r, "blockHash", method, where), method, where, "blockHash"),
        removed=bool(r.get("removed", False)),
    )


def decode_receipt(raw: RawReceipt, method: str = "eth_getBlockReceipts", where: str = "") -> Receipt:
    r: dict[str, Any] = raw  # type: ignore[assignment]
    if not isinstance(r, dict):
        raise ChainDataError(method, where.rstrip(".") or "receipt", r, "not an object")
    logs = _get(r, "logs", method, where)
    if not isinstance(logs, list):
        raise ChainDataError(method, f"{where}logs", logs, "not a list")
    created = r.get("contractAddress")
    price = r.get("effectiveGasPrice")
    return Receipt(
        tx_hash=_hash(_get(r, "transactionHash", method, where), method, where, "transactionHash"),
        status=_int(_get(r, "status", method, where), method, where, "status"),
        gas_used=_int(_get(r, "gasUsed", method, where), method, where, "gasUsed"),
        effective_gas_price=0 if price is None else _int(price, method, where, "effectiveGasPrice"),
        contract_address=None if created is None else _address(created, method, where, "contractAddress"),
        logs=tuple(decode_log(log, method, f"{where}logs[{i}].") for i, log in enumerate(logs)),
    )


def decode_tx(raw: RawTx, receipt: Receipt | None, method: str, where: str) -> Tx:
    r: dict[str, Any] = raw  # type: ignore[assignment]
    to = r.get("to")
    return Tx(
        hash=_hash(_get(r, "hash", method, where), method, where, "hash"),
        sender=_address(_get(r, "from", method, where), method, where, "from"),
        to=None if to is None else _address(to, method, where, "to"),
        value=_int(_get(r, "value", method, where), method, where, "value"),
        input=_hex_bytes(_get(r, "input", method, where), method, where, "input"),
        nonce=_int(_get(r, "nonce", method, where), method, where, "nonce"),
        gas=_int(_get(r, "gas", method, where), method, where, "gas"),
        max_fee_per_gas=_opt_int(r, "maxFeePerGas", method, where),
        max_priority_fee_per_gas=_opt_int(r, "maxPriorityFeePerGas", method, where),
        gas_price=_opt_int(r, "gasPrice", method, where),
        index=_opt_int(r, "transactionIndex", method, where) or 0,
        receipt=receipt,
    )


def decode_block(raw: RawBlock | None, receipts: list[RawReceipt] | None) -> Block:
    """A full block (``eth_getBlockByNumber(n, true)``) joined with its receipts by transaction hash."""
    method = "eth_getBlockByNumber"
    if raw is None:
        raise ChainDataError(method, "result", None, "block not found")
    r: dict[str, Any] = raw  # type: ignore[assignment]
    if not isinstance(r, dict):
        raise ChainDataError(method, "result", r, "not an object")
    if receipts is not None and not isinstance(receipts, list):
        raise ChainDataError("eth_getBlockReceipts", "result", receipts, "not a list")
    txs = _get(r, "transactions", method, "")
    if not isinstance(txs, list):
        raise ChainDataError(method, "transactions", txs, "not a list")
    base_fee = r.get("baseFeePerGas")
    withdrawals = r.get("withdrawals")
    if withdrawals is not None and not isinstance(withdrawals, list):
        raise ChainDataError(method, "withdrawals", withdrawals, "not a list")
    return Block(
        number=_int(_get(r, "number", method, ""), method, "", "number"),
        hash=_hash(_get(r, "hash", method, ""), method, "", "hash"),
        parent_hash=_hash(_get(r, "parentHash", method, ""), method, "", "parentHash"),
        timestamp=_int(_get(r, "timestamp", method, ""), method, "", "timestamp"),
        base_fee=None if base_fee is None else _int(base_fee, method, "", "baseFeePerGas"),
        # most blocks of a quiet chain have none: nothing to join
        transactions=_transactions(txs, receipts, method) if txs or receipts else (),
        withdrawals=len(withdrawals or ()),
    )


def _transactions(txs: list[Any], receipts: list[RawReceipt] | None, method: str) -> tuple[Tx, ...]:
    by_hash: dict[str, Receipt] = {}
    if receipts is not None:
        for i, raw_receipt in enumerate(receipts):
            receipt = decode_receipt(raw_receipt, "eth_getBlockReceipts", f"[{i}].")
            by_hash[receipt.tx_hash] = receipt
    decoded: list[Tx] = []
    for i, raw_tx in enumerate(txs):
        if not isinstance(raw_tx, dict):
            raise ChainDataError(method, f"transactions[{i}]", raw_tx, "not a full transaction object")
        tx_hash = str(raw_tx.get("hash", "")).lower()
        receipt_of = by_hash.get(tx_hash)
        if receipts is not None and receipt_of is None:
            raise ChainDataError("eth_getBlockReceipts", "result", tx_hash, "no receipt for this transaction")
        tx_raw: RawTx = raw_tx  # type: ignore[assignment]
        decoded.append(decode_tx(tx_raw, receipt_of, method, f"transactions[{i}]."))
    return tuple(decoded)


class _WindowLog(msgspec.Struct):
    address: str
    topics: list[str]
    data: str
    logIndex: str
    transactionHash: str
    transactionIndex: str
    blockNumber: str
    blockHash: str
    removed: bool | None = None


class _WindowReceipt(msgspec.Struct):
    transactionHash: str
    status: str
    gasUsed: str
    logs: list[_WindowLog]
    effectiveGasPrice: str | None = None
    contractAddress: str | None = None


class _WindowTx(msgspec.Struct, rename={"sender": "from"}):
    hash: str
    sender: str
    value: str
    input: str
    nonce: str
    gas: str
    to: str | None = None
    maxFeePerGas: str | None = None
    maxPriorityFeePerGas: str | None = None
    gasPrice: str | None = None
    transactionIndex: str | None = None


class _Header(msgspec.Struct):
    """What a window's decoder keeps of a block answer: its header and the fields of its
    transactions a ``Tx`` needs, as the node wrote them (every other field, e.g. the 512-byte logs
    bloom, is skipped without being built)."""

    number: str
    hash: str
    parentHash: str
    timestamp: str
    transactions: list[_WindowTx]
    baseFeePerGas: str | None = None
    withdrawals: list[msgspec.Raw] | None = None


class _BlockAnswer(msgspec.Struct):
    id: int
    result: _Header


class _ReceiptsAnswer(msgspec.Struct):
    id: int
    result: list[_WindowReceipt]


@functools.lru_cache(maxsize=8)
def _window_decoder(blocks: int) -> msgspec.json.Decoder[Any]:
    """A decoder of the whole answer to a window of ``blocks`` blocks: block, receipts, block, ...;
    an answer of another shape (an error, a missing block, another length, a field of another
    type) fails to decode."""
    shape: Any = tuple[tuple([_BlockAnswer, _ReceiptsAnswer] * blocks)]  # type: ignore[misc]
    return msgspec.json.Decoder(shape)


# The window's decoders below give exactly what ``decode_block`` gives on the same answer
# (``tests/unit/chain/test_decode_window.py``) with the same checks, on fields msgspec has already
# found and typed; any check that fails declines the window (``decode_window``), and the ordinary
# path then reports it precisely, so they report no location.
_W = "eth_getBlockByNumber"


def _window_log(log: _WindowLog) -> Log:
    return Log(
        address=_address(log.address, _W, "", "address"),
        topics=tuple([_hash(t, _W, "", "topics") for t in log.topics]),
        data=_hex_bytes(log.data, _W, "", "data"),
        log_index=_int(log.logIndex, _W, "", "logIndex"),
        tx_hash=_hash(log.transactionHash, _W, "", "transactionHash"),
        tx_index=_int(log.transactionIndex, _W, "", "transactionIndex"),
        block_number=_int(log.blockNumber, _W, "", "blockNumber"),
        block_hash=_hash(log.blockHash, _W, "", "blockHash"),
        removed=bool(log.removed),
    )


def _window_receipt(receipt: _WindowReceipt) -> Receipt:
    created = receipt.contractAddress
    price = receipt.effectiveGasPrice
    return Receipt(
        tx_hash=_hash(receipt.transactionHash, _W, "", "transactionHash"),
        status=_int(receipt.status, _W, "", "status"),
        gas_used=_int(receipt.gasUsed, _W, "", "gasUsed"),
        effective_gas_price=0 if price is None else _int(price, _W, "", "effectiveGasPrice"),
        contract_address=None if created is None else _address(created, _W, "", "contractAddress"),
        logs=tuple([_window_log(log) for log in receipt.logs]),
    )


def _window_opt_int(value: str | None, key: str) -> int | None:
    return None if value is None else _int(value, _W, "", key)


def _window_tx(tx: _WindowTx, receipt: Receipt | None) -> Tx:
    to = tx.to
    return Tx(
        hash=_hash(tx.hash, _W, "", "hash"),
        sender=_address(tx.sender, _W, "", "from"),
        to=None if to is None else _address(to, _W, "", "to"),
        value=_int(tx.value, _W, "", "value"),
        input=_hex_bytes(tx.input, _W, "", "input"),
        nonce=_int(tx.nonce, _W, "", "nonce"),
        gas=_int(tx.gas, _W, "", "gas"),
        max_fee_per_gas=_window_opt_int(tx.maxFeePerGas, "maxFeePerGas"),
        max_priority_fee_per_gas=_window_opt_int(tx.maxPriorityFeePerGas, "maxPriorityFeePerGas"),
        gas_price=_window_opt_int(tx.gasPrice, "gasPrice"),
        index=_window_opt_int(tx.transactionIndex, "transactionIndex") or 0,
        receipt=receipt,
    )


def _window_block(header: _Header, receipts: list[_WindowReceipt]) -> Block:
    """A block of a window's answer, its transactions joined with their receipts by hash as
    ``decode_block`` joins them; a quiet one straight from its header (nothing to join)."""
    transactions: tuple[Tx, ...] = ()
    if header.transactions or receipts:
        by_hash: dict[str, Receipt] = {}
        for raw_receipt in receipts:
            receipt = _window_receipt(raw_receipt)
            by_hash[receipt.tx_hash] = receipt
        decoded: list[Tx] = []
        for raw_tx in header.transactions:
            receipt_of = by_hash.get(raw_tx.hash.lower())
            if receipt_of is None:
                raise ChainDataError("eth_getBlockReceipts", "result", raw_tx.hash, "no receipt")
            decoded.append(_window_tx(raw_tx, receipt_of))
        transactions = tuple(decoded)
    base_fee = header.baseFeePerGas
    return Block(
        number=_int(header.number, _W, "", "number"),
        hash=_hash(header.hash, _W, "", "hash"),
        parent_hash=_hash(header.parentHash, _W, "", "parentHash"),
        timestamp=_int(header.timestamp, _W, "", "timestamp"),
        base_fee=None if base_fee is None else _int(base_fee, _W, "", "baseFeePerGas"),
        transactions=transactions,
        withdrawals=len(header.withdrawals or ()),
    )


def decode_window(numbers: Sequence[int], first_id: int, body: bytes) -> list[Block] | None:
    """The blocks of an undecoded batch answer to ``eth_getBlockByNumber(n, true)`` then
    ``eth_getBlockReceipts(n)`` for each of ``numbers`` (ids from ``first_id`` on, in that order:
    ``RpcClient.batch_raw``). None when it is not that usual answer (an error, a missing block, an
    answer out of order, data that does not decode): the caller fetches the window the ordinary way,
    which retries, learns or reports precisely what went wrong.

    Parsed into typed structs that keep only what a ``Block`` needs, transactions, receipts and logs
    included: on near-empty blocks this costs a fifth of parsing the answer into dicts, which is
    most of what a backfill spends on such a block (``docs/detection.md``, *Backfill*)."""
    if not numbers:
        return None
    try:
        answers = _window_decoder(len(numbers)).decode(body)
    except msgspec.DecodeError:  # ValidationError included: not the usual answer
        return None
    for i, answer in enumerate(answers):
        if answer.id != first_id + i:
            return None
    try:
        blocks = [_window_block(answers[i].result, answers[i + 1].result) for i in range(0, len(answers), 2)]
    except ChainDataError:
        return None
    for block, number in zip(blocks, numbers, strict=True):
        if block.number != number:
            return None
    return blocks
