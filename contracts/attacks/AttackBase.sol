// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice The venue surface the attack contracts drive (a subset of the venue's ABIs).
interface IMarketLike {
    function openPosition(bool isLong, uint256 margin, uint256 size) external;
    function closePosition() external;
    function withdrawMargin(uint256 amount) external;
    function donateMargin(address to, uint256 amount) external;
    function liquidate(address account) external;
    function equity(address account) external view returns (int256);
    function positions(address account) external view returns (bool, uint256, uint256, int256);
    function createOrder(bool isIncrease, bool isLong, uint256 margin, uint256 size, uint256 acceptablePrice)
        external
        payable
        returns (uint256);
    function increasePositionDirect(bool isLong, uint256 margin, uint256 size) external;
    function marketId() external view returns (uint256);
}

interface IVaultLike {
    function deposit(uint256 assets) external returns (uint256);
    function redeem(uint256 shares) external returns (uint256);
    function balanceOf(address account) external view returns (uint256);
    function compartment(uint256 marketId) external view returns (uint256);
    function idle() external view returns (uint256);
    function allocate(uint256 marketId, uint256 amount) external;
}

interface IPoolLike {
    function swap(bool usdIn, uint256 amountIn, uint256 minOut, address to) external returns (uint256);
}

interface IFlashLenderLike {
    function flashLoan(uint256 amount, bytes calldata data) external;
}

/// @notice Owner-only attack contract plumbing: approvals and sweeping the loot to the owner.
abstract contract AttackBase {
    address public immutable owner;
    IERC20 public immutable usd;

    error NotOwner();

    constructor(IERC20 usd_) {
        owner = msg.sender;
        usd = usd_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    function sweep() external onlyOwner {
        usd.transfer(owner, usd.balanceOf(address(this)));
        if (address(this).balance > 0) payable(owner).transfer(address(this).balance);
    }

    function _approve(address spender) internal {
        usd.approve(spender, type(uint256).max);
    }
}
