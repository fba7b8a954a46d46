"""Flash-loan-style funding of a probed contract: token balances written by state override.

An attack contract is often funded just before it strikes (or borrows within its strike): probed
before that, it has nothing to attack with. ``attack_simulation.funds`` names tokens and amounts; each
probe then runs with the contract holding them. The balance is a storage slot of the token: for a
Solidity ``mapping(address => uint256)`` at slot ``s`` it is ``keccak(pad(holder) . pad(s))`` (Vyper:
``keccak(pad(s) . pad(holder))``). ``BalanceSlots.find`` tries slots 0-31 in both layouts in one
JSON-RPC batch of ``eth_call``s with a state override and keeps the one ``balanceOf`` reads back; a
token whose balance is not a plain mapping (rebasing, shares) is not funded, said once in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_utils.crypto import keccak

from breakglass.chain.rpc import RpcClient
from breakglass.errors import ChainError
from breakglass.logs import get_logger

__all__ = ["BalanceSlots", "balance_slot"]

log = get_logger(__name__)

SLOTS = 32
_MARK = 0x5EED_0F_F00D
_PROBE = "0x" + keccak(b"breakglass/attack-simulation/balance-probe")[12:].hex()
_BALANCE_OF = bytes.fromhex("70a08231")


def balance_slot(holder: str, slot: int, vyper: bool = False) -> str:
    """The storage key of ``holder``'s balance in a mapping at ``slot``."""
    key, index = bytes.fromhex(holder[2:]).rjust(32, b"\0"), slot.to_bytes(32, "big")
    return "0x" + keccak(index + key if vyper else key + index).hex()


class BalanceSlots:
    """Finds and remembers each token's balance mapping; builds the overrides that fund a holder."""

    def __init__(self, rpc: RpcClient, funds: Mapping[str, int]) -> None:
        """``funds``: token address -> amount (base units) a probed contract is given."""
        self.rpc = rpc
        self.funds = {t.lower(): amount for t, amount in funds.items()}
        self.slots: dict[str, tuple[int, bool] | None] = {}
        """token -> (slot, vyper layout), None when none was found"""

    async def find(self) -> None:
        """Look for every funded token's mapping not looked for yet (one batch for all)."""
        todo = [t for t in self.funds if t not in self.slots]
        if not todo:
            return
        layouts = [(s, v) for v in (False, True) for s in range(SLOTS)]
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for token in todo:
            data = "0x" + (_BALANCE_OF + bytes.fromhex(_PROBE[2:]).rjust(32, b"\0")).hex()
            for slot, vyper in layouts:
                diff = {balance_slot(_PROBE, slot, vyper): "0x" + _MARK.to_bytes(32, "big").hex()}
                calls.append(
                    ("eth_call", ({"to": token, "data": data}, "latest", {token: {"stateDiff": diff}}))
                )
        try:
            answers = await self.rpc.batch(calls, strict=False)
        except ChainError as exc:
            log.warning("token balance slots not looked for", error=str(exc))
            return
        for k, token in enumerate(todo):
            mine = answers[k * len(layouts) : (k + 1) * len(layouts)]
            found = next(
                (
                    layout
                    for layout, answer in zip(layouts, mine, strict=True)
                    if isinstance(answer, str)
                    and answer.startswith("0x")
                    and len(answer) >= 66
                    and int(answer[:66], 16) == _MARK
                ),
                None,
            )
            self.slots[token] = found
            if found is None:
                log.warning("token balance is no plain mapping; probes are not funded with it", token=token)

    def overrides(self, holder: str) -> dict[str, dict[str, Any]]:
        """``eth_simulateV1`` state overrides giving ``holder`` every funded token's amount."""
        out: dict[str, dict[str, Any]] = {}
        for token, amount in self.funds.items():
            layout = self.slots.get(token)
            if layout is None:
                continue
            slot = balance_slot(holder, *layout)
            out[token] = {"stateDiff": {slot: "0x" + amount.to_bytes(32, "big").hex()}}
        return out
