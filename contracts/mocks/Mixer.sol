// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice A mixer-like contract (Tornado-style notes, no zero knowledge): deposit under a commitment,
/// withdraw to a fresh address by revealing the secret through a relayer. Only the on-chain shape matters:
/// funds arrive at a fresh account from the mixer, unlinked from the depositor by the logs.
contract Mixer {
    using SafeERC20 for IERC20;

    struct Note {
        uint256 eth;
        uint256 tokens;
    }

    IERC20 public immutable token;
    mapping(bytes32 commitment => Note) public notes;

    event Deposit(bytes32 indexed commitment, uint256 timestamp);
    event Withdrawal(address to, bytes32 nullifierHash, address indexed relayer, uint256 fee);

    error UnknownNote();

    constructor(IERC20 token_) {
        token = token_;
    }

    function deposit(bytes32 commitment, uint256 tokens) external payable {
        if (tokens > 0) token.safeTransferFrom(msg.sender, address(this), tokens);
        notes[commitment].eth += msg.value;
        notes[commitment].tokens += tokens;
        emit Deposit(commitment, block.timestamp);
    }

    function withdraw(bytes32 secret, address payable to) external {
        bytes32 commitment = keccak256(abi.encodePacked(secret));
        Note memory n = notes[commitment];
        if (n.eth == 0 && n.tokens == 0) revert UnknownNote();
        delete notes[commitment];
        if (n.tokens > 0) token.safeTransfer(to, n.tokens);
        (bool ok,) = to.call{value: n.eth}("");
        require(ok, "eth transfer failed");
        emit Withdrawal(to, keccak256(abi.encodePacked(commitment)), msg.sender, 0);
    }
}
