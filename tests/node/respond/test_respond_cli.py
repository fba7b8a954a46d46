"""``breakglass playbook test`` shows the exact simulated calls and sends nothing; ``safe sign`` signs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from eth_account import Account
from respond_support import ATTACKER, GUARDIAN_ENV, Venue, deploy_safe, deploy_venue, write_config
from typer.testing import CliRunner
from web3 import Web3

from breakglass.cli.main import app
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build

pytestmark = pytest.mark.node


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The CLI configures logging onto the runner's captured stderr, which closes after each invoke.
    yield
    structlog.reset_defaults()


PLAYBOOKS = """
- id: contain
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: block-attacker, contract: venue, function: blockAccount, args: ["{evidence.attacker}"]}
    - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
    - {kind: call, id: unpause, contract: venue, function: unpause}
"""


def finding_file(folder: Path) -> Path:
    path = folder / "finding.json"
    path.write_text(
        json.dumps(
            {
                "monitor_id": "oracle-deviation",
                "severity": "critical",
                "tx_hash": "0x" + "ab" * 32,
                "labels": {"market": "7"},
                "evidence": {"attacker": ATTACKER},
            }
        )
    )
    return path


def test_playbook_test_prints_the_simulated_calls_and_sends_nothing(venue: Venue) -> None:
    config = write_config(venue.manifest.parent, PLAYBOOKS)
    args = ["playbook", "test", str(config), "--finding", str(finding_file(venue.manifest.parent))]
    result = CliRunner().invoke(app, [*args, "--from", venue.guardian, "--json"])
    assert result.exit_code == 0, result.output
    block, market, unpause = json.loads(result.output)
    assert block["call"] == f"venue.blockAccount({Web3.to_checksum_address(ATTACKER)})"
    assert market["call"] == "venue.pauseMarket(7)" and market["simulation"] == "ok"
    assert market["plan"]["from"] == venue.guardian and market["plan"]["to"] == venue.contract.address
    assert market["plan"]["data"] == market["data"] and market["plan"]["gas_estimate"] > 21_000
    assert unpause["policy"].startswith("refused (loosening)")
    human = CliRunner().invoke(app, args, env={GUARDIAN_ENV: venue.guardian_key})  # the key: same plan
    assert human.exit_code == 0, human.output
    assert "venue.pauseMarket(7)" in human.output and "simulation: ok" in human.output
    assert venue.guardian_key[2:] not in human.output
    assert venue.guardian_nonce() == 0 and not venue.view("marketPaused", 7)  # nothing was sent
    assert not (venue.manifest.parent / "bg.db").exists()  # and the real ledger was not touched


def test_safe_sign_shows_what_is_signed_and_stores_an_owners_signature(
    anvil: Anvil, mocks: Build, tmp_path: Path
) -> None:
    import asyncio

    from respond_support import finding

    from breakglass.bus import InProcessBus
    from breakglass.config import load_config
    from breakglass.logs import Redactor
    from breakglass.respond import build_responder
    from breakglass.store.migrate import upgrade_async

    owner = Account.create()
    safe = deploy_safe(Web3(Web3.HTTPProvider(anvil.url)), [owner.address], 1)
    venue = deploy_venue(anvil, mocks, tmp_path, admin=safe)
    playbooks = PLAYBOOKS.replace('args: ["{labels.market}"]}', 'args: ["{labels.market}"], via: "safe:gov"}')
    playbooks = playbooks.replace("    - {kind: call, id: unpause, contract: venue, function: unpause}\n", "")
    config = write_config(tmp_path, playbooks, extra=f"safes:\n  - {{name: gov, address: '{safe}'}}\n")

    async def propose() -> str:
        loaded = load_config(config)
        await upgrade_async(loaded.settings.store.url)
        responder = build_responder(
            loaded, InProcessBus(), Redactor(), environ={GUARDIAN_ENV: venue.guardian_key}
        )
        events = await responder.handle(finding())
        await responder.close()
        return str(events[1].detail["safe_tx_hash"])

    safe_tx_hash = asyncio.run(propose())
    env = {"SIGNER_KEY": "0x" + bytes(owner.key).hex(), GUARDIAN_ENV: venue.guardian_key}
    result = CliRunner().invoke(
        app, ["safe", "sign", str(config), safe_tx_hash, "--key-env", "SIGNER_KEY"], input="y\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "venue.pauseMarket(7)" in result.output and safe_tx_hash in result.output
    assert f"signed by {owner.address}" in result.output and bytes(owner.key).hex() not in result.output
    executed = CliRunner().invoke(app, ["safe", "execute", str(config), safe_tx_hash], env=env)
    assert executed.exit_code == 0, executed.output
    assert "confirmed" in executed.output and venue.view("marketPaused", 7)
