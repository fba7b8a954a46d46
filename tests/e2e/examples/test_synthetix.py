"""Synthetix PerpsV2, deployed from the authors' npm package on anvil, defended by the shipped example
(examples/synthetix/): the oracle-misreport exploit from the public mempool loses nothing, honest traffic
raises no automatic action, and the policy refuses every loosening call."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from breakglass.config.models import PolicyConfig
from breakglass.errors import PolicyViolation
from breakglass.respond.policy import Policy

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "synthetix"


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLE))


drill = _module("drill")


async def test_oracle_misreport_from_the_public_mempool_is_suspended_before_it_pays(tmp_path: Path) -> None:
    result = await drill.run_exploit(public=True, workdir=tmp_path)
    assert result.baseline_loss_usd > 500_000, "undefended, the debt pool pays the attacker"
    assert result.loss_usd == 0
    assert result.actions == ["suspend-market.suspend-market"]
    assert "short 500 ETH at the wrong price" in result.reverted_steps
    assert result.refused == []
    assert result.market_suspended, "SystemStatus itself reports sETHPERP suspended"
    assert result.ttc_blocks == 0, "the suspension is in the misreport's block, ahead of it"


async def test_honest_traffic_raises_no_automatic_action(tmp_path: Path) -> None:
    result = await drill.run_honest(100, workdir=tmp_path)
    assert result.blocks >= 100
    assert result.transactions >= 100
    assert result.actions == []
    assert not result.findings.get("critical") and not result.findings.get("high")


LOOSENING = [
    ("system_status", "resumeFuturesMarket"),
    ("system_status", "resumeFuturesMarkets"),
    ("system_status", "resumeFutures"),
    ("system_status", "resumeSystem"),
    ("system_status", "resumeSynth"),
    ("system_status", "resumeIssuance"),
    ("system_status", "updateAccessControl"),
    ("system_status", "updateAccessControls"),
    ("system_status", "nominateNewOwner"),
    ("perps_settings", "setMaxLeverage"),
    ("perps_settings", "setMaxMarketValue"),
    ("perps_settings", "setParameters"),
    ("exchange_rates", "addAggregator"),
    ("resolver", "importAddresses"),
]


def _policy() -> Policy:
    config = yaml.safe_load((EXAMPLE / "breakglass.yaml").read_text(encoding="utf-8"))
    return Policy(PolicyConfig.model_validate(config["policy"]), clock=lambda: 0.0)


@pytest.mark.parametrize(("contract", "function"), LOOSENING)
def test_the_policy_refuses_every_loosening_call(contract: str, function: str) -> None:
    with pytest.raises(PolicyViolation):
        _policy().check_call(contract, function)


@pytest.mark.parametrize("function", ["suspendFuturesMarket", "suspendFutures"])
def test_the_policy_allows_the_suspensions(function: str) -> None:
    _policy().check_call("system_status", function)
