// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {IVenueGuard, AggregatorV3Interface, ISpotPool} from "./Interfaces.sol";

/// @title PriceOracle: one price per market, from a Chainlink-style feed or an AMM pool.
/// @notice Price keepers may push fresher prices (directly or as meta-transactions through the trusted
/// forwarder); a pushed price wins while younger than `pushTtl`. All prices have 8 decimals.
contract PriceOracle is ERC2771Context {
    struct Source {
        address feed; // AggregatorV3Interface, or zero
        address pool; // ConstantProductPool, or zero
    }

    IVenueGuard public immutable guard;
    /// @dev Vulnerability switch (KiloEx): trust the forwarder without checking the original signer.
    bool public immutable forwarderCallerUnchecked;
    /// @dev Vulnerability switch (Mango): price AMM markets at instant spot instead of the average.
    bool public immutable spotPricing;
    /// @dev Vulnerability switch (Harvest): value the LP vault with AMM spot prices.
    bool public immutable spotValuation;

    uint256 public pushTtl = 300;
    mapping(uint256 marketId => Source) public sources;
    mapping(uint256 marketId => uint256) public pushedPrice;
    mapping(uint256 marketId => uint256) public pushedAt;

    event PriceUpdated(uint256 indexed marketId, uint256 price, address indexed updater);
    event SourceSet(uint256 indexed marketId, address feed, address pool, address indexed by);
    event PushTtlSet(uint256 oldValue, uint256 newValue);

    error NotPriceKeeper(address account);
    error NotGovernor(address account);
    error NoPrice(uint256 marketId);
    error LengthMismatch();

    constructor(IVenueGuard guard_, address forwarder, bool forwarderUnchecked, bool spot, bool spotValue)
        ERC2771Context(forwarder)
    {
        guard = guard_;
        forwarderCallerUnchecked = forwarderUnchecked;
        spotPricing = spot;
        spotValuation = spotValue;
    }

    function setSource(uint256 marketId, address feed, address pool) external {
        if (!guard.hasRole(guard.GOVERNOR_ROLE(), _msgSender())) revert NotGovernor(_msgSender());
        sources[marketId] = Source(feed, pool);
        emit SourceSet(marketId, feed, pool, _msgSender());
    }

    function setPushTtl(uint256 value) external {
        if (!guard.hasRole(guard.GOVERNOR_ROLE(), _msgSender())) revert NotGovernor(_msgSender());
        emit PushTtlSet(pushTtl, value);
        pushTtl = value;
    }

    /// @notice Keeper price push; also reachable as a meta-transaction through the trusted forwarder.
    function setPrices(uint256[] calldata marketIds, uint256[] calldata prices) external {
        if (marketIds.length != prices.length) revert LengthMismatch();
        address updater = _msgSender();
        bool viaForwarder = isTrustedForwarder(msg.sender);
        // The vulnerable build stops at "came through our forwarder" and never asks who signed.
        if (!(viaForwarder && forwarderCallerUnchecked)) {
            if (!guard.hasRole(guard.PRICE_KEEPER_ROLE(), updater)) revert NotPriceKeeper(updater);
        }
        for (uint256 i = 0; i < marketIds.length; i++) {
            pushedPrice[marketIds[i]] = prices[i];
            pushedAt[marketIds[i]] = block.timestamp;
            emit PriceUpdated(marketIds[i], prices[i], updater);
        }
    }

    /// @notice The price positions open, close and liquidate at.
    function getPrice(uint256 marketId) public view returns (uint256) {
        if (pushedAt[marketId] != 0 && block.timestamp <= pushedAt[marketId] + pushTtl) {
            return pushedPrice[marketId];
        }
        Source memory s = sources[marketId];
        if (s.feed != address(0)) return _feedPrice(s.feed);
        if (s.pool != address(0)) {
            return spotPricing ? ISpotPool(s.pool).spotPrice() : ISpotPool(s.pool).emaPrice();
        }
        revert NoPrice(marketId);
    }

    /// @notice The price the LP vault values open interest at.
    function getValuationPrice(uint256 marketId) external view returns (uint256) {
        Source memory s = sources[marketId];
        if (spotValuation && s.feed == address(0) && s.pool != address(0)) {
            return ISpotPool(s.pool).spotPrice();
        }
        return getPrice(marketId);
    }

    /// @notice An independent reference: the feed itself, or the pool's time-weighted average.
    function referencePrice(uint256 marketId) external view returns (uint256) {
        Source memory s = sources[marketId];
        if (s.feed != address(0)) return _feedPrice(s.feed);
        if (s.pool != address(0)) return ISpotPool(s.pool).emaPrice();
        revert NoPrice(marketId);
    }

    function _feedPrice(address feed) internal view returns (uint256) {
        (, int256 answer,,,) = AggregatorV3Interface(feed).latestRoundData();
        uint8 d = AggregatorV3Interface(feed).decimals();
        uint256 p = uint256(answer > 0 ? answer : int256(0));
        return d >= 8 ? p / 10 ** (d - 8) : p * 10 ** (8 - d);
    }
}
