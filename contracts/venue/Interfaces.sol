// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice What the venue's contracts need to know about each other.
interface IVenueGuard {
    function GOVERNOR_ROLE() external view returns (bytes32);
    function KEEPER_ROLE() external view returns (bytes32);
    function PRICE_KEEPER_ROLE() external view returns (bytes32);
    function hasRole(bytes32 role, address account) external view returns (bool);
    function checkMarket(address account, uint256 marketId) external view;
    function checkVenue(address account) external view;
    function checkIncrease(address account, uint256 marketId) external view;
    function checkExit(address account, uint256 marketId) external view;
    function checkDeposit(address account) external view;
    function withdrawalLimit() external view returns (uint256);
    function withdrawalWindow() external view returns (uint64);
    function maxLeverage(uint256 marketId) external view returns (uint256);
    function openInterestCap(uint256 marketId) external view returns (uint256);
}

interface IPriceOracle {
    function getPrice(uint256 marketId) external view returns (uint256);
    function getValuationPrice(uint256 marketId) external view returns (uint256);
}

interface IPerpMarket {
    function marketId() external view returns (uint256);
    function traderNetPnl(uint256 price) external view returns (int256);
    function valuationPnl() external view returns (int256);
}

interface ILPVault {
    function payOut(uint256 marketId, address to, uint256 amount) external returns (uint256);
    function credit(uint256 marketId, uint256 amount) external;
}

interface IInsuranceFund {
    function cover(uint256 marketId, uint256 amount) external returns (uint256);
}

/// @notice Chainlink's AggregatorV3Interface, the subset the venue reads.
interface AggregatorV3Interface {
    function decimals() external view returns (uint8);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

interface ISpotPool {
    function spotPrice() external view returns (uint256);
    function emaPrice() external view returns (uint256);
}
