// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {ERC2771Forwarder} from "@openzeppelin/contracts/metatx/ERC2771Forwarder.sol";

/// @title VenueTimelock: governance. Its proposer is the venue's Safe; execution is open after the delay.
contract VenueTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}

/// @title VenueForwarder: the trusted ERC-2771 forwarder for keepers' meta-transactions (price pushes).
contract VenueForwarder is ERC2771Forwarder {
    constructor() ERC2771Forwarder("VenueForwarder") {}
}
