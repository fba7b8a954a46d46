// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title VenueGuard: roles, circuit breakers and risk limits of the whole venue, in one place.
/// @notice The guardian can only make the venue safer (contain, block, lower limits). Containment is
/// graded, least power first, and never blocks the way out unless an incident proves it is the attack:
///   1. reduce-only (a market, or the venue): no new risk; closes, liquidations, margin top-ups work
///      (venue-wide it also stops LP deposits; LP redemptions go on);
///   2. a withdrawal limit: LP redemptions capped per window (`withdrawalLimit()`);
///   3. market pause: reduce-only plus the keeper order book frozen;
///   4. venue pause: every market paused, LP deposits and redemptions stopped;
///   and, only where the price itself is the attack path, `haltExits(market)`: closes and
///   liquidations stop too. Oracle updates are never checked here: they work in every mode.
/// Every guardian measure is optimistic: it lapses after `pauseWindow` unless governance ratifies it
/// (governance calling the same function). Lifting and loosening are governance-only (the timelock,
/// whose proposer is a Safe).
contract VenueGuard is AccessControl {
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER_ROLE");
    bytes32 public constant PRICE_KEEPER_ROLE = keccak256("PRICE_KEEPER_ROLE");
    bytes32 public constant MARKET_ROLE = keccak256("MARKET_ROLE");

    struct Pause {
        uint64 until; // guardian pause in force until this timestamp (unless ratified)
        bool ratified; // governance pause or ratified guardian pause: holds until unpaused
    }

    Pause public venuePause;
    mapping(uint256 marketId => Pause) public marketPause;
    mapping(address account => bool) public blocked;
    mapping(uint256 marketId => uint256) public maxLeverage; // whole multiples, e.g. 50 = 50x
    mapping(uint256 marketId => uint256) public openInterestCap; // per side, USD (6 decimals)
    uint64 public pauseWindow;
    Pause public venueReduceOnly;
    mapping(uint256 marketId => Pause) public marketReduceOnly;
    mapping(uint256 marketId => Pause) public exitHalt;
    /// @dev LP redemptions per `withdrawalWindow`: governance's limit, and a lower one the guardian set
    /// that holds until `guardianWithdrawalUntil` (optimistic, like a pause).
    uint256 public governanceWithdrawalLimit = type(uint256).max;
    uint256 public guardianWithdrawalLimit = type(uint256).max;
    uint64 public guardianWithdrawalUntil;
    uint64 public withdrawalWindow = 3600;

    event VenuePaused(address indexed by, uint64 until, bool ratified);
    event VenueUnpaused(address indexed by);
    event MarketPaused(uint256 indexed marketId, address indexed by, uint64 until, bool ratified);
    event MarketUnpaused(uint256 indexed marketId, address indexed by);
    event AccountBlocked(address indexed account, address indexed by);
    event AccountUnblocked(address indexed account, address indexed by);
    event MaxLeverageSet(uint256 indexed marketId, uint256 oldValue, uint256 newValue, address indexed by);
    event OpenInterestCapSet(uint256 indexed marketId, uint256 oldValue, uint256 newValue, address indexed by);
    event PauseWindowSet(uint64 oldValue, uint64 newValue);
    event VenueReduceOnly(address indexed by, uint64 until, bool ratified);
    event MarketReduceOnly(uint256 indexed marketId, address indexed by, uint64 until, bool ratified);
    event ExitsHalted(uint256 indexed marketId, address indexed by, uint64 until, bool ratified);
    event VenueResumed(address indexed by);
    event MarketResumed(uint256 indexed marketId, address indexed by);
    event ExitsResumed(uint256 indexed marketId, address indexed by);
    event WithdrawalLimitSet(uint256 oldValue, uint256 newValue, uint64 until, address indexed by);
    event WithdrawalWindowSet(uint64 oldValue, uint64 newValue);

    error VenueIsPaused();
    error MarketIsPaused(uint256 marketId);
    error AccountIsBlocked(address account);
    error OnlyTightening(uint256 current, uint256 requested);
    error NotAuthorized(address caller);
    error ReduceOnly(uint256 marketId);
    error ExitsAreHalted(uint256 marketId);
    error DepositsStopped();

    constructor(address admin, uint64 pauseWindow_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
        pauseWindow = pauseWindow_;
        emit PauseWindowSet(0, pauseWindow_);
    }

    // ---- views a defender (and every entry point) reads ----

    function isVenuePaused() public view returns (bool) {
        return venuePause.ratified || block.timestamp < venuePause.until;
    }

    function isMarketPaused(uint256 marketId) public view returns (bool) {
        Pause memory p = marketPause[marketId];
        return isVenuePaused() || p.ratified || block.timestamp < p.until;
    }

    function _inForce(Pause memory p) internal view returns (bool) {
        return p.ratified || block.timestamp < p.until;
    }

    /// @notice No new risk in `marketId`: reduce-only there or venue-wide, or the market paused.
    function isReduceOnly(uint256 marketId) public view returns (bool) {
        return _inForce(venueReduceOnly) || _inForce(marketReduceOnly[marketId]) || isMarketPaused(marketId);
    }

    /// @notice Closes and liquidations stopped in `marketId` (its price is the attack path).
    function areExitsHalted(uint256 marketId) public view returns (bool) {
        return _inForce(exitHalt[marketId]);
    }

    /// @notice LP redemptions allowed per `withdrawalWindow` now (type(uint256).max: no limit).
    function withdrawalLimit() public view returns (uint256) {
        uint256 limit = governanceWithdrawalLimit;
        if (block.timestamp < guardianWithdrawalUntil && guardianWithdrawalLimit < limit) {
            limit = guardianWithdrawalLimit;
        }
        return limit;
    }

    /// @notice Reverts unless `account` may use `marketId`'s order book now (paused: frozen).
    function checkMarket(address account, uint256 marketId) external view {
        if (isVenuePaused()) revert VenueIsPaused();
        if (isMarketPaused(marketId)) revert MarketIsPaused(marketId);
        _checkAccount(account);
    }

    /// @notice Reverts unless `account` may add risk in `marketId` now (open, increase, withdraw margin).
    function checkIncrease(address account, uint256 marketId) external view {
        if (isVenuePaused()) revert VenueIsPaused();
        if (isMarketPaused(marketId)) revert MarketIsPaused(marketId);
        if (isReduceOnly(marketId)) revert ReduceOnly(marketId);
        _checkAccount(account);
    }

    /// @notice Reverts unless `account` may take the way out of `marketId` now: close, liquidate, top up.
    /// Only a halt of exits (or a block of the account) stops it; pauses and reduce-only never do.
    function checkExit(address account, uint256 marketId) external view {
        if (areExitsHalted(marketId)) revert ExitsAreHalted(marketId);
        _checkAccount(account);
    }

    /// @notice Reverts unless `account` may deposit into the LP vault now.
    function checkDeposit(address account) external view {
        if (isVenuePaused()) revert VenueIsPaused();
        if (_inForce(venueReduceOnly)) revert DepositsStopped();
        _checkAccount(account);
    }

    /// @notice Reverts unless `account` may use venue-wide entry points (LP redemptions) now.
    function checkVenue(address account) external view {
        if (isVenuePaused()) revert VenueIsPaused();
        _checkAccount(account);
    }

    function _checkAccount(address account) internal view {
        // The origin is checked too: blocking an attacker's key also blocks the contracts it drives.
        if (blocked[account]) revert AccountIsBlocked(account);
        if (blocked[tx.origin]) revert AccountIsBlocked(tx.origin);
    }

    // ---- circuit breakers: guardian (optimistic) or governance (ratified) ----

    function pauseVenue() external {
        bool governor = _guardianOrGovernor();
        if (governor) {
            venuePause = Pause(0, true);
        } else {
            if (isVenuePaused()) return; // idempotent: a repeated guardian pause never extends the window
            venuePause.until = uint64(block.timestamp) + pauseWindow;
        }
        emit VenuePaused(msg.sender, venuePause.until, venuePause.ratified);
    }

    function pauseMarket(uint256 marketId) external {
        bool governor = _guardianOrGovernor();
        Pause storage p = marketPause[marketId];
        if (governor) {
            p.ratified = true;
            p.until = 0;
        } else {
            if (p.ratified || block.timestamp < p.until) return;
            p.until = uint64(block.timestamp) + pauseWindow;
        }
        emit MarketPaused(marketId, msg.sender, p.until, p.ratified);
    }

    /// @dev Guardian: in force for `pauseWindow` (a repeat never extends it); governance: ratified.
    function _engage(Pause storage p) internal returns (bool changed) {
        if (_guardianOrGovernor()) {
            p.ratified = true;
            p.until = 0;
            return true;
        }
        if (_inForce(p)) return false;
        p.until = uint64(block.timestamp) + pauseWindow;
        return true;
    }

    /// @notice Reduce-only everywhere: no new positions or margin withdrawals, no LP deposits.
    function reduceOnlyVenue() external {
        if (_engage(venueReduceOnly)) emit VenueReduceOnly(msg.sender, venueReduceOnly.until, venueReduceOnly.ratified);
    }

    /// @notice Reduce-only in one market: no new risk there; closes, liquidations, top-ups go on.
    function reduceOnlyMarket(uint256 marketId) external {
        Pause storage p = marketReduceOnly[marketId];
        if (_engage(p)) emit MarketReduceOnly(marketId, msg.sender, p.until, p.ratified);
    }

    /// @notice Stop closes and liquidations in one market: for when its price is the attack path.
    function haltExits(uint256 marketId) external {
        Pause storage p = exitHalt[marketId];
        if (_engage(p)) emit ExitsHalted(marketId, msg.sender, p.until, p.ratified);
    }

    /// @notice Cap LP redemptions per `withdrawalWindow`. The guardian may only lower the limit in
    /// force, for `pauseWindow`; governance sets its own limit freely.
    function setWithdrawalLimit(uint256 value) external {
        uint256 old = withdrawalLimit();
        if (_guardianOrGovernor()) {
            governanceWithdrawalLimit = value;
            emit WithdrawalLimitSet(old, value, 0, msg.sender);
            return;
        }
        if (value >= old) revert OnlyTightening(old, value);
        guardianWithdrawalLimit = value;
        if (block.timestamp >= guardianWithdrawalUntil) {
            guardianWithdrawalUntil = uint64(block.timestamp) + pauseWindow;
        }
        emit WithdrawalLimitSet(old, value, guardianWithdrawalUntil, msg.sender);
    }

    function blockAccount(address account) external {
        _guardianOrGovernor();
        if (blocked[account]) return;
        blocked[account] = true;
        emit AccountBlocked(account, msg.sender);
    }

    function setMaxLeverage(uint256 marketId, uint256 value) external {
        uint256 old = maxLeverage[marketId];
        if (!_guardianOrGovernor() && (value >= old || value == 0)) revert OnlyTightening(old, value);
        maxLeverage[marketId] = value;
        emit MaxLeverageSet(marketId, old, value, msg.sender);
    }

    function setOpenInterestCap(uint256 marketId, uint256 value) external {
        uint256 old = openInterestCap[marketId];
        if (!_guardianOrGovernor() && value >= old) revert OnlyTightening(old, value);
        openInterestCap[marketId] = value;
        emit OpenInterestCapSet(marketId, old, value, msg.sender);
    }

    // ---- governance only: ratify, undo, loosen ----

    function ratifyVenuePause() external onlyRole(GOVERNOR_ROLE) {
        if (!isVenuePaused()) revert NotAuthorized(msg.sender);
        venuePause = Pause(0, true);
        emit VenuePaused(msg.sender, 0, true);
    }

    function ratifyMarketPause(uint256 marketId) external onlyRole(GOVERNOR_ROLE) {
        if (!isMarketPaused(marketId)) revert NotAuthorized(msg.sender);
        marketPause[marketId] = Pause(0, true);
        emit MarketPaused(marketId, msg.sender, 0, true);
    }

    function unpauseVenue() external onlyRole(GOVERNOR_ROLE) {
        venuePause = Pause(0, false);
        emit VenueUnpaused(msg.sender);
    }

    function unpauseMarket(uint256 marketId) external onlyRole(GOVERNOR_ROLE) {
        marketPause[marketId] = Pause(0, false);
        emit MarketUnpaused(marketId, msg.sender);
    }

    function unblockAccount(address account) external onlyRole(GOVERNOR_ROLE) {
        blocked[account] = false;
        emit AccountUnblocked(account, msg.sender);
    }

    function resumeVenue() external onlyRole(GOVERNOR_ROLE) {
        venueReduceOnly = Pause(0, false);
        emit VenueResumed(msg.sender);
    }

    function resumeMarket(uint256 marketId) external onlyRole(GOVERNOR_ROLE) {
        marketReduceOnly[marketId] = Pause(0, false);
        emit MarketResumed(marketId, msg.sender);
    }

    function resumeExits(uint256 marketId) external onlyRole(GOVERNOR_ROLE) {
        exitHalt[marketId] = Pause(0, false);
        emit ExitsResumed(marketId, msg.sender);
    }

    /// @notice Governance lifts a guardian's withdrawal limit (its own limit stays).
    function resumeWithdrawals() external onlyRole(GOVERNOR_ROLE) {
        guardianWithdrawalLimit = type(uint256).max;
        guardianWithdrawalUntil = 0;
        emit WithdrawalLimitSet(0, governanceWithdrawalLimit, 0, msg.sender);
    }

    function setWithdrawalWindow(uint64 value) external onlyRole(GOVERNOR_ROLE) {
        emit WithdrawalWindowSet(withdrawalWindow, value);
        withdrawalWindow = value;
    }

    function setPauseWindow(uint64 value) external onlyRole(GOVERNOR_ROLE) {
        emit PauseWindowSet(pauseWindow, value);
        pauseWindow = value;
    }

    /// @dev Returns true for governance, false for the guardian, reverts for anyone else.
    function _guardianOrGovernor() internal view returns (bool) {
        if (hasRole(GOVERNOR_ROLE, msg.sender)) return true;
        if (hasRole(GUARDIAN_ROLE, msg.sender)) return false;
        revert NotAuthorized(msg.sender);
    }
}
