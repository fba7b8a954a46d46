// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title ConstantProductPool: a thin x*y=k USD/asset pool, the only price source of the thin market.
/// @notice Exposes the instant spot price and a time-weighted exponential average of it: the average
/// moves toward spot by elapsed/window, so a price pushed for seconds barely moves it.
contract ConstantProductPool {
    using SafeERC20 for IERC20;

    IERC20 public immutable usd; // 6 decimals
    IERC20 public immutable asset; // 18 decimals
    uint256 public immutable emaWindow; // seconds
    uint256 public constant FEE_BPS = 30;

    uint256 public reserveUsd;
    uint256 public reserveAsset;
    uint256 public ema; // 8-decimal USD price
    uint256 public emaUpdatedAt;

    event Swap(address indexed sender, bool usdIn, uint256 amountIn, uint256 amountOut, address indexed to);
    event Sync(uint256 reserveUsd, uint256 reserveAsset, uint256 spotPrice, uint256 emaPrice);

    error Slippage(uint256 out, uint256 minOut);

    constructor(IERC20 usd_, IERC20 asset_, uint256 emaWindow_) {
        usd = usd_;
        asset = asset_;
        emaWindow = emaWindow_;
    }

    /// @notice Protocol-owned liquidity: tokens are pulled, no LP shares are issued.
    function addLiquidity(uint256 usdAmount, uint256 assetAmount) external {
        _updateEma();
        usd.safeTransferFrom(msg.sender, address(this), usdAmount);
        asset.safeTransferFrom(msg.sender, address(this), assetAmount);
        reserveUsd += usdAmount;
        reserveAsset += assetAmount;
        if (ema == 0) ema = spotPrice();
        emit Sync(reserveUsd, reserveAsset, spotPrice(), ema);
    }

    function getAmountOut(bool usdIn, uint256 amountIn) public view returns (uint256) {
        (uint256 rIn, uint256 rOut) = usdIn ? (reserveUsd, reserveAsset) : (reserveAsset, reserveUsd);
        uint256 inWithFee = amountIn * (10_000 - FEE_BPS);
        return (inWithFee * rOut) / (rIn * 10_000 + inWithFee);
    }

    function swap(bool usdIn, uint256 amountIn, uint256 minOut, address to) external returns (uint256 out) {
        _updateEma();
        out = getAmountOut(usdIn, amountIn);
        if (out < minOut) revert Slippage(out, minOut);
        if (usdIn) {
            usd.safeTransferFrom(msg.sender, address(this), amountIn);
            asset.safeTransfer(to, out);
            reserveUsd += amountIn;
            reserveAsset -= out;
        } else {
            asset.safeTransferFrom(msg.sender, address(this), amountIn);
            usd.safeTransfer(to, out);
            reserveAsset += amountIn;
            reserveUsd -= out;
        }
        emit Swap(msg.sender, usdIn, amountIn, out, to);
        emit Sync(reserveUsd, reserveAsset, spotPrice(), ema);
    }

    /// @notice USD per whole asset token, 8 decimals.
    function spotPrice() public view returns (uint256) {
        if (reserveAsset == 0) return 0;
        return (reserveUsd * 1e20) / reserveAsset;
    }

    /// @notice The time-weighted average including the time elapsed since the last update.
    function emaPrice() public view returns (uint256) {
        return _emaAt(block.timestamp);
    }

    function _emaAt(uint256 timestamp) internal view returns (uint256) {
        uint256 spot = spotPrice();
        if (ema == 0) return spot;
        uint256 dt = timestamp - emaUpdatedAt;
        if (dt >= emaWindow) return spot;
        if (spot >= ema) return ema + ((spot - ema) * dt) / emaWindow;
        return ema - ((ema - spot) * dt) / emaWindow;
    }

    function _updateEma() internal {
        ema = _emaAt(block.timestamp);
        emaUpdatedAt = block.timestamp;
    }
}
