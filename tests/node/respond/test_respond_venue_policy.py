"""The example policy over the real reference venue refuses every loosening call: each function of each
deployed contract that is not allowed, and, for each allowed one, each argument moved the loosening way
(the other value of a switch, past a static limit, looser than the parameter's value read on chain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from web3 import Web3

from breakglass.bus import InProcessBus
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import deploy_venue
from breakglass.errors import PolicyViolation
from breakglass.logs import Redactor
from breakglass.respond import Responder, build_responder
from breakglass.respond.calls import ContractCall, type_of
from breakglass.respond.policy import ArgCheck, CallRule

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = Path(__file__).parents[3] / "examples" / "playbooks.venue.yaml"
STRANGER = Web3.to_checksum_address("0x000000000000000000000000000000000000a77a")


def sample(kind: str) -> Any:
    """Some value of an ABI type (what an unlisted call's arguments are does not matter)."""
    if kind.endswith("]") or kind.startswith("("):
        return []  # arrays and tuples: an unlisted call is refused on its name alone
    if kind.startswith(("uint", "int")):
        return 1
    if kind == "address":
        return STRANGER
    if kind == "bool":
        return True
    if kind.startswith("bytes"):
        return b"\x01" * (int(kind[5:]) if kind[5:] else 1)
    return "x"


def made(contract: str, address: str, signature: str, args: list[Any]) -> ContractCall:
    return ContractCall(contract, address, signature.split("(")[0], signature, tuple(args), b"")


async def verdict(responder: Responder, call: ContractCall) -> str | None:
    """The rule refusing ``call`` (static rules, then the bounds read on chain), or None if it passes."""
    try:
        await responder.check_bounds(call, responder.policy.check_call(call))
    except PolicyViolation as exc:
        return exc.rule
    return None


async def current(responder: Responder, check: ArgCheck, args: list[Any]) -> int:
    assert check.current is not None and responder.rpc is not None
    data = "0x" + check.current.calldata(args).hex()
    raw = await responder.rpc.call("eth_call", {"to": check.current.address, "data": data}, "latest")
    return check.current.decode(bytes.fromhex(str(raw)[2:]))


async def tight_args(responder: Responder, rule: CallRule, kinds: list[str]) -> list[Any]:
    """Arguments every rule accepts: the allowed value, within the limits, equal to the value on chain."""
    args = [sample(k) for k in kinds]
    for check in rule.checks:
        if check.values is not None:
            args[check.index] = check.values[0]
        elif check.low is not None:
            args[check.index] = check.low
    for check in rule.bounds:
        args[check.index] = await current(responder, check, args)
    return args


def looser(check: ArgCheck, args: list[Any], now: int | None) -> list[list[Any]]:
    """Each way of moving this argument past its rule, one variant per way."""
    out: list[list[Any]] = []

    def moved(value: Any) -> list[Any]:
        copy = list(args)
        copy[check.index] = value
        return copy

    if check.values is not None:
        if check.type == "bool":
            out.append(moved(not check.values[0]))
        elif check.type == "address":
            out.append(moved(STRANGER if STRANGER not in check.values else "0x" + "00" * 19 + "01"))
        else:
            out.append(moved(max(int(v) for v in check.values) + 1))
    if check.low is not None:
        out.append(moved(check.low - 1))
    if check.high is not None:
        out.append(moved(check.high + 1))
    if now is not None:
        out.append(moved(now + 1 if check.tighter == "lower" else now - 1))
    return out


async def test_the_example_policy_refuses_every_loosening_call_on_the_reference_venue(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, build)
    deploy_venue(deployer)
    deployer.manifest(anvil.url).write(tmp_path / "manifest.json")
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["deployment"] = "manifest.json"
    config["store"] = {"url": f"sqlite:///{tmp_path / 'bg.db'}"}
    config["responder"] = {}  # no key: only the policy and the chain reads are exercised
    (tmp_path / "breakglass.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_config(tmp_path / "breakglass.yaml")
    responder = build_responder(loaded, InProcessBus(), Redactor())
    refused: dict[str, int] = {}
    allowed: list[str] = []
    try:
        for name, record in sorted(loaded.contracts.items()):
            for entry in record.abi:
                if entry.get("type") != "function" or entry.get("stateMutability") in ("view", "pure"):
                    continue
                kinds = [type_of(i) for i in entry.get("inputs", [])]
                signature = f"{entry['name']}({','.join(kinds)})"
                rule = responder.policy.rule_for(name, signature)
                if rule is None:
                    call = made(name, record.address, signature, [sample(k) for k in kinds])
                    rule_name = await verdict(responder, call)
                    assert rule_name in ("loosening", "allowlist"), call.target
                    refused[rule_name] = refused.get(rule_name, 0) + 1
                    continue
                args = await tight_args(responder, rule, kinds)
                tight = made(name, record.address, signature, args)
                assert await verdict(responder, tight) is None, tight.target  # the rule can pass
                allowed.append(tight.target)
                for check in rule.checks:
                    now = await current(responder, check, args) if check.current is not None else None
                    for variant in looser(check, args, now):
                        call = made(name, record.address, signature, variant)
                        rule_name = await verdict(responder, call)
                        assert rule_name in ("arguments", "bound"), call.target
                        refused[rule_name] = refused.get(rule_name, 0) + 1
    finally:
        await responder.close()
    # the example's containment levers, each allowed with its tightening arguments, and nothing else
    assert {t.split("(")[0] for t in allowed} >= {
        "guardian.blockAccount",
        "guardian.pauseMarket",
        "guardian.pauseVenue",
        "guardian.setMaxLeverage",
        "guardian.setOpenInterestCap",
    }
    assert all(t.startswith("guardian.") for t in allowed)
    # every bounded limit refused one above its value on chain; leverage 0 refused by its min
    assert refused["bound"] >= 2 and refused["arguments"] >= 1
    assert refused["loosening"] >= 10 and refused["allowlist"] >= 40, refused
