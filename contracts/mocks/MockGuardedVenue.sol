// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A tiny venue with one-way guardian powers, for the response engine's tests.
/// The guardian may only make things safer (pause, pause a market, block an account, lower the max
/// leverage); undoing any of it, or raising the leverage, needs the admin (governance). A guardian
/// pause is optimistic: governance ratifies it (`ratifyPause`) or it lapses after `ratifyWindow`.
contract MockGuardedVenue {
    address public admin;
    address public guardian;
    bool public paused;
    uint256 public pausedAt;
    bool public pauseRatified;
    uint256 public ratifyWindow;
    uint256 public maxLeverage;
    mapping(uint256 => bool) public marketPaused;
    mapping(address => bool) public blocked;
    uint256 public trades;

    event Paused(address indexed by);
    event Unpaused(address indexed by);
    event MarketPaused(uint256 indexed marketId, address indexed by);
    event AccountBlocked(address indexed account, address indexed by);
    event MaxLeverageSet(uint256 value, address indexed by);
    event PauseRatified(address indexed by);

    error NotAdmin();
    error NotGuardian();
    error OnlyLower(uint256 current, uint256 requested);
    error VenuePaused();
    error MarketIsPaused(uint256 marketId);
    error AccountIsBlocked(address account);

    constructor(address admin_, address guardian_, uint256 ratifyWindow_) {
        admin = admin_;
        guardian = guardian_;
        ratifyWindow = ratifyWindow_;
        maxLeverage = 50;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier onlyGuardianOrAdmin() {
        if (msg.sender != guardian && msg.sender != admin) revert NotGuardian();
        _;
    }

    function pause() external onlyGuardianOrAdmin {
        if (!paused) {
            paused = true;
            pausedAt = block.timestamp;
            pauseRatified = false;
            emit Paused(msg.sender);
        }
    }

    function pauseMarket(uint256 marketId) external onlyGuardianOrAdmin {
        marketPaused[marketId] = true;
        emit MarketPaused(marketId, msg.sender);
    }

    function blockAccount(address account) external onlyGuardianOrAdmin {
        blocked[account] = true;
        emit AccountBlocked(account, msg.sender);
    }

    function lowerMaxLeverage(uint256 value) external onlyGuardianOrAdmin {
        if (value > maxLeverage) revert OnlyLower(maxLeverage, value);
        maxLeverage = value;
        emit MaxLeverageSet(value, msg.sender);
    }

    function setMaxLeverage(uint256 value) external onlyAdmin {
        maxLeverage = value;
        emit MaxLeverageSet(value, msg.sender);
    }

    function unpause() external onlyAdmin {
        paused = false;
        emit Unpaused(msg.sender);
    }

    function ratifyPause() external onlyAdmin {
        pauseRatified = true;
        emit PauseRatified(msg.sender);
    }

    /// @notice True once an unratified guardian pause is past its window (governance let it lapse).
    function pauseLapsed() external view returns (bool) {
        return paused && !pauseRatified && block.timestamp > pausedAt + ratifyWindow;
    }

    function trade(uint256 marketId) external {
        if (paused) revert VenuePaused();
        if (marketPaused[marketId]) revert MarketIsPaused(marketId);
        if (blocked[msg.sender]) revert AccountIsBlocked(msg.sender);
        trades += 1;
    }
}
