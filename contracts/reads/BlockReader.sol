// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice breakglass's state reader (src/breakglass/detect/proof.py). Never deployed: the engine puts
/// its runtime code at an unused address with an eth_call state override and calls `read` once per
/// block, at that block. Besides the view calls' results it returns what shows which state the node
/// ran them on: the block environment (number, parent hash) and, on chains with EIP-2935, the history
/// contract's slots of the parent and of the block itself. The parent's slot is written at the start
/// of the block, the block's own only at the start of the next one, so on the block's own state the
/// first holds the parent hash and the second does not hold the block's hash. The history contract's
/// `get` refuses the current block, so the engine overrides its code with a plain slot reader too.
contract BlockReader {
    address private constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    uint256 private constant WINDOW = 8191;

    struct Call {
        address target;
        bytes data;
    }

    struct Result {
        bool ok;
        bytes data;
    }

    function read(Call[] calldata calls)
        external
        returns (uint256 number, bytes32 parent, bytes32 historyParent, bytes32 historySelf, Result[] memory results)
    {
        number = block.number;
        if (number > 0) {
            parent = blockhash(number - 1);
            historyParent = _slot((number - 1) % WINDOW);
        }
        historySelf = _slot(number % WINDOW);
        results = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory data) = calls[i].target.call(calls[i].data);
            results[i] = Result(ok, data);
        }
    }

    function _slot(uint256 key) private view returns (bytes32 value) {
        if (HISTORY.code.length == 0) return bytes32(0);
        (bool ok, bytes memory out) = HISTORY.staticcall(abi.encode(key));
        if (ok && out.length == 32) value = abi.decode(out, (bytes32));
    }
}
