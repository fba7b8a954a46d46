// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

interface IFlashBorrower {
    function onFlashLoan(uint256 amount, uint256 fee, bytes calldata data) external;
}

/// @notice An Aave-like flash lender of the collateral token (the capital real attackers borrow).
contract FlashLender {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    uint256 public constant FEE_BPS = 5;

    event FlashLoan(address indexed borrower, uint256 amount, uint256 fee);

    constructor(IERC20 token_) {
        token = token_;
    }

    function flashLoan(uint256 amount, bytes calldata data) external {
        uint256 before = token.balanceOf(address(this));
        uint256 fee = (amount * FEE_BPS) / 10_000;
        token.safeTransfer(msg.sender, amount);
        IFlashBorrower(msg.sender).onFlashLoan(amount, fee, data);
        token.safeTransferFrom(msg.sender, address(this), amount + fee);
        require(token.balanceOf(address(this)) >= before + fee, "flash loan not repaid");
        emit FlashLoan(msg.sender, amount, fee);
    }
}
