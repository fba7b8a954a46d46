// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IVenueGuard, ILPVault} from "./Interfaces.sol";

/// @title InsuranceFund: covers bad debt (losses beyond a trader's margin) before LPs bear it.
contract InsuranceFund {
    using SafeERC20 for IERC20;

    IERC20 public immutable usd;
    IVenueGuard public immutable guard;
    address public immutable vault;
    mapping(address market => uint256 marketIdPlusOne) public marketIds;

    event BadDebtCovered(uint256 indexed marketId, uint256 requested, uint256 paid, uint256 balance);
    event InsuranceWithdrawn(address indexed to, uint256 amount, address indexed by);
    event MarketRegistered(uint256 indexed marketId, address market);

    error NotGovernor(address account);
    error NotMarket(address account);

    constructor(IERC20 usd_, IVenueGuard guard_, address vault_) {
        usd = usd_;
        guard = guard_;
        vault = vault_;
    }

    function balance() external view returns (uint256) {
        return usd.balanceOf(address(this));
    }

    function registerMarket(uint256 marketId, address market) external {
        if (!guard.hasRole(guard.GOVERNOR_ROLE(), msg.sender)) revert NotGovernor(msg.sender);
        marketIds[market] = marketId + 1;
        emit MarketRegistered(marketId, market);
    }

    /// @notice Pays up to `amount` of a market's bad debt into that market's compartment.
    function cover(uint256 marketId, uint256 amount) external returns (uint256 paid) {
        if (marketIds[msg.sender] != marketId + 1) revert NotMarket(msg.sender);
        uint256 bal = usd.balanceOf(address(this));
        paid = amount < bal ? amount : bal;
        if (paid > 0) {
            usd.safeTransfer(vault, paid);
            ILPVault(vault).credit(marketId, paid);
        }
        emit BadDebtCovered(marketId, amount, paid, bal - paid);
    }

    function withdraw(address to, uint256 amount) external {
        if (!guard.hasRole(guard.GOVERNOR_ROLE(), msg.sender)) revert NotGovernor(msg.sender);
        usd.safeTransfer(to, amount);
        emit InsuranceWithdrawn(to, amount, msg.sender);
    }
}
