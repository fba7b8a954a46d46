"""The governance monitor knows the standard patterns with no protocol code (issue 14): OpenZeppelin
Ownable, Pausable and AccessControl, ERC-1967 upgrades and admin changes (a proxy's own admin, and
OpenZeppelin's transparent proxy upgraded through its ProxyAdmin), a Safe's owners and threshold,
a TimelockController's scheduled calls judged by what they will call, and actors allowed by an
AccessControl role whose holders follow the chain's grants and revocations. Each is emitted on anvil by
the real contracts (OpenZeppelin's, Safe v1.4.1's, the reference venue's timelock) and found by a
monitor configured with nothing but the contracts' names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from breakglass.config import load_config
from breakglass.config.deployment import ContractRecord
from breakglass.detect.service import build_watcher
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.devnet.venue.governance import execute, schedule
from breakglass.devnet.venue.keys import dev_key, role_key
from breakglass.devnet.venue.safe import exec_safe_tx
from breakglass.devnet.venue.tx import transact
from breakglass.domain import Finding, Severity

pytestmark = [pytest.mark.node, pytest.mark.slow]

ADMIN_SLOT = int("b53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103", 16)
"""ERC-1967: bytes32(uint256(keccak256("eip1967.proxy.admin")) - 1)"""

CONFIG = """\
deployment: manifest.json
store: {{url: "sqlite:///{db}"}}
monitors:
  - id: governance
    kind: governance
    contracts: [guardian, timelock, safe, owned, proxy, transparent, proxy_admin]
    scheduled_allow:
      - {{contract: guardian, function: ratifyMarketPause}}
  - id: by-role
    kind: governance
    contracts: [owned]
    allow_roles: [{{contract: guardian, role: GUARDIAN_ROLE}}]
policy:  # the responder's: a scheduled call outside scheduled_allow is judged by it too
  allow:
    - {{contract: guardian, function: pauseMarket, args: {{marketId: any}}}}
    - contract: guardian
      function: setMaxLeverage
      args: {{marketId: any, value: {{tighter: lower, current: "guardian.maxLeverage(args.marketId)"}}}}
