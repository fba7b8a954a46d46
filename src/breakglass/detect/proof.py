"""State reads that show which block's state the node ran them on, checked against the block claimed.

A node asked for block N's state does not always answer with it: anvil runs a read of its head on the
live state while it mines the next block (the calls then see block N+1's state, sometimes N-1's,
under block N's number and timestamp); a load-balanced provider may send the request to a node on
another head or branch. One wrong "still broken" read hides the next breach (an invariant fires
once per breach), so every read is checked.

All of a block's view calls go in one ``eth_call`` of ``BlockReader.read`` (contracts/reads), pinned
to the block's hash (EIP-1898). The reader is never deployed: its runtime code is placed at
``READER`` by a state override, as is a plain slot reader over the EIP-2935 history contract. In the
same EVM execution as the calls, the reader returns the block environment (number, parent hash) and,
on chains with EIP-2935, the history slots of the parent and of the block itself: on block N's own
state the parent's slot holds the parent hash (written at the start of N) and the block's slot does
not yet hold N's hash (written at the start of N+1). ``check`` compares all of it with the block.
Where the chain has no EIP-2935 (the slots read zero) only the environment is checked. A node that
refuses state overrides cannot run the reader: the engine then reads as before and says once that
its reads are not verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError

from breakglass.detect.reads import ReadCall
from breakglass.domain import Block
from breakglass.errors import RpcError

__all__ = ["HISTORY", "READER", "BlockProof", "ProvenReads"]

READER = "0x00000000000000000000000000000000b10cc0de"
"""Where the reader's code is placed (by override, in the eth_call only)."""
HISTORY = "0x0000F90827F1C53a10cb7A02335B175320002935"
"""EIP-2935's block-hash history contract (Prague and later)."""
_SLOT_READER = "0x6000355460005260206000f3"  # return sload(calldataload(0))
_SELECTOR = bytes.fromhex("762eaab3")  # read((address,bytes)[])
_OUTPUT = ["uint256", "bytes32", "bytes32", "bytes32", "(bool,bytes)[]"]
_ZERO = "0x" + "00" * 32

READER_CODE = (
    "0x608060405234801561000f575f5ffd5b5060043610610029575f3560e01c8063762eaab31461002d575b5f5ffd5b61"
    "004061003b3660046102fc565b61005a565b60405161005195949392919061036d565b60405180910390f35b435f8080"
    "6060841561009757610071600186610424565b409350610094611fff610085600188610424565b61008f919061044956"
    "5b61021c565b92505b6100a661008f611fff87610449565b91508567ffffffffffffffff8111156100c1576100c16104"
    "68565b60405190808252806020026020018201604052801561010657816020015b604080518082019091525f81526060"
    "60208201528152602001906001900390816100df5790505b5090505f5b86811015610211575f5f898984818110610127"
    "5761012761047c565b90506020028101906101399190610490565b6101479060208101906104ae565b6001600160a01b"
    "03168a8a858181106101625761016261047c565b90506020028101906101749190610490565b61018290602081019061"
    "04db565b604051610190929190610525565b5f604051808303815f865af19150503d805f81146101c957604051915060"
    "1f19603f3d011682016040523d82523d5f602084013e6101ce565b606091505b50915091506040518060400160405280"
    "8315158152602001828152508484815181106101fc576101fc61047c565b602090810291909101015250506001016101"
    "0b565b509295509295909350565b5f71f90827f1c53a10cb7a02335b1753200029353b810361023e57505f919050565b"
    "5f5f71f90827f1c53a10cb7a02335b1753200029356001600160a01b03168460405160200161026f9181526020019056"
    "5b60408051601f198184030181529082905261028991610534565b5f60405180830381855afa9150503d805f81146102"
    "c1576040519150601f19603f3d011682016040523d82523d5f602084013e6102c6565b606091505b5091509150818015"
    "6102d9575080516020145b156102f557808060200190518101906102f2919061054a565b92505b5050919050565b5f5f"
    "6020838503121561030d575f5ffd5b823567ffffffffffffffff811115610323575f5ffd5b8301601f81018513610333"
    "575f5ffd5b803567ffffffffffffffff811115610349575f5ffd5b8560208260051b840101111561035d575f5ffd5b60"
    "20919091019590945092505050565b5f60a0820187835286602084015285604084015284606084015260a06080840152"
    "80845180835260c08501915060c08160051b8601019250602086015f5b828110156104145760bf198786030184528151"
    "805115158652602081015190506040602087015280518060408801528060208301606089015e5f606082890101526060"
    "601f19601f830116880101965050506020820191506020840193506001810190506103ab565b50929a99505050505050"
    "50505050565b8181038181111561044357634e487b7160e01b5f52601160045260245ffd5b92915050565b5f82610463"
    "57634e487b7160e01b5f52601260045260245ffd5b500690565b634e487b7160e01b5f52604160045260245ffd5b634e"
    "487b7160e01b5f52603260045260245ffd5b5f8235603e198336030181126104a4575f5ffd5b9190910192915050565b"
    "5f602082840312156104be575f5ffd5b81356001600160a01b03811681146104d4575f5ffd5b9392505050565b5f5f83"
    "35601e198436030181126104f0575f5ffd5b83018035915067ffffffffffffffff82111561050a575f5ffd5b60200191"
    "503681900382131561051e575f5ffd5b9250929050565b818382375f9101908152919050565b5f82518060208501845e"
    "5f920191825250919050565b5f6020828403121561055a575f5ffd5b505191905056fea264697066735822122060d05d"
    "b809be473a2dc15c5b97918ce0b2ab5e4bbde669f977e45ce00bed5c2264736f6c634300081e0033"
)
"""Runtime code of contracts/reads/BlockReader.sol as compiled by the pinned solc-js (a test checks it)."""


