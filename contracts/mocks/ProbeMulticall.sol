// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Multicall3's `aggregate3` (same ABI), for measuring one-eth_call invariant reads against a
/// JSON-RPC batch of eth_calls on the devnet. Each call may fail without failing the others.
contract ProbeMulticall {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory results) {
        results = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(ok || calls[i].allowFailure, "call failed");
            results[i] = Result(ok, data);
        }
    }
}
