// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice A token vault with a guardian pause and account block, for the pause-coverage audit's tests.
/// Both guard deposit and withdraw; with `forgetful` they forget emergencyWithdraw, a second way out
/// that moves the same tokens (the incomplete pause the audit must flag). `poke` changes state and
/// moves nothing: it may stay open under a pause.
contract PauseCoverageVault {
    IERC20 public immutable token;
    address public immutable guardian;
    bool public immutable forgetful;
    bool public paused;
    uint256 public pokes;
    mapping(address => uint256) public balances;
    mapping(address => bool) public blocked;

    constructor(IERC20 token_, address guardian_, bool forgetful_) {
        token = token_;
        guardian = guardian_;
        forgetful = forgetful_;
    }

    modifier whenNotPaused() {
        require(!paused, "paused");
        require(!blocked[msg.sender], "blocked");
        _;
    }

    function pause() external {
        require(msg.sender == guardian, "not the guardian");
        paused = true;
    }

    function blockAccount(address account) external {
        require(msg.sender == guardian, "not the guardian");
        blocked[account] = true;
    }

    function deposit(uint256 amount) external whenNotPaused {
        require(token.transferFrom(msg.sender, address(this), amount), "transfer failed");
        balances[msg.sender] += amount;
    }

    function withdraw(uint256 amount) external whenNotPaused {
        _withdraw(amount);
    }

    function emergencyWithdraw(uint256 amount) external {
        require(forgetful || (!paused && !blocked[msg.sender]), "paused or blocked");
        _withdraw(amount);
    }

    function poke() external {
        pokes += 1;
    }

    function _withdraw(uint256 amount) internal {
        require(balances[msg.sender] >= amount, "insufficient balance");
        balances[msg.sender] -= amount;
        require(token.transfer(msg.sender, amount), "transfer failed");
    }
}
