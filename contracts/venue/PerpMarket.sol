// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IVenueGuard, IPriceOracle, ILPVault, IInsuranceFund} from "./Interfaces.sol";

/// @title PerpMarket: one perpetual market, its positions, keeper orders and liquidations.
/// @notice Sizes and margins are USD with 6 decimals, prices have 8. The LP vault is the counterparty:
/// profits are paid from this market's compartment only; losses and fees are credited to it; bad debt
/// (a loss beyond margin) is covered by the insurance fund, then borne by the compartment.
contract PerpMarket {
    using SafeERC20 for IERC20;

    struct Position {
        bool isLong;
        uint256 size;
        uint256 entryPrice;
        int256 margin; // negative after withdrawing against unrealized profit
    }

    struct Order {
        address account;
        bool isIncrease;
        bool isLong;
        bool active;
        uint256 margin;
        uint256 size;
        uint256 acceptablePrice; // 0 = any
        uint256 executionFee; // wei
    }

    uint256 public constant BPS = 10_000;
    uint256 public immutable marketId;
    IERC20 public immutable usd;
    IVenueGuard public immutable guard;
    IPriceOracle public immutable oracle;
    address public immutable vault;
    address public immutable insurance;
    /// @dev Vulnerability switch (GMX v1): refund the execution fee before closing the keeper window,
    /// without a reentrancy lock.
    bool public immutable reentrantRefund;
    /// @dev Vulnerability switch (Euler): margin donations skip the donor's health check.
    bool public immutable donationUnchecked;
    string public name;

    uint256 public feeBps = 10;
    uint256 public maintenanceBps = 150;
    uint256 public liquidationFeeBps = 100;
    uint256 public minExecutionFee = 0.0005 ether;

    mapping(address account => Position) public positions;
    Order[] public orders;
    uint256 public longSize;
    uint256 public longAvgPrice;
    uint256 public shortSize;
    uint256 public shortAvgPrice;
    /// @notice True only while a keeper executes an order: the window in which increasePositionDirect
    /// (the keeper path that skips the short tracker) is allowed.
    bool public leverageEnabled;
    bool private _locked;

    event PositionIncreased(
        address indexed account, bool isLong, uint256 sizeDelta, uint256 marginDelta, uint256 price,
        uint256 size, int256 margin, uint256 fee
    );
    event PositionClosed(
        address indexed account, bool isLong, uint256 size, uint256 price, int256 pnl, uint256 payout,
        uint256 badDebt
    );
    event PositionLiquidated(
        address indexed account, address indexed liquidator, bool isLong, uint256 size, uint256 price,
        int256 pnl, uint256 reward, uint256 badDebt
    );
    event MarginDeposited(address indexed account, uint256 amount);
    event MarginWithdrawn(address indexed account, uint256 amount, uint256 fromPool);
    event MarginDonated(address indexed from, address indexed to, uint256 amount);
    event OrderCreated(
        uint256 indexed orderId, address indexed account, bool isIncrease, bool isLong, uint256 margin,
        uint256 size, uint256 executionFee
    );
    event OrderExecuted(uint256 indexed orderId, address indexed keeper, uint256 price);
    event OrderCancelled(uint256 indexed orderId);
    event ExecutionFeeRefunded(uint256 indexed orderId, address indexed account, uint256 amount, bool ok);
    event FeesSet(uint256 feeBps, uint256 maintenanceBps, uint256 liquidationFeeBps, uint256 minExecutionFee);

    error NoPosition(address account);
    error OppositePosition(address account);
    error LeverageTooHigh(uint256 size, int256 margin, uint256 maxLeverage);
    error OpenInterestCapExceeded(uint256 openInterest, uint256 cap);
    error NotLiquidatable(address account, int256 equity, uint256 maintenance);
    error NotKeeper(address account);
    error NotGovernor(address account);
    error OrderNotActive(uint256 orderId);
    error PriceNotAcceptable(uint256 price, uint256 acceptablePrice);
    error LeverageDisabled();
    error Reentrancy();
    error InsufficientExecutionFee(uint256 value, uint256 minimum);
    error InsufficientMargin(int256 margin, uint256 amount);

    constructor(
        uint256 marketId_, string memory name_, IERC20 usd_, IVenueGuard guard_, IPriceOracle oracle_,
        address vault_, address insurance_, bool reentrantRefund_, bool donationUnchecked_
    ) {
        marketId = marketId_;
        name = name_;
        usd = usd_;
        guard = guard_;
        oracle = oracle_;
        vault = vault_;
        insurance = insurance_;
        reentrantRefund = reentrantRefund_;
        donationUnchecked = donationUnchecked_;
    }

    modifier guarded() {
        if (reentrantRefund) {
            _;
        } else {
            if (_locked) revert Reentrancy();
            _locked = true;
            _;
            _locked = false;
        }
    }

    // ---- traders ----
    // New risk (open, increase, withdraw or donate margin) passes guard.checkIncrease: refused in
    // reduce-only and paused markets. The way out (close, liquidate, top up) passes guard.checkExit:
    // refused only when exits are halted (the price is the attack path) or the account is blocked.
    // Keeper orders pass guard.checkMarket too: a paused market's order book is frozen.

    function openPosition(bool isLong, uint256 margin, uint256 size) external guarded {
        guard.checkIncrease(msg.sender, marketId);
        usd.safeTransferFrom(msg.sender, address(this), margin);
        _open(msg.sender, isLong, margin, size, oracle.getPrice(marketId), true);
    }

    function closePosition() external guarded {
        guard.checkExit(msg.sender, marketId);
        _settle(msg.sender, oracle.getPrice(marketId), address(0));
    }

    function depositMargin(uint256 amount) external guarded {
        guard.checkExit(msg.sender, marketId);
        Position storage p = _position(msg.sender);
        usd.safeTransferFrom(msg.sender, address(this), amount);
        p.margin += int256(amount);
        emit MarginDeposited(msg.sender, amount);
    }

    /// @notice Cross-margin: unrealized profit counts as margin, so equity beyond the initial margin
    /// may be withdrawn; what exceeds the deposited margin is advanced by the market's compartment.
    function withdrawMargin(uint256 amount) external guarded {
        guard.checkIncrease(msg.sender, marketId);
        Position storage p = _position(msg.sender);
        uint256 price = oracle.getPrice(marketId);
        _requireInitialMargin(p.size, _equity(p, price) - int256(amount));
        uint256 held = p.margin > 0 ? uint256(p.margin) : 0;
        uint256 fromMarket = amount < held ? amount : held;
        uint256 fromPool = 0;
        if (fromMarket > 0) usd.safeTransfer(msg.sender, fromMarket);
        if (amount > fromMarket) fromPool = ILPVault(vault).payOut(marketId, msg.sender, amount - fromMarket);
        p.margin -= int256(fromMarket + fromPool);
        emit MarginWithdrawn(msg.sender, fromMarket + fromPool, fromPool);
    }

    /// @notice Give margin to another account's position in this market (sub-accounts, desks).
    function donateMargin(address to, uint256 amount) external guarded {
        guard.checkIncrease(msg.sender, marketId);
        Position storage p = _position(msg.sender);
        Position storage q = _position(to);
        if (p.margin < int256(amount)) revert InsufficientMargin(p.margin, amount);
        p.margin -= int256(amount);
        q.margin += int256(amount);
        if (!donationUnchecked) _requireInitialMargin(p.size, _equity(p, oracle.getPrice(marketId)));
        emit MarginDonated(msg.sender, to, amount);
    }

    function liquidate(address account) external guarded {
        guard.checkExit(msg.sender, marketId);
        Position storage p = _position(account);
        uint256 price = oracle.getPrice(marketId);
        int256 eq = _equity(p, price);
        uint256 maintenance = (p.size * maintenanceBps) / BPS;
        if (eq >= int256(maintenance)) revert NotLiquidatable(account, eq, maintenance);
        _settle(account, price, msg.sender);
    }

    // ---- keeper orders ----

    function createOrder(bool isIncrease, bool isLong, uint256 margin, uint256 size, uint256 acceptablePrice)
        external
        payable
        guarded
        returns (uint256 id)
    {
        guard.checkMarket(msg.sender, marketId);
        if (isIncrease) guard.checkIncrease(msg.sender, marketId);
        if (msg.value < minExecutionFee) revert InsufficientExecutionFee(msg.value, minExecutionFee);
        if (isIncrease) usd.safeTransferFrom(msg.sender, address(this), margin);
        else _position(msg.sender);
        id = orders.length;
        orders.push(Order(msg.sender, isIncrease, isLong, true, margin, size, acceptablePrice, msg.value));
        emit OrderCreated(id, msg.sender, isIncrease, isLong, margin, size, msg.value);
    }

    function cancelOrder(uint256 id) external guarded {
        Order storage o = orders[id];
        if (!o.active || o.account != msg.sender) revert OrderNotActive(id);
        o.active = false;
        if (o.isIncrease) usd.safeTransfer(o.account, o.margin);
        (bool ok,) = payable(o.account).call{value: o.executionFee}("");
        emit ExecutionFeeRefunded(id, o.account, o.executionFee, ok);
        emit OrderCancelled(id);
    }

    function executeOrder(uint256 id) external guarded {
        if (!guard.hasRole(guard.KEEPER_ROLE(), msg.sender)) revert NotKeeper(msg.sender);
        Order storage o = orders[id];
        if (!o.active) revert OrderNotActive(id);
        guard.checkMarket(o.account, marketId);
        if (o.isIncrease) guard.checkIncrease(o.account, marketId);
        else guard.checkExit(o.account, marketId);
        o.active = false;
        uint256 price = oracle.getPrice(marketId);
        if (o.acceptablePrice != 0) {
            bool buying = o.isIncrease == o.isLong;
            if (buying ? price > o.acceptablePrice : price < o.acceptablePrice) {
                revert PriceNotAcceptable(price, o.acceptablePrice);
            }
        }
        leverageEnabled = true;
        if (o.isIncrease) _open(o.account, o.isLong, o.margin, o.size, price, true);
        else _settle(o.account, price, address(0));
        uint256 refund = o.executionFee - minExecutionFee;
        (bool paid,) = payable(msg.sender).call{value: minExecutionFee}("");
        paid;
        if (reentrantRefund) {
            // Vulnerable order: the owner's code runs while the keeper window is still open.
            _refund(id, o.account, refund);
            leverageEnabled = false;
        } else {
            leverageEnabled = false;
            _refund(id, o.account, refund);
        }
        emit OrderExecuted(id, msg.sender, price);
    }

    /// @notice The keeper-internal increase path: it skips the global short tracker, which the order
    /// path updates before calling it. Only open while a keeper executes an order.
    function increasePositionDirect(bool isLong, uint256 margin, uint256 size) external guarded {
        if (!leverageEnabled) revert LeverageDisabled();
        guard.checkIncrease(msg.sender, marketId);
        usd.safeTransferFrom(msg.sender, address(this), margin);
        _open(msg.sender, isLong, margin, size, oracle.getPrice(marketId), false);
    }

    function setFees(uint256 fee, uint256 maintenance, uint256 liquidationFee, uint256 execFee) external {
        if (!guard.hasRole(guard.GOVERNOR_ROLE(), msg.sender)) revert NotGovernor(msg.sender);
        (feeBps, maintenanceBps, liquidationFeeBps, minExecutionFee) = (fee, maintenance, liquidationFee, execFee);
        emit FeesSet(fee, maintenance, liquidationFee, execFee);
    }

    // ---- views ----

    /// @notice Traders' aggregate unrealized PnL at `price` (positive = the pool owes traders).
    function traderNetPnl(uint256 price) public view returns (int256 pnl) {
        if (longSize > 0) pnl += (int256(longSize) * (int256(price) - int256(longAvgPrice))) / int256(longAvgPrice);
        if (shortSize > 0) {
            pnl += (int256(shortSize) * (int256(shortAvgPrice) - int256(price))) / int256(shortAvgPrice);
        }
    }

    /// @notice traderNetPnl at the price the LP vault values positions at.
    function valuationPnl() external view returns (int256) {
        return traderNetPnl(oracle.getValuationPrice(marketId));
    }

    function openInterest() external view returns (uint256 longs, uint256 shorts) {
        return (longSize, shortSize);
    }

    function orderCount() external view returns (uint256) {
        return orders.length;
    }

    function positionPnl(address account) external view returns (int256) {
        return _pnl(positions[account], oracle.getPrice(marketId));
    }

    function equity(address account) external view returns (int256) {
        return _equity(positions[account], oracle.getPrice(marketId));
    }

    function isLiquidatable(address account) external view returns (bool) {
        Position storage p = positions[account];
        if (p.size == 0) return false;
        return _equity(p, oracle.getPrice(marketId)) < int256((p.size * maintenanceBps) / BPS);
    }

    // ---- internals ----

    function _open(address account, bool isLong, uint256 marginIn, uint256 size, uint256 price, bool track)
        internal
    {
        Position storage p = positions[account];
        if (p.size > 0 && p.isLong != isLong) revert OppositePosition(account);
        uint256 fee = (size * feeBps) / BPS;
        p.isLong = isLong;
        p.entryPrice = p.size == 0 ? price : _avg(p.size, p.entryPrice, size, price);
        p.size += size;
        p.margin += int256(marginIn) - int256(fee);
        _requireInitialMargin(p.size, p.margin);
        uint256 cap = guard.openInterestCap(marketId);
        if (isLong) {
            if (longSize + size > cap) revert OpenInterestCapExceeded(longSize + size, cap);
            longAvgPrice = _avg(longSize, longAvgPrice, size, price);
            longSize += size;
        } else {
            if (shortSize + size > cap) revert OpenInterestCapExceeded(shortSize + size, cap);
            // The short tracker: only the order paths keep the average entry of all shorts current.
            if (track || shortSize == 0) shortAvgPrice = _avg(shortSize, shortAvgPrice, size, price);
            shortSize += size;
        }
        _toVault(fee);
        emit PositionIncreased(account, isLong, size, marginIn, price, p.size, p.margin, fee);
    }

    function _settle(address account, uint256 price, address liquidator) internal {
        Position memory p = _position(account);
        int256 pnl = _pnl(p, price);
        uint256 reward = liquidator == address(0) ? 0 : (p.size * liquidationFeeBps) / BPS;
        int256 remaining = p.margin + pnl - int256((p.size * feeBps) / BPS) - int256(reward);
        uint256 payout = remaining > 0 ? uint256(remaining) : 0;
        uint256 badDebt = remaining < 0 ? uint256(-remaining) : 0;
        if (p.isLong) {
            longSize -= p.size;
            if (longSize == 0) longAvgPrice = 0;
        } else {
            shortSize -= p.size;
            if (shortSize == 0) shortAvgPrice = 0;
        }
        delete positions[account];
        uint256 held = p.margin > 0 ? uint256(p.margin) : 0;
        // The margin this market holds pays first (liquidator, then trader); the compartment pays the rest.
        held = _pay(liquidator, reward, held);
        held = _pay(account, payout, held);
        _toVault(held);
        if (badDebt > 0) IInsuranceFund(insurance).cover(marketId, badDebt);
        if (liquidator == address(0)) {
            emit PositionClosed(account, p.isLong, p.size, price, pnl, payout, badDebt);
        } else {
            emit PositionLiquidated(account, liquidator, p.isLong, p.size, price, pnl, reward, badDebt);
        }
    }

    function _pay(address to, uint256 amount, uint256 held) internal returns (uint256) {
        if (amount == 0) return held;
        uint256 fromHeld = amount < held ? amount : held;
        if (fromHeld > 0) usd.safeTransfer(to, fromHeld);
        if (amount > fromHeld) ILPVault(vault).payOut(marketId, to, amount - fromHeld);
        return held - fromHeld;
    }

    function _toVault(uint256 amount) internal {
        if (amount == 0) return;
        usd.safeTransfer(vault, amount);
        ILPVault(vault).credit(marketId, amount);
    }

    function _refund(uint256 id, address account, uint256 amount) internal {
        if (amount == 0) return;
        (bool ok,) = payable(account).call{value: amount}("");
        emit ExecutionFeeRefunded(id, account, amount, ok);
    }

    function _position(address account) internal view returns (Position storage p) {
        p = positions[account];
        if (p.size == 0) revert NoPosition(account);
    }

    function _pnl(Position memory p, uint256 price) internal pure returns (int256) {
        if (p.size == 0) return 0;
        int256 move = p.isLong ? int256(price) - int256(p.entryPrice) : int256(p.entryPrice) - int256(price);
        return (int256(p.size) * move) / int256(p.entryPrice);
    }

    function _equity(Position memory p, uint256 price) internal pure returns (int256) {
        return p.margin + _pnl(p, price);
    }

    function _requireInitialMargin(uint256 size, int256 margin) internal view {
        uint256 maxLev = guard.maxLeverage(marketId);
        if (margin <= 0 || size > uint256(margin) * maxLev) revert LeverageTooHigh(size, margin, maxLev);
    }

    /// @dev Size-weighted harmonic mean of entry prices (what a sum of USD notionals entered at).
    function _avg(uint256 size, uint256 avg, uint256 delta, uint256 price) internal pure returns (uint256) {
        if (size == 0 || avg == 0) return price;
        return ((size + delta) * avg * price) / (size * price + delta * avg);
    }
}
