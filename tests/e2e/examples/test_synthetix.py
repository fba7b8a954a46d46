"""Synthetix PerpsV2, deployed from the authors' npm package on anvil, defended by the shipped example
(examples/synthetix/): the oracle-misreport exploit from the public mempool loses nothing, honest traffic
raises no automatic action, and the policy refuses every loosening call."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from breakglass.config.deployment import ContractRecord
from breakglass.config.playbooks import PolicyConfig
from breakglass.errors import PolicyViolation
from breakglass.respond.calls import ContractCall, type_of
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


PUBLISHED = EXAMPLE.parents[1] / "node_modules" / "synthetix" / "publish" / "deployed" / "sepolia-ovm"
SOURCES = {
    "system_status": "SystemStatus",
    "perps_settings": "PerpsV2MarketSettings",
    "exchange_rates": "ExchangeRates",
    "resolver": "AddressResolver",
}


@functools.cache
def _contracts() -> dict[str, ContractRecord]:
    """The example's contract names with the ABIs the authors published (addresses do not matter)."""
    published = json.loads((PUBLISHED / "deployment.json").read_text(encoding="utf-8"))
    return {
        name: ContractRecord("0x" + f"{i + 1:040x}", published["sources"][source]["abi"])
        for i, (name, source) in enumerate(SOURCES.items())
    }


def _policy() -> Policy:
    config = yaml.safe_load((EXAMPLE / "breakglass.yaml").read_text(encoding="utf-8"))
    return Policy.compile(PolicyConfig.model_validate(config["policy"]), _contracts(), clock=lambda: 0.0)


def _call(contract: str, function: str, *args: Any) -> ContractCall:
    record = _contracts()[contract]
    entry = next(e for e in record.abi if e.get("type") == "function" and e["name"] == function)
    kinds = [type_of(i) for i in entry["inputs"]]
    values = list(args) or [b"\x01" * 32 if k == "bytes32" else ([] if k.endswith("]") else 1) for k in kinds]
    return ContractCall(
        contract, record.address, function, f"{function}({','.join(kinds)})", tuple(values), b""
    )


@pytest.mark.parametrize(("contract", "function"), LOOSENING)
def test_the_policy_refuses_every_loosening_call(contract: str, function: str) -> None:
    with pytest.raises(PolicyViolation):
        _policy().check_call(_call(contract, function))


@pytest.mark.parametrize("function", ["suspendFuturesMarket", "suspendFutures"])
def test_the_policy_allows_the_suspensions(function: str) -> None:
    _policy().check_call(_call("system_status", function))