@dataclass(frozen=True, slots=True)
class BlockProof:
    """What the reader saw of the block it ran on."""

    number: int
    parent: str
    history_parent: str
    history_self: str


class ProvenReads:
    """The one ``eth_call`` that reads ``calls`` at a block with its proof, and the check of the answer."""

    def __init__(self, calls: Sequence[ReadCall]) -> None:
        self.calls = list(calls)
        self._data = (
            "0x"
            + (
                _SELECTOR + encode(["(address,bytes)[]"], [[(c.address, c.calldata) for c in self.calls]])
            ).hex()
        )
        self.history = False
        """whether this chain keeps EIP-2935 history (seen once: a parent slot holding the parent hash)"""

    def request(self, block_hash: str) -> tuple[str, tuple[Any, ...]]:
        overrides = {READER: {"code": READER_CODE}, HISTORY: {"code": _SLOT_READER}}
        return "eth_call", ({"to": READER, "data": self._data}, {"blockHash": block_hash}, overrides)

    def parse(self, answer: Any) -> tuple[BlockProof, list[bytes | BaseException]]:
        """The proof and each call's raw result; ``RpcError`` if the answer is no reader answer."""
        if isinstance(answer, BaseException):
            raise answer if isinstance(answer, RpcError) else RpcError("eth_call", str(answer))
        try:
            number, parent, h_parent, h_self, results = decode(_OUTPUT, bytes.fromhex(str(answer)[2:]))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise RpcError("eth_call", f"block reader answered {str(answer)[:42]!r}: {exc}") from None
        if len(results) != len(self.calls):
            raise RpcError(
                "eth_call", f"block reader gave {len(results)} results for {len(self.calls)} calls"
            )
        proof = BlockProof(number, "0x" + parent.hex(), "0x" + h_parent.hex(), "0x" + h_self.hex())
        raw: list[bytes | BaseException] = [
            bytes(data) if ok else RpcError("eth_call", "execution reverted") for ok, data in results
        ]
        return proof, raw

    def check(self, proof: BlockProof, block: Block) -> str | None:
        """None when the reads are of ``block``'s own state; else what the node ran them on instead."""
        if proof.number != block.number:
            return f"ran on block {proof.number}'s environment"
        if block.number > 0 and proof.parent != block.parent_hash.lower():
            return f"ran on another branch (parent {proof.parent[:10]}…)"
        if proof.history_self == block.hash.lower():
            return "ran on a later block's state (the block's own hash is already in the history)"
        if block.number > 0:
            if proof.history_parent == block.parent_hash.lower():
                self.history = True
            elif self.history or proof.history_parent != _ZERO:
                return "ran on an earlier block's state (the parent hash is not yet in the history)"
        return None
