// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

interface ILPVaultShares {
    function deposit(uint256 assets) external returns (uint256 shares);
    function redeem(uint256 shares) external returns (uint256 assets);
}

/// @title EpochZap: an honest aggregator of LP flows (hard-days benign traffic).
/// @notice Users queue deposits (USD) and redemptions (vault shares); `settle()` deposits and redeems
/// the epoch's totals in ONE transaction, at one share price, and pays each user out. The shape of a
/// flash-loan round trip (a deposit and a redemption by one account in one transaction), without
/// its profit.
contract EpochZap {
    using SafeERC20 for IERC20;

    IERC20 public immutable usd;
    IERC20 public immutable shares;
    ILPVaultShares public immutable vault;
    address[] public depositors;
    uint256[] public depositAmounts;
    address[] public redeemers;
    uint256[] public redeemShares;
    uint256 public epoch;

    event Settled(uint256 indexed epoch, uint256 assetsIn, uint256 sharesOut, uint256 sharesIn, uint256 assetsOut);

    constructor(IERC20 usd_, address vault_) {
        usd = usd_;
        shares = IERC20(vault_);
        vault = ILPVaultShares(vault_);
    }

    function queueDeposit(uint256 amount) external {
        usd.safeTransferFrom(msg.sender, address(this), amount);
        depositors.push(msg.sender);
        depositAmounts.push(amount);
    }

    function queueRedeem(uint256 amount) external {
        shares.safeTransferFrom(msg.sender, address(this), amount);
        redeemers.push(msg.sender);
        redeemShares.push(amount);
    }

    function pending() external view returns (uint256 deposits, uint256 redemptions) {
        return (depositors.length, redeemers.length);
    }

    /// @notice Anyone may settle: the queued deposits and redemptions, netted by nobody, in one tx.
    function settle() external {
        uint256 assetsIn;
        for (uint256 i = 0; i < depositAmounts.length; i++) assetsIn += depositAmounts[i];
        uint256 sharesIn;
        for (uint256 i = 0; i < redeemShares.length; i++) sharesIn += redeemShares[i];
        uint256 minted;
        if (assetsIn > 0) {
            usd.forceApprove(address(vault), assetsIn);
            minted = vault.deposit(assetsIn);
            for (uint256 i = 0; i < depositors.length; i++) {
                shares.safeTransfer(depositors[i], (minted * depositAmounts[i]) / assetsIn);
            }
        }
        uint256 paid;
        if (sharesIn > 0) {
            paid = vault.redeem(sharesIn);
            for (uint256 i = 0; i < redeemers.length; i++) {
                usd.safeTransfer(redeemers[i], (paid * redeemShares[i]) / sharesIn);
            }
        }
        emit Settled(epoch++, assetsIn, minted, sharesIn, paid);
        delete depositors;
        delete depositAmounts;
        delete redeemers;
        delete redeemShares;
    }
}
