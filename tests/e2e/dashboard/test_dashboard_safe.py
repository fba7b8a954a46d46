"""Signing a Safe proposal from the dashboard, end to end: a real Safe v1.4.1 (2 of 3) on anvil owns a
guarded venue; a finding makes the playbook propose ``pauseMarket(3)`` through the Safe; two owners
paste their signatures into the dashboard; the second one executes it and the market is paused on
chain. breakglass never sees an owner's key: the test signs as each owner's wallet would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import LiveServer, make_tokens, shot, sign_in
from eth_account import Account
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from web3 import Web3

from breakglass.api.application import create_api
from breakglass.api.auth import Role
from breakglass.api.server import ServerThread
from breakglass.app import App, build_app
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.domain import Finding, Severity
from breakglass.respond import LocalSigner
from breakglass.respond.safe import safe_abi
from breakglass.store.migrate import upgrade_async

pytestmark = [pytest.mark.browser, pytest.mark.node]
GUARDIAN_ENV = "BG_E2E_GUARDIAN_KEY"

CONFIG = """\
protocol: perpx
deployment: manifest.json
store: {{url: "sqlite:///{db}"}}
chain: {{poll_interval: 0.1}}
monitors:
  - id: oracle-deviation
    kind: event
    contract: venue
    event: Unpaused
    severity: critical
responder:
  guardian: {{env: {env}}}
  fees: {{priority_fee_gwei: 1}}
policy:
  allow:
    - {{contract: venue, function: pauseMarket, args: {{marketId: any}}}}
  max_fee_gwei: 500
safes:
  - {{name: governance, address: "{safe}"}}
playbooks:
  - id: via-safe
    match: {{monitors: [oracle-deviation]}}
    actions:
      - kind: call
        id: pause-market
        contract: venue
        function: pauseMarket
        args: ["{{labels.market}}"]
        via: safe:governance
"""


def _deploy_safe(w3: Web3, owners: list[str], threshold: int) -> str:
    """A real Safe v1.4.1 proxy from the bytecode shipped in safe-eth-py."""
    sender = w3.eth.accounts[0]

    def deploy(name: str) -> Any:
        art = safe_abi(name)
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": sender}))
        return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    singleton, proxies = deploy("Safe_V1_4_1"), deploy("ProxyFactory_V1_4_1")
    zero = "0x" + "00" * 20
    setup = singleton.functions.setup(owners, threshold, zero, b"", zero, zero, 0, zero)
    create = proxies.functions.createProxyWithNonce(singleton.address, setup._encode_transaction_data(), 1)
    address = create.call({"from": sender})
    w3.eth.wait_for_transaction_receipt(create.transact({"from": sender}))
    return str(address)


@pytest.fixture
def safe_world(anvil: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    owners = [LocalSigner(Account.create()) for _ in range(3)]
    safe = _deploy_safe(w3, [o.address for o in owners], 2)
    guardian = Account.create()
    anvil.rpc("anvil_setBalance", guardian.address, hex(10**20))
    monkeypatch.setenv(GUARDIAN_ENV, "0x" + bytes(guardian.key).hex())
    deployer = Deployer(w3, compile_contracts(["contracts/mocks"]))
    venue = deployer.deploy("venue", "MockGuardedVenue", safe, guardian.address, 3600)  # the Safe governs
    deployer.manifest(anvil.url).write(tmp_path / "manifest.json")
    config = tmp_path / "breakglass.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "bg.db", env=GUARDIAN_ENV, safe=safe), encoding="utf-8")
    yield {"config": config, "owners": owners, "venue": venue}


@pytest.fixture
def safe_server(safe_world: dict[str, Any]) -> Iterator[LiveServer]:
    tokens: dict[Role, str] = {}

    async def build() -> tuple[App, FastAPI]:
        loaded = load_config(safe_world["config"])
        await upgrade_async(loaded.settings.store.url)
        tokens.update(await make_tokens(loaded.settings.store.url))
        app = build_app(loaded)
        return app, create_api(app, session_secret="safe-" + "x" * 40)

    thread = ServerThread(build).start()
    try:
        yield LiveServer(thread, tokens)
    finally:
        thread.stop()


def test_two_owners_sign_a_safe_proposal_in_the_dashboard_and_it_executes_on_chain(
    safe_server: LiveServer, safe_world: dict[str, Any], page: Page
) -> None:
    sign_in(page, safe_server, Role.RESPONDER)
    page.goto(safe_server.base_url + "/actions")
    expect(page.locator("#actions")).to_contain_text("Nothing awaits a signature.")

    safe_server.publish_finding(Finding(
        monitor_id="oracle-deviation", severity=Severity.CRITICAL, chain_id=31337, block_number=1,
        title="oracle deviation on market 3", labels={"market": "3"},
    ))  # fmt: skip
    proposal = page.locator(".proposal")
    # Appears live, on the actions event; the responder's first finding also starts it (nonce, fees).
    expect(proposal).to_have_count(1, timeout=30_000)
    expect(proposal).to_contain_text("venue.pauseMarket(3)")
    expect(proposal).to_contain_text("0 / 2")
    safe_tx_hash = proposal.get_attribute("data-safe-tx-hash")
    assert safe_tx_hash is not None
    digest = bytes.fromhex(safe_tx_hash[2:])
    first, second, _third = safe_world["owners"]

    # A signature that does not come from an owner is refused and nothing is stored.
    stranger = LocalSigner(Account.create())
    proposal.locator("textarea").fill("0x" + stranger.sign_hash(digest).hex())
    proposal.get_by_role("button", name="Submit signature").click()
    expect(page.locator("#actions-flash .error")).to_contain_text("not an owner")
    expect(page.locator(".proposal")).to_contain_text("0 / 2")

    page.locator(".proposal textarea").fill("0x" + first.sign_hash(digest).hex())
    page.locator(".proposal").get_by_role("button", name="Submit signature").click()
    notice = page.locator("#actions-flash .notice")
    expect(notice).to_contain_text(f"Signature of {first.address} accepted (1/2)")
    expect(page.locator(".proposal")).to_contain_text("1 / 2")
    assert safe_world["venue"].functions.marketPaused(3).call() is False  # below threshold: nothing sent
    shot(page, "safe-proposal")

    page.locator(".proposal textarea").fill("0x" + second.sign_hash(digest).hex())
    page.locator(".proposal").get_by_role("button", name="Submit signature").click()
    expect(page.locator("#actions-flash .notice")).to_contain_text("Executed in 0x")
    expect(page.locator(".proposal")).to_have_count(0)  # executed: no longer pending

    # The relayer sent execTransaction before answering; anvil (automine) mined it on arrival.
    assert safe_world["venue"].functions.marketPaused(3).call() is True
