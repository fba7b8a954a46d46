"""The emergency surface read from ABIs, and the starter configuration written from it."""

from __future__ import annotations

from typing import Any

import yaml

from breakglass.scaffold import InitOptions, discover, render


def fn(name: str, *inputs: tuple[str, str], view: bool = False) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [],
        "stateMutability": "view" if view else "nonpayable",
    }


def ev(name: str) -> dict[str, Any]:
    return {"type": "event", "name": name, "inputs": [], "anonymous": False}


GUARDED = [
    fn("pause"), fn("unpause"), fn("paused", view=True), ev("Paused"), ev("Unpaused"),
    fn("hasRole", ("role", "bytes32"), ("account", "address"), view=True), fn("PAUSER_ROLE", view=True),
    ev("RoleGranted"), fn("freezeMarket", ("marketId", "uint256")),
    fn("unfreezeMarket", ("marketId", "uint256")),
    fn("setMaxLeverage", ("marketId", "uint256"), ("value", "uint256")), ev("MaxLeverageSet"),
    fn("closePosition", ("id", "uint256")),
]  # fmt: skip
CONFIGURATOR = [
    fn("setPoolPause", ("paused", "bool")),
    fn("setReserveFreeze", ("asset", "address"), ("freeze", "bool")),
]
TOKEN = [
    fn("balanceOf", ("a", "address"), view=True),
    fn("totalSupply", view=True),
    fn("transfer"),
    ev("Transfer"),
]


def test_the_surface_names_pauses_roles_undos_switches_and_tokens() -> None:
    surface = discover({"guard": GUARDED, "configurator": CONFIGURATOR, "usd": TOKEN})
    guard, configurator, usd = surface.contracts
    assert [f.name for f in guard.tightening] == ["pause", "freezeMarket"]
    assert sorted(guard.loosening) == ["unfreezeMarket", "unpause"]
    assert guard.pausable and guard.roles == ["PAUSER_ROLE"]
    assert guard.resume_events == ["Unpaused"] and guard.parameter_events == ["MaxLeverageSet"]
    assert [(f.name, f.switch) for f in configurator.tightening] == [
        ("setPoolPause", True),
        ("setReserveFreeze", True),
    ]
    assert usd.token and surface.tokens == ["usd"] and surface.holders == ["guard", "configurator"]


def test_the_starter_playbook_calls_the_global_pause_and_the_policy_pins_a_switch_to_true() -> None:
    surface = discover({"guard": GUARDED, "configurator": CONFIGURATOR, "usd": TOKEN})
    text = render(surface, InitOptions(deployment="manifest.json", protocol="p", source="test"))
    config = yaml.safe_load(text)
    (playbook,) = config["playbooks"]
    call = playbook["actions"][0]
    assert (call["contract"], call["function"], call.get("args")) == ("guard", "pause", None)
    assert playbook["match"] == {"monitors": ["outflow-usd"], "min_severity": "critical"}
    allowed = {(a["contract"], a["function"]): a.get("args") for a in config["policy"]["allow"]}
    assert set(allowed) >= {("guard", "pause"), ("guard", "freezeMarket"), ("configurator", "setPoolPause")}
    assert allowed[("guard", "pause")] is None
    [(_switch_arg, pinned)] = allowed[("configurator", "setPoolPause")].items()
    assert pinned is True  # a switch is allowed only towards safety: setPoolPause(false) is refused
    assert "setPoolPause(bool) is a switch: only true" in text
    ids = [m["id"] for m in config["monitors"]]
    assert ids == ["governance", "undone-guard-unpaused", "outflow-usd"]
    assert config["monitors"][0]["parameter_events"] == ["MaxLeverageSet"]


def test_a_per_market_pause_takes_its_key_from_the_finding_labels() -> None:
    surface = discover({"status": [fn("suspendMarket", ("marketKey", "bytes32"), ("reason", "uint256"))]})
    config = yaml.safe_load(render(surface, InitOptions("m.json", "p", "test")))
    (playbook,) = config["playbooks"]
    assert playbook["actions"][0]["args"] == ["{labels.marketKey}", 1]
    assert playbook["match"] == {"min_severity": "critical", "labels": {"marketKey": "*"}}


def test_nothing_to_pause_writes_an_empty_allow_list_and_no_playbook() -> None:
    config = yaml.safe_load(render(discover({"usd": TOKEN}), InitOptions("m.json", "p", "test")))
    assert config["policy"]["allow"] == []
    assert config["playbooks"] == []
