// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IVenueGuard, IPerpMarket} from "./Interfaces.sol";

/// @title LPVault: liquidity providers' pool, the counterparty of every trader.
/// @notice Liquidity sits idle or in one compartment per market. A market pays traders' profits only
/// from its own compartment, so one market's losses cannot reach another's liquidity (isolation).
/// Share price = totalAssets / supply, where totalAssets counts traders' unrealized PnL against the pool.
contract LPVault is ERC20 {
    using SafeERC20 for IERC20;

    IERC20 public immutable usd;
    IVenueGuard public immutable guard;
    address public insurance;
    uint256 public idle;
    address[] public markets; // index = marketId
    mapping(uint256 marketId => uint256) public compartment;
    uint256 public withdrawalWindowStart;
    uint256 public withdrawnInWindow;

    event Deposit(address indexed account, uint256 assets, uint256 shares);
    event Withdraw(address indexed account, uint256 assets, uint256 shares);
    event MarketAdded(uint256 indexed marketId, address market);
    event Allocated(uint256 indexed marketId, uint256 amount, uint256 compartment);
    event Deallocated(uint256 indexed marketId, uint256 amount, uint256 compartment);
    event CompartmentPaid(uint256 indexed marketId, address indexed to, uint256 amount, uint256 compartment);
    event CompartmentCredited(uint256 indexed marketId, uint256 amount, uint256 compartment);
    event InsuranceSet(address insurance);

    error NotGovernor(address account);
    error NotMarket(address account);
    error InsufficientLiquidity(uint256 wanted, uint256 available);
    error ZeroAmount();
    error WithdrawalLimitExceeded(uint256 requested, uint256 available);

    constructor(IERC20 usd_, IVenueGuard guard_) ERC20("breakglass venue LP", "bgLP") {
        usd = usd_;
        guard = guard_;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    modifier onlyGovernor() {
        if (!guard.hasRole(guard.GOVERNOR_ROLE(), msg.sender)) revert NotGovernor(msg.sender);
        _;
    }

    // ---- LPs ----

    function deposit(uint256 assets) external returns (uint256 shares) {
        guard.checkDeposit(msg.sender);
        if (assets == 0) revert ZeroAmount();
        shares = previewDeposit(assets);
        usd.safeTransferFrom(msg.sender, address(this), assets);
        idle += assets;
        _mint(msg.sender, shares);
        emit Deposit(msg.sender, assets, shares);
    }

    function redeem(uint256 shares) external returns (uint256 assets) {
        guard.checkVenue(msg.sender);
        assets = previewRedeem(shares);
        if (assets == 0) revert ZeroAmount();
        _useWithdrawal(assets);
        _burn(msg.sender, shares);
        uint256 fromIdle = assets < idle ? assets : idle;
        idle -= fromIdle;
        uint256 rest = assets - fromIdle;
        // Redemptions beyond idle liquidity draw compartments in market order.
        for (uint256 m = 0; m < markets.length && rest > 0; m++) {
            uint256 take = rest < compartment[m] ? rest : compartment[m];
            compartment[m] -= take;
            rest -= take;
        }
        if (rest > 0) revert InsufficientLiquidity(assets, assets - rest);
        usd.safeTransfer(msg.sender, assets);
        emit Withdraw(msg.sender, assets, shares);
    }

    /// @notice Assets LPs may still redeem in the current window (the guard's withdrawal limit).
    function withdrawalAvailable() public view returns (uint256) {
        uint256 limit = guard.withdrawalLimit();
        if (limit == type(uint256).max) return limit;
        uint256 used = block.timestamp >= withdrawalWindowStart + guard.withdrawalWindow() ? 0 : withdrawnInWindow;
        return used >= limit ? 0 : limit - used;
    }

    function _useWithdrawal(uint256 assets) internal {
        if (block.timestamp >= withdrawalWindowStart + guard.withdrawalWindow()) {
            withdrawalWindowStart = block.timestamp;
            withdrawnInWindow = 0;
        }
        uint256 available = withdrawalAvailable();
        if (assets > available) revert WithdrawalLimitExceeded(assets, available);
        withdrawnInWindow += assets;
    }

    function previewDeposit(uint256 assets) public view returns (uint256) {
        return (assets * (totalSupply() + 1e6)) / (totalAssets() + 1);
    }

    function previewRedeem(uint256 shares) public view returns (uint256) {
        return (shares * (totalAssets() + 1)) / (totalSupply() + 1e6);
    }

    // ---- invariant views ----

    /// @notice Idle + compartments - traders' unrealized PnL (at valuation prices), floored at zero.
    function totalAssets() public view returns (uint256) {
        int256 value = int256(cash());
        for (uint256 m = 0; m < markets.length; m++) {
            value -= IPerpMarket(markets[m]).valuationPnl();
        }
        return value > 0 ? uint256(value) : 0;
    }

    /// @notice Liquidity the vault holds: idle plus every compartment (equals its token balance).
    function cash() public view returns (uint256 total) {
        total = idle;
        for (uint256 m = 0; m < markets.length; m++) total += compartment[m];
    }

    function marketCount() external view returns (uint256) {
        return markets.length;
    }

    function sharePrice() external view returns (uint256) {
        return previewRedeem(1e6);
    }

    // ---- markets ----

    function payOut(uint256 marketId, address to, uint256 amount) external returns (uint256 paid) {
        if (msg.sender != markets[marketId]) revert NotMarket(msg.sender);
        paid = amount < compartment[marketId] ? amount : compartment[marketId];
        compartment[marketId] -= paid;
        if (paid > 0) usd.safeTransfer(to, paid);
        emit CompartmentPaid(marketId, to, paid, compartment[marketId]);
    }

    /// @notice Tokens already transferred in by a market (trader losses, fees) or the insurance fund.
    function credit(uint256 marketId, uint256 amount) external {
        if (msg.sender != markets[marketId] && msg.sender != insurance) revert NotMarket(msg.sender);
        compartment[marketId] += amount;
        emit CompartmentCredited(marketId, amount, compartment[marketId]);
    }

    // ---- governance ----

    function addMarket(address market) external onlyGovernor {
        uint256 id = IPerpMarket(market).marketId();
        require(id == markets.length, "market id out of order");
        markets.push(market);
        emit MarketAdded(id, market);
    }

    function setInsurance(address insurance_) external onlyGovernor {
        insurance = insurance_;
        emit InsuranceSet(insurance_);
    }

    function allocate(uint256 marketId, uint256 amount) external onlyGovernor {
        if (amount > idle) revert InsufficientLiquidity(amount, idle);
        idle -= amount;
        compartment[marketId] += amount;
        emit Allocated(marketId, amount, compartment[marketId]);
    }

    function deallocate(uint256 marketId, uint256 amount) external onlyGovernor {
        if (amount > compartment[marketId]) revert InsufficientLiquidity(amount, compartment[marketId]);
        compartment[marketId] -= amount;
        idle += amount;
        emit Deallocated(marketId, amount, compartment[marketId]);
    }
}
