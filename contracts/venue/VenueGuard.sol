// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title VenueGuard: roles, circuit breakers and risk limits of the whole venue, in one place.
/// @notice The guardian can only make the venue safer (pause, block, lower limits). A guardian pause is
/// optimistic: it lapses after `pauseWindow` unless governance ratifies it. Unpausing, unblocking and
/// loosening limits are governance-only (the timelock, whose proposer is a Safe).
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

    event VenuePaused(address indexed by, uint64 until, bool ratified);
    event VenueUnpaused(address indexed by);
    event MarketPaused(uint256 indexed marketId, address indexed by, uint64 until, bool ratified);
    event MarketUnpaused(uint256 indexed marketId, address indexed by);
    event AccountBlocked(address indexed account, address indexed by);
    event AccountUnblocked(address indexed account, address indexed by);
    event MaxLeverageSet(uint256 indexed marketId, uint256 oldValue, uint256 newValue, address indexed by);
    event OpenInterestCapSet(uint256 indexed marketId, uint256 oldValue, uint256 newValue, address indexed by);
    event PauseWindowSet(uint64 oldValue, uint64 newValue);

    error VenueIsPaused();
    error MarketIsPaused(uint256 marketId);
    error AccountIsBlocked(address account);
    error OnlyTightening(uint256 current, uint256 requested);
    error NotAuthorized(address caller);

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

    /// @notice Reverts unless `account` (and the transaction's origin) may use `marketId` now.
    function checkMarket(address account, uint256 marketId) external view {
        if (isVenuePaused()) revert VenueIsPaused();
        if (isMarketPaused(marketId)) revert MarketIsPaused(marketId);
        _checkAccount(account);
    }

    /// @notice Reverts unless `account` may use venue-wide entry points (the LP vault) now.
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
