"""Helpers of the response tests: a guarded mock venue on anvil, a guardian key, a config pointing at them.

A uniquely named module (not ``conftest``) so that tests import it without clashing with other suites.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from breakglass.bus import InProcessBus
from breakglass.config import LoadedConfig
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.domain import Finding, Severity
from breakglass.logs import Redactor
from breakglass.respond import Responder, build_responder
from breakglass.store.migrate import upgrade_async

GUARDIAN_ENV = "BG_TEST_GUARDIAN_KEY"
ATTACKER = "0x000000000000000000000000000000000000a77a"


@dataclass
class Venue:
    node: Anvil
    w3: Web3
    contract: Any
    admin: str
    guardian_key: str
    guardian: str
    manifest: Path

    def view(self, name: str, *args: Any) -> Any:
        return getattr(self.contract.functions, name)(*args).call()

    def guardian_nonce(self) -> int:
        return int(self.w3.eth.get_transaction_count(self.guardian, "latest"))


def deploy_venue(
    node: Anvil, build: Build, folder: Path, ratify_window: int = 3600, admin: str | None = None
) -> Venue:
    w3 = Web3(Web3.HTTPProvider(node.url))
    account = Account.create()
    key = "0x" + bytes(account.key).hex()
    node.rpc("anvil_setBalance", account.address, hex(10**20))
    admin = admin or w3.eth.accounts[0]
    deployer = Deployer(w3, build)
    contract = deployer.deploy("venue", "MockGuardedVenue", admin, account.address, ratify_window)
    manifest = folder / "manifest.json"
    deployer.manifest(node.url).write(manifest)
    return Venue(node, w3, contract, admin, key, account.address, manifest)


BASE_CONFIG = """
deployment: manifest.json
store: {{url: "sqlite:///{db}"}}
chain: {{poll_interval: 0.05}}
monitors:
  - id: oracle-deviation
    kind: event
    contract: venue
    event: Paused
responder:
  guardian: {{env: {env}}}
  fees: {{priority_fee_gwei: 1}}
  bump_after_blocks: {bump_after}
policy:
  allow:
    - {{contract: venue, function: pause}}
    - {{contract: venue, function: pauseMarket, args: {{marketId: any}}}}
    - {{contract: venue, function: blockAccount, args: {{account: any}}}}
    - contract: venue
      function: lowerMaxLeverage
      args: {{value: {{tighter: lower, current: venue.maxLeverage()}}}}
    - contract: venue
      function: setMaxLeverage
      args: {{value: {{tighter: lower, current: venue.maxLeverage(), min: 1}}}}
  max_fee_gwei: 500
playbooks:
{playbooks}
"""

PAUSE_ONLY = """
- id: pause
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-venue, contract: venue, function: pause, once_per: target}
"""
"""One playbook: pause the venue once on an oracle-deviation finding."""

DEFAULT_PLAYBOOKS = """
  - id: contain
    match: {monitors: [oracle-deviation], min_severity: high}
    actions:
      - {kind: call, id: block-attacker, contract: venue, function: blockAccount,
         args: ["{evidence.attacker}"]}
      - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
      - kind: call
        id: pause-venue
        contract: venue
        function: pause
        once_per: target
        ratify: {within: 3600, ratified: pauseRatified}
      - {kind: notify, id: tell, message: "paused market {labels.market}"}
"""


def write_config(
    folder: Path, playbooks: str = DEFAULT_PLAYBOOKS, bump_after: int = 2, extra: str = "", policy: str = ""
) -> Path:
    """The base config with these playbooks; ``extra`` top-level YAML, ``policy`` more policy keys."""
    text = BASE_CONFIG.format(
        db=folder / "bg.db",
        env=GUARDIAN_ENV,
        playbooks=textwrap.indent(textwrap.dedent(playbooks).strip("\n"), "  "),
        bump_after=bump_after,
    )
    path = folder / "breakglass.yaml"
    text = text.replace("  max_fee_gwei: 500\n", "  max_fee_gwei: 500\n" + textwrap.indent(policy, "  "))
    path.write_text(text + textwrap.dedent(extra), encoding="utf-8")
    return path


def finding(
    market: str = "7", attacker: str = ATTACKER, tx: str = "0x" + "ab" * 32, **evidence: Any
) -> Finding:
    return Finding(
        monitor_id="oracle-deviation",
        severity=Severity.CRITICAL,
        chain_id=31337,
        block_number=1,
        title="oracle deviation",
        tx_hash=tx,
        labels={"market": market},  # type: ignore[arg-type]
        evidence={"attacker": attacker, **evidence},
    )


@dataclass
class Harness:
    """Builds responders over one config and database, as a fresh process would after a restart."""

    config: LoadedConfig
    venue: Venue
    bus: InProcessBus
    redactor: Redactor
    made: list[Responder]

    async def responder(self, *, start: bool = True, rpc: Any = None, vet: bool = True) -> Responder:
        """As production builds it: its own engines (the hot-path claim included) from the config.
        ``vet=False``: playbook calls the policy always refuses are built too (to test the refusals)."""
        await upgrade_async(self.config.settings.store.url)  # the store's migrations own the tables
        responder = build_responder(
            self.config,
            self.bus,
            self.redactor,
            rpc=rpc,
            environ={GUARDIAN_ENV: self.venue.guardian_key},
            vet=vet,
        )
        self.made.append(responder)
        if start:
            await responder.start()
        return responder

    async def close(self) -> None:
        for responder in self.made:
            await responder.close()


def deploy_safe(w3: Web3, owners: list[str], threshold: int) -> str:
    """A real Safe v1.4.1 proxy (bytecode shipped in safe-eth-py): ``threshold`` of ``owners``."""
    from breakglass.respond.safe import safe_abi

    sender = w3.eth.accounts[0]

    def deploy(name: str) -> Any:
        art = safe_abi(name)
        tx = (
            w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor().transact({"from": sender})
        )
        address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        return w3.eth.contract(address=address, abi=art["abi"])

    singleton = deploy("Safe_V1_4_1")
    factory = deploy("ProxyFactory_V1_4_1")
    zero = "0x" + "00" * 20
    setup = singleton.functions.setup(
        owners, threshold, zero, b"", zero, zero, 0, zero
    )._encode_transaction_data()
    create = factory.functions.createProxyWithNonce(singleton.address, setup, 1)
    proxy = create.call({"from": sender})
    w3.eth.wait_for_transaction_receipt(create.transact({"from": sender}))
    return str(proxy)
