"""The Safe executor: propose a Safe transaction, collect owners' EIP-712 signatures, execute at threshold.

The service behind ``breakglass safe sign`` and the API endpoints: ``propose``, ``pending``,
``describe`` (exactly what a signer signs: the decoded call, the Safe, nonce and chain, and the EIP-712
Safe transaction hash computed by safe-eth-py), ``add_signature`` (verified: it must recover to a
current owner), ``execute_if_ready`` (sorted signatures, ``execTransaction`` sent by the guardian
relayer under an idempotency key, so a Safe transaction is executed at most once by breakglass).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from sqlalchemy import Float, Integer, String, Text, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.errors import ResponseError, StoreError
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.respond.calls import ContractCall, describe_call
from breakglass.respond.rpc import Rpc
from breakglass.store.db import Base

if TYPE_CHECKING:  # safe-eth-py (and py-evm under it) is imported when a Safe is used: start-up time
    from safe_eth.safe.safe_tx import SafeTx

    # The API process builds a SafeService without a relayer; the relayer imports the signer stack.
    from breakglass.respond.relayer import GuardianRelayer

__all__ = ["SAFE_VERSION", "SafeProposalRow", "SafeService", "SafeSignatureRow", "safe_abi"]

SAFE_VERSION = "1.4.1"
_EXEC = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
_ZERO = "0x0000000000000000000000000000000000000000"
Emit = Callable[[ActionEvent], Awaitable[None]]


def safe_abi(name: str = "Safe_V1_4_1") -> dict[str, Any]:
    """An ABI (and bytecode) file shipped inside safe-eth-py."""
    text = resources.files("safe_eth.eth.contracts.abis").joinpath(f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class SafeProposalRow(Base):
    __tablename__ = "respond_safe_proposals"

    safe_tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    safe: Mapped[str] = mapped_column(String(100))
    safe_address: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(Integer)
    safe_nonce: Mapped[int] = mapped_column(Integer)
    to: Mapped[str] = mapped_column(String(42))
    data: Mapped[str] = mapped_column(Text)
    contract: Mapped[str] = mapped_column(String(100))
    function: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(500))
    key: Mapped[str] = mapped_column(String(300))
    playbook: Mapped[str] = mapped_column(String(100), default="manual")
    action: Mapped[str] = mapped_column(String(100), default="manual")
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    created_at_ms: Mapped[float] = mapped_column(Float)
    executed_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)


class SafeSignatureRow(Base):
    __tablename__ = "respond_safe_signatures"

    safe_tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), primary_key=True)
    signature: Mapped[str] = mapped_column(String(132))
    at_ms: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class SafeRef:
    name: str
    address: str


def _selector(signature: str) -> bytes:
    return bytes(function_signature_to_4byte_selector(signature))


class SafeService:
    """Safe proposals of one database, for the Safes named in the configuration."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rpc: Rpc,
        safes: Mapping[str, str],
        *,
        relayer: GuardianRelayer | None = None,
        emit: Emit | None = None,
        execute: Callable[[str], Awaitable[ActionEvent | None]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._rpc = rpc
        self._safes = {name: to_checksum_address(address) for name, address in safes.items()}
        self._relayer = relayer
        self._emit = emit
        self.execute = execute
        """Executions sent by another process instead (the API's child process asks the pipeline's,
        whose relayer owns the guardian key's nonces: ``api/process.py``)."""

    async def _view(
        self, address: str, signature: str, out: Sequence[str], *args_types: tuple[str, Any]
    ) -> Any:
        data = _selector(signature) + (
            encode([t for t, _ in args_types], [v for _, v in args_types]) if args_types else b""
        )
        raw = await self._rpc.call("eth_call", {"to": address, "data": "0x" + data.hex()}, "latest")
        try:
            return decode(list(out), bytes.fromhex(raw[2:]))
        except (DecodingError, ValueError) as exc:
            raise ResponseError(f"{address} answered {signature} with {raw!r}: is it a Safe v1.4.1?") from exc

    async def owners(self, safe: str) -> list[str]:
        (owners,) = await self._view(self._address(safe), "getOwners()", ["address[]"])
        return [to_checksum_address(o) for o in owners]

    async def threshold(self, safe: str) -> int:
        (threshold,) = await self._view(self._address(safe), "getThreshold()", ["uint256"])
        return int(threshold)

    def _address(self, safe: str) -> str:
        try:
            return self._safes[safe]
        except KeyError:
            raise ResponseError(
                f"no Safe named {safe!r} (known: {', '.join(sorted(self._safes)) or 'none'})"
            ) from None

    def _safe_tx(self, row: SafeProposalRow, signatures: bytes = b"") -> SafeTx:
        from safe_eth.safe.safe_tx import SafeTx

        # No client: nonce, version and chain id are given, so the hash is computed offline.
        return SafeTx(
            None,  # type: ignore[arg-type]
            to_checksum_address(row.safe_address),
            to_checksum_address(row.to),
            0,
            bytes.fromhex(row.data[2:]),
            0,
            0,
            0,
            0,
            None,
            None,
            signatures=signatures,
            safe_nonce=row.safe_nonce,
            safe_version=SAFE_VERSION,
            chain_id=row.chain_id,
        )

    async def propose(
        self,
        safe: str,
        call: ContractCall,
        *,
        key: str,
        playbook: str = "manual",
        action: str = "manual",
        fingerprint: str = "",
    ) -> SafeProposalRow:
        """Record a Safe transaction calling ``call`` (value 0, CALL). Its Safe nonce follows pending ones."""
        address = self._address(safe)
        chain_id = int(await self._rpc.call("eth_chainId"), 16)
        (chain_nonce,) = await self._view(address, "nonce()", ["uint256"])
        waiting = [p.safe_nonce for p in await self.pending(safe)]
        nonce = max([int(chain_nonce), *(n + 1 for n in waiting)])
        row = SafeProposalRow(
            safe_tx_hash="",
            safe=safe,
            safe_address=address,
            chain_id=chain_id,
            safe_nonce=nonce,
            to=call.address,
            data="0x" + call.data.hex(),
            contract=call.contract,
            function=call.signature,
            target=call.target,
            key=key,
            playbook=playbook,
            action=action,
            fingerprint=fingerprint,
            created_at_ms=time.time() * 1000,
        )
        row.safe_tx_hash = "0x" + bytes(self._safe_tx(row).safe_tx_hash).hex()
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record Safe proposal {row.safe_tx_hash}: {exc}") from exc
        return row

    async def pending(self, safe: str | None = None) -> list[SafeProposalRow]:
        query = select(SafeProposalRow).where(SafeProposalRow.executed_tx_hash.is_(None))
        if safe is not None:
            query = query.where(SafeProposalRow.safe == safe)
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(SafeProposalRow.safe_nonce)))

    async def _get(self, safe_tx_hash: str) -> tuple[SafeProposalRow, list[SafeSignatureRow]]:
        async with self._sessions() as session:
            row = await session.get(SafeProposalRow, safe_tx_hash.lower())
            if row is None:
                raise ResponseError(f"no Safe proposal {safe_tx_hash}")
            sigs = await session.scalars(
                select(SafeSignatureRow).where(SafeSignatureRow.safe_tx_hash == row.safe_tx_hash)
            )
            return row, list(sigs)

    async def describe(self, safe_tx_hash: str) -> dict[str, Any]:
        """Everything a signer must see before signing, as plain data (the CLI and the API render it)."""
        row, sigs = await self._get(safe_tx_hash)
        safe_tx = self._safe_tx(row)
        types = row.function[row.function.index("(") + 1 : -1]
        args = decode([t for t in types.split(",") if t], bytes.fromhex(row.data[10:])) if types else ()
        return {
            "safe": row.safe,
            "safe_address": row.safe_address,
            "chain_id": row.chain_id,
            "safe_nonce": row.safe_nonce,
            "to": row.to,
            "contract": row.contract,
            "function": row.function,
            "call": describe_call(row.contract, row.function.split("(")[0], args),
            "value": 0,
            "operation": "CALL",
            "data": row.data,
            "safe_tx_hash": row.safe_tx_hash,
            "eip712": _plain(safe_tx.eip712_structured_data),
            "threshold": await self.threshold(row.safe),
            "owners": await self.owners(row.safe),
            "signed_by": sorted(s.owner for s in sigs),
            "executed_tx_hash": row.executed_tx_hash,
        }

    async def add_signature(self, safe_tx_hash: str, signature: bytes) -> str:
        """Verify ``signature`` (65-byte EOA signature of the Safe tx hash) is an owner's; store it."""
        row, _ = await self._get(safe_tx_hash)
        if len(signature) != 65:
            raise ResponseError(f"a Safe signature is 65 bytes (r, s, v), got {len(signature)}")
        from safe_eth.safe.safe_signature import SafeSignature

        parsed = SafeSignature.parse_signature(signature, bytes.fromhex(row.safe_tx_hash[2:]))
        if len(parsed) != 1 or signature[64] not in (27, 28):
            raise ResponseError(
                "only EOA signatures (v = 27 or 28) over the Safe transaction hash are accepted"
            )
        owner = to_checksum_address(parsed[0].owner)
        if owner not in await self.owners(row.safe):
            raise ResponseError(f"signature recovers to {owner}, which is not an owner of Safe {row.safe!r}")
        try:
            async with self._sessions() as session, session.begin():
                await session.merge(
                    SafeSignatureRow(
                        safe_tx_hash=row.safe_tx_hash,
                        owner=owner,
                        signature="0x" + signature.hex(),
                        at_ms=time.time() * 1000,
                    )
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store signature for {row.safe_tx_hash}: {exc}") from exc
        if self._emit is not None:
            await self._emit(self._event(row, ActionStep.SAFE_SIGNED, {"owner": owner}))
        return owner

    def _event(self, row: SafeProposalRow, step: ActionStep, detail: dict[str, Any]) -> ActionEvent:
        return ActionEvent(
            step,
            row.key,
            row.playbook,
            row.action,
            row.target,
            row.fingerprint,
            detail={"safe": row.safe, "safe_tx_hash": row.safe_tx_hash, **detail},
            at_ms=time.time() * 1000,
        )

    async def execute_if_ready(self, safe_tx_hash: str) -> ActionEvent | None:
        """Send ``execTransaction`` once the threshold is met (None before). Returns the SUBMITTED event."""
        if self.execute is not None:
            return await self.execute(safe_tx_hash)
        row, sigs = await self._get(safe_tx_hash)
        if row.executed_tx_hash is not None:
            return None
        owners = set(await self.owners(row.safe))
        valid = sorted((s for s in sigs if s.owner in owners), key=lambda s: int(s.owner, 16))
        if len(valid) < await self.threshold(row.safe):
            return None
        if self._relayer is None:
            raise ResponseError("no guardian relayer configured to submit Safe executions")
        packed = b"".join(bytes.fromhex(s.signature[2:]) for s in valid)
        args = [row.to, 0, bytes.fromhex(row.data[2:]), 0, 0, 0, 0, _ZERO, _ZERO, packed]
        types = _EXEC[_EXEC.index("(") + 1 : -1].split(",")
        call = ContractCall(
            f"safe:{row.safe}",
            row.safe_address,
            "execTransaction",
            _EXEC,
            (row.target,),
            _selector(_EXEC) + encode(types, args),
        )
        # Its own key: the execution is sent once, and its confirmation contains the incident (``via``).
        intent = replace(
            self._event(row, ActionStep.INTENT, {"via": f"safe:{row.safe}"}),
            key=f"safe-exec/{row.safe_tx_hash}",
        )
        event = await self._relayer.execute(intent, call)
        if event.step is ActionStep.SUBMITTED:
            async with self._sessions() as session, session.begin():
                stored = await session.get(SafeProposalRow, row.safe_tx_hash)
                assert stored is not None
                stored.executed_tx_hash = event.tx_hash
        return event


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
