"""The guarded mock venue world that the fault soak, the HA benchmarks and the role-process test share:
an interval-mining anvil with a ``MockGuardedVenue`` and a ``MockERC20`` (``contracts/mocks``), and the
configuration that guards it (a holder's balance at or over ``LIMIT`` breaks the ``breach`` invariant;
the playbook pauses the market numbered after the block the breach began in).

Kept in one place so that every run measures the same world: a change to the template or the launch
reaches each of them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build

BLOCK_TIME = 0.5
LIMIT = 1_000_000

_TRAFFIC = "  - {id: traffic, kind: event, contract: usd, event: Transfer, severity: low}\n"
_CONFIG = """protocol: {protocol}
deployment: manifest.json
store: {{url: "{store}"}}
{bus}chain: {{rpc: ["{rpc}"], poll_interval: 0.1}}
monitors:
{traffic}  - id: breach
    kind: invariant
    severity: critical
    labels: {{market: "1"}}
    calls: {{held: usd.balanceOf({holder})}}
    expect: held < {limit}.0
responder:
  guardian: {{env: {env}}}
  fees: {{priority_fee_gwei: 1}}
policy:
  allow: [{{contract: venue, function: pauseMarket, args: {{marketId: any}}}}]
  max_fee_gwei: 1000
{rate_limit}playbooks:
  - id: contain
    match: {{monitors: [breach]}}
    actions:
      - kind: call
        id: pause-market
        contract: venue
        function: pauseMarket
        args: ["{{finding.block_number}}"]
"""


def breach_config(
    *,
    protocol: str,
    store: str,
    rpc: str,
    holder: str,
    env: str,
    bus: str = "",
    traffic: bool = False,
    rate_limit: int | None = None,
) -> str:
    """The YAML guarding the venue: the ``breach`` invariant and its pause playbook.

    ``bus`` is inserted verbatim before ``chain`` (whole lines: ``bus:``, ``ha:``; empty for the
    in-process bus); ``rpc`` and ``store`` may be ``${VAR}`` references. ``traffic`` adds the ``traffic``
    monitor (a low finding per token transfer); ``rate_limit`` is the policy's actions per second
    (``None``: the policy's default)."""
    return _CONFIG.format(
        protocol=protocol,
        store=store,
        bus=bus,
        rpc=rpc,
        holder=holder,
        limit=LIMIT,
        env=env,
        traffic=_TRAFFIC if traffic else "",
        rate_limit="" if rate_limit is None else f"  rate_limit: {{count: {rate_limit}, per_seconds: 1}}\n",
    )


@dataclass(frozen=True)
class GuardedVenue:
    """A running chain with the venue (guardian powers for ``guardian``) and the token deployed."""

    node: Anvil
    w3: Web3
    admin: str
    """deploys, mints"""
    holder: str
    """whose balance the ``breach`` invariant reads"""
    sink: str
    guardian: LocalAccount
    """funded; the venue's guardian"""
    venue: Any
    token: Any

    @property
    def key(self) -> str:
        """The guardian's private key, 0x-hex: what the configuration's ``env`` variable holds."""
        return "0x" + bytes(self.guardian.key).hex()


@contextlib.contextmanager
def guarded_venue(
    build: Build,
    folder: Path,
    *,
    token: tuple[str, str],
    chain_id: int = 31337,
    guardian: LocalAccount | None = None,
) -> Iterator[GuardedVenue]:
    """Start an interval-mining anvil (``BLOCK_TIME`` blocks), deploy the venue and the token (``token``:
    name, symbol) from ``build`` (``contracts/mocks``), and write ``folder/manifest.json``; the node
    stops on exit. ``chain_id`` (anvil's own by default) and ``guardian`` (default a new account) let
    two chains share one guardian key; the same deployer and nonces give the same addresses on both."""
    with Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=BLOCK_TIME, chain_id=chain_id)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        admin, holder, sink = w3.eth.accounts[0], w3.eth.accounts[1], w3.eth.accounts[2]
        guardian = guardian or Account.create()
        node.rpc("anvil_setBalance", guardian.address, hex(10**21))
        deployer = Deployer(w3, build)
        venue = deployer.deploy("venue", "MockGuardedVenue", admin, guardian.address, 3600)
        usd = deployer.deploy("usd", "MockERC20", token[0], token[1], 6)
        deployer.manifest(node.url).write(folder / "manifest.json")
        yield GuardedVenue(node, w3, admin, holder, sink, guardian, venue, usd)