"""


async def _findings(config: Path, blocks: range) -> list[Finding]:
    watcher = build_watcher(load_config(config), None)
    try:
        return [f for number in blocks for f in await watcher.test_block(number)]
    finally:
        await watcher.close()


async def test_each_standard_governance_change_is_a_finding(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    boss, stranger = role_key("deployer"), dev_key(12)
    deployer = Deployer(w3, build)
    venue = deploy_venue(deployer, VenueOptions())
    owned = deployer.deploy("owned", "MockOwnedPausable")
    proxy = deployer.deploy("proxy", "MockAdminProxy", venue["usd"].address)
    transparent = deployer.deploy("transparent", "MockTransparentProxy", venue["usd"].address, boss.address)
    # the ProxyAdmin the transparent proxy deployed, from its ERC-1967 admin slot
    admin_address = Web3.to_checksum_address(w3.eth.get_storage_at(transparent.address, ADMIN_SLOT)[-20:])
    admin_abi = build["MockProxyAdmin"].abi
    deployer.records["proxy_admin"] = ContractRecord(
        address=admin_address, abi=admin_abi, artifact="ProxyAdmin"
    )
    proxy_admin = w3.eth.contract(address=admin_address, abi=admin_abi)
    deployer.manifest(anvil.url).write(tmp_path / "manifest.json")
    config = tmp_path / "bg.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "bg.db"), encoding="utf-8")
    first = w3.eth.block_number + 1

    w3.eth.send_transaction({"from": boss.address, "to": stranger.address, "value": 10**18})

    def send(fn: Any, account: Any = boss) -> None:
        transact(w3, account, fn)

    send(owned.functions.transferOwnership(stranger.address))  # Ownable
    send(owned.functions.pause(), stranger)  # Pausable
    send(proxy.functions.upgradeTo(venue["vault"].address))  # ERC-1967
    send(proxy.functions.changeAdmin(stranger.address))
    send(proxy_admin.functions.upgradeAndCall(transparent.address, venue["vault"].address, b""))  # ProxyAdmin
    send(proxy_admin.functions.transferOwnership(stranger.address))
    safe = venue["safe"]
    owners = [role_key("safe_owner_1"), role_key("safe_owner_2")]
    add = safe.functions.addOwnerWithThreshold(stranger.address, 3)._encode_transaction_data()
    exec_safe_tx(w3, safe, safe.address, add, owners, owners[0])  # Safe: AddedOwner, ChangedThreshold
    guard, signers = venue.guard.functions, [*owners, role_key("safe_owner_3")]  # the threshold is 3 now

    def propose(call: Any, salt: str) -> Any:
        return schedule(
            venue, venue.guard.address, call._encode_transaction_data(), signers=signers, salt=salt
        )

    propose(guard.ratifyMarketPause(2), "ratify")  # on the list
    propose(guard.unpauseVenue(), "unpause")  # not on the list, and a loosening
    propose(guard.pauseMarket(1), "pause")  # not on the list; the policy allows it
    propose(guard.setMaxLeverage(1, 3), "leverage")  # the policy's bound is read on chain
    grant = propose(guard.grantRole(guard.GUARDIAN_ROLE().call(), stranger.address), "grant")
    anvil.rpc("evm_increaseTime", venue["timelock"].functions.getMinDelay().call() + 1)
    anvil.mine()
    execute(venue, grant)  # AccessControl: RoleGranted by the timelock
    send(owned.functions.unpause(), stranger)  # a GUARDIAN_ROLE holder now: allowed by by-role
    revoke = propose(guard.revokeRole(guard.GUARDIAN_ROLE().call(), stranger.address), "revoke")
    anvil.rpc("evm_increaseTime", venue["timelock"].functions.getMinDelay().call() + 1)
    anvil.mine()
    execute(venue, revoke)
    send(owned.functions.pause(), stranger)  # no longer a holder

    everything = await _findings(config, range(first, w3.eth.block_number + 1))
    found = [f for f in everything if f.monitor_id == "governance"]
    # by role: the pause before the grant and the one after the revocation, not the unpause between
    by_role = [f.evidence["event"] for f in everything if f.monitor_id == "by-role"]
    assert by_role == ["OwnershipTransferred", "Paused", "Paused"]
    events = {(f.evidence["action"], f.evidence["contract"], f.evidence["event"]) for f in found}
    assert {
        ("ownership", "owned", "OwnershipTransferred"),
        ("pause", "owned", "Paused"),
        ("upgrades", "proxy", "Upgraded"),
        ("upgrades", "proxy", "AdminChanged"),
        ("upgrades", "transparent", "Upgraded"),
        ("ownership", "proxy_admin", "OwnershipTransferred"),
        ("safe", "safe", "AddedOwner"),
        ("safe", "safe", "ChangedThreshold"),
        ("roles", "guardian", "RoleGranted"),
    } <= events
    scheduled = sorted(
        (f.evidence["scheduled"]["contract"], f.evidence["scheduled"]["function"])
        for f in found
        if f.evidence["event"] == "CallScheduled"
    )
    # judged by what it calls, not by who scheduled it (the Safe): the ratification is on the list
    assert scheduled == [
        ("guardian", "grantRole"),
        ("guardian", "pauseMarket"),
        ("guardian", "revokeRole"),
        ("guardian", "setMaxLeverage"),
        ("guardian", "unpauseVenue"),
    ]
    judged = {
        f.evidence["scheduled"]["function"]: (
            f.evidence["scheduled"]["policy"],
            f.evidence["scheduled"]["loosening"],
            f.severity,
        )
        for f in found
        if f.evidence["event"] == "CallScheduled"
    }
    assert judged["pauseMarket"] == ("allowed", False, Severity.HIGH)
    assert judged["setMaxLeverage"] == ("needs chain", False, Severity.HIGH)
    assert judged["unpauseVenue"] == ("refused", True, Severity.CRITICAL)  # raised one step
    assert judged["grantRole"] == ("refused", True, Severity.CRITICAL)  # grant*: a loosening pattern
    assert judged["revokeRole"] == ("refused", False, Severity.HIGH)  # not in policy.allow
    [unpause] = [f for f in found if f.evidence.get("scheduled", {}).get("function") == "unpauseVenue"]
    assert "scheduled loosening guardian.unpauseVenue" in unpause.title
    assert unpause.labels["action"] == "timelock" and unpause.evidence["scheduled"]["args"] == {}
