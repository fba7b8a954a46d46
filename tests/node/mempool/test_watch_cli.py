"""``breakglass watch`` with ``mempool: {enabled: true}`` as a real process: a pending price push is
judged before it is mined (a finding carrying its fees), then the same push is found in its block."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from mempool_defense import EXAMPLES, wait_until
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.devnet.venue.tx import build_tx, sign_tx
from breakglass.drills.scenarios import SCENARIOS, Phase, ScenarioRun

pytestmark = [pytest.mark.node, pytest.mark.slow]

BREAKGLASS = str(Path(sys.executable).parent / "breakglass")


def test_watch_judges_pending_transactions_when_the_mempool_section_enables_it(
    build: Build, tmp_path: Path
) -> None:
    scenario = SCENARIOS["forwarder-oracle"]
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
        deployer.manifest(node.url).write(tmp_path / "manifest.json")
        config = yaml.safe_load((EXAMPLES / "venue.yaml").read_text(encoding="utf-8"))
        config.update(deployment="manifest.json", store={"url": f"sqlite:///{tmp_path / 'bg.db'}"},
                      mempool={"enabled": True, "ws": node.ws_url})  # fmt: skip
        (tmp_path / "bg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        run = ScenarioRun(scenario, venue, build)
        run.fund_dirty_wallet()
        for phase, step in run.steps():  # everything up to the first price push, mined at once
            if phase is Phase.STRIKE and step.label.startswith("push"):
                break
            run.execute(phase, step)
        head = w3.eth.block_number
        window = ["--from", str(head + 1), "--until", str(head + 1)]
        command = [BREAKGLASS, "watch", str(tmp_path / "bg.yaml"), *window, "--json"]
        errors = (tmp_path / "stderr.txt").open("w")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
        reader.start()
        try:
            node.rpc("evm_setAutomine", False)
            tx = build_tx(w3, step.signer.address, to=step.to, data=step.data, gas=step.gas)
            push = w3.eth.send_raw_transaction(sign_tx(step.signer, tx)).to_0x_hex()
            # judged while pending (whenever the process's watcher comes up, its catch-up read finds it)
            wait_until(lambda: any(push in line and "pending_fees" in line for line in lines), timeout=90)
            node.mine()
            process.wait(timeout=120)
        finally:
            process.kill()
            reader.join(10)  # the reader alone consumes stdout, to its end
            process.stdout.close()  # type: ignore[union-attr]
            errors.close()
    assert process.returncode == 0, (tmp_path / "stderr.txt").read_text()
    findings = [json.loads(line) for line in lines if line.startswith("{")]
    pending = [f for f in findings if f["tx"] == push and "pending_fees" in f["evidence"]]
    assert {"oracle-deviation-eth", "price-push-by-stranger"} <= {f["monitor"] for f in pending}, findings
    block = [f for f in findings if f["tx"] == push and "pending_fees" not in f["evidence"]]
    assert "price-push-by-stranger" in {f["monitor"] for f in block}
