// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice A small vault for the detection engine's tests: deposits create liabilities, a
/// deliberately broken `skim` pays out without booking it (the exploit), roles and pauses emit the
/// standard OpenZeppelin events, and a risk parameter emits `ParameterChanged`.
contract ProbeVault is AccessControl, Pausable {
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    IERC20 public immutable asset;
    uint256 public totalLiabilities;
    uint256 public maxLeverage = 10;
    mapping(address => uint256) public deposits;

    event Deposit(address indexed account, uint256 amount);
    event Withdraw(address indexed account, uint256 amount);
    event ParameterChanged(string name, uint256 oldValue, uint256 newValue);

    constructor(IERC20 asset_, address admin) {
        asset = asset_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GUARDIAN_ROLE, admin);
    }

    function totalAssets() external view returns (uint256) {
        return asset.balanceOf(address(this));
    }

    function deposit(uint256 amount) external whenNotPaused {
        deposits[msg.sender] += amount;
        totalLiabilities += amount;
        require(asset.transferFrom(msg.sender, address(this), amount), "transfer");
        emit Deposit(msg.sender, amount);
    }

    function withdraw(uint256 amount) external whenNotPaused {
        require(deposits[msg.sender] >= amount, "balance");
        deposits[msg.sender] -= amount;
        totalLiabilities -= amount;
        require(asset.transfer(msg.sender, amount), "transfer");
        emit Withdraw(msg.sender, amount);
    }

    /// @dev The vulnerability: anyone can take tokens without the liabilities going down.
    function skim(address to, uint256 amount) external whenNotPaused {
        require(asset.transfer(to, amount), "transfer");
    }

    function setMaxLeverage(uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit ParameterChanged("maxLeverage", maxLeverage, value);
        maxLeverage = value;
    }

    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }
}

/// @notice An attack contract: skims the vault in one call (its deployment is a set-up signal).
contract ProbeAttacker {
    ProbeVault public immutable vault;
    address public immutable owner;

    constructor(ProbeVault vault_) {
        vault = vault_;
        owner = msg.sender;
    }

    function attack(uint256 amount) external {
        require(msg.sender == owner, "owner");
        vault.skim(owner, amount);
    }
}

/// @notice A Tornado-style mixer: pays out through an internal call and logs the recipient.
contract ProbeMixer {
    event Deposit(address indexed from, uint256 amount);
    event Withdrawal(address to, uint256 amount);

    function deposit() external payable {
        emit Deposit(msg.sender, msg.value);
    }

    function withdraw(address payable to, uint256 amount) external {
        (bool ok, ) = to.call{value: amount}("");
        require(ok, "send");
        emit Withdrawal(to, amount);
    }
}
