// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

interface IVaultZapTarget {
    function deposit(uint256 assets) external returns (uint256);
    function redeem(uint256 shares) external returns (uint256);
}

interface IFlashLenderTarget {
    function flashLoan(uint256 amount, bytes calldata data) external;
}

/// @notice An honest router: deposits what it holds into the LP vault for its owner and takes it back
/// out in one call (a zap that rebalances), at one share price. Attack-contract simulation must find
/// nothing wrong with it.
contract VaultZap {
    IERC20 public immutable usd;
    IVaultZapTarget public immutable vault;
    address public immutable owner;
    uint256 public lastShares;

    constructor(IERC20 usd_, IVaultZapTarget vault_) {
        usd = usd_;
        vault = vault_;
        owner = msg.sender;
        usd_.approve(address(vault_), type(uint256).max);
    }

    function zapIn() public returns (uint256 shares) {
        uint256 amount = usd.balanceOf(address(this));
        require(amount > 0, "nothing to deposit");
        shares = vault.deposit(amount);
        lastShares += shares;
    }

    function zapOut() public returns (uint256 assets) {
        require(lastShares > 0, "nothing to redeem");
        assets = vault.redeem(lastShares);
        lastShares = 0;
    }

    function roundTrip() external returns (uint256) {
        zapIn();
        return zapOut();
    }

    function withdraw() external {
        require(msg.sender == owner, "owner only");
        usd.transfer(owner, usd.balanceOf(address(this)));
    }
}

/// @notice An honest user of the flash lender: borrows, does nothing harmful with it, repays with the fee.
contract FlashRepay {
    IERC20 public immutable usd;
    IFlashLenderTarget public immutable lender;
    uint256 public loans;

    constructor(IERC20 usd_, IFlashLenderTarget lender_) {
        usd = usd_;
        lender = lender_;
        usd_.approve(address(lender_), type(uint256).max);
    }

    function borrowAndRepay() external {
        lender.flashLoan(1_000_000e6, "");
    }

    function onFlashLoan(uint256, uint256, bytes calldata) external {
        require(msg.sender == address(lender), "lender only");
        loans += 1;
    }
}
