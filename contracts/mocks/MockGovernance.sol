// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC1967} from "@openzeppelin/contracts/interfaces/IERC1967.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {ProxyAdmin} from "@openzeppelin/contracts/proxy/transparent/ProxyAdmin.sol";
import {TransparentUpgradeableProxy} from "@openzeppelin/contracts/proxy/transparent/TransparentUpgradeableProxy.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// Ownable and Pausable as OpenZeppelin ships them: OwnershipTransferred, Paused, Unpaused. For the
/// governance detector's tests of the standard patterns (no protocol code behind them).
contract MockOwnedPausable is Ownable, Pausable {
    constructor() Ownable(msg.sender) {}

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }
}

/// An ERC-1967 proxy whose admin upgrades it and hands the admin slot on: Upgraded and AdminChanged
/// emitted by OpenZeppelin's ERC1967Utils, as every transparent or UUPS proxy emits them.
contract MockAdminProxy is ERC1967Proxy, IERC1967 {
    error NotAdmin();

    constructor(address implementation) ERC1967Proxy(implementation, "") {
        ERC1967Utils.changeAdmin(msg.sender);
    }

    function upgradeTo(address implementation) external {
        if (msg.sender != ERC1967Utils.getAdmin()) revert NotAdmin();
        ERC1967Utils.upgradeToAndCall(implementation, "");
    }

    function changeAdmin(address admin) external {
        if (msg.sender != ERC1967Utils.getAdmin()) revert NotAdmin();
        ERC1967Utils.changeAdmin(admin);
    }
}

/// OpenZeppelin's transparent proxy unchanged: it deploys its own ProxyAdmin (owned by `owner`), whose
/// upgradeAndCall emits Upgraded at the proxy.
contract MockTransparentProxy is TransparentUpgradeableProxy {
    constructor(address implementation, address owner) TransparentUpgradeableProxy(implementation, owner, "") {}
}

/// OpenZeppelin's ProxyAdmin unchanged: its ABI is the one of the admin a transparent proxy deploys.
contract MockProxyAdmin is ProxyAdmin {
    constructor(address owner) ProxyAdmin(owner) {}
}
