"""The response policy: default deny, loosening never (by name, by argument, by on-chain bound), value 0,
caps and per-action rate windows; a policy that could loosen is refused when it is compiled."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.abi import function_signature_to_4byte_selector

from breakglass.config.deployment import ContractRecord
from breakglass.config.playbooks import PolicyConfig
from breakglass.errors import ConfigError, PolicyViolation
from breakglass.respond import Policy
from breakglass.respond.calls import CallTemplate, ContractCall
from breakglass.respond.policy import ArgCheck

VENUE = "0x" + "ab" * 20
ORACLE = "0x" + "cd" * 20


def fn(
    name: str, *inputs: tuple[str, str], view: bool = False, outputs: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": "", "type": t} for t in outputs],
        "stateMutability": "view" if view else "nonpayable",
    }


ABI = [
    fn("pause"),
    fn("pauseMarket", ("marketId", "uint256")),
    fn("unpause"),
    fn("Unpause"),
    fn("raiseCap", ("value", "uint256")),
    fn("setFee", ("value", "uint256")),
    fn("setPoolPause", ("paused", "bool")),
    fn("setMaxLeverage", ("marketId", "uint256"), ("value", "uint256")),
    fn("setMinMargin", ("value", "int256")),
    fn("blockAccount", ("account", "address")),
    fn("setSource", ("source", "address")),
    fn("maxLeverage", ("marketId", "uint256"), view=True, outputs=("uint256",)),
    fn("minMargin", view=True, outputs=("int256",)),
    fn("limits", view=True, outputs=("uint256", "uint256")),
]
CONTRACTS = {"venue": ContractRecord(VENUE, ABI), "oracle": ContractRecord(ORACLE, [])}

ALLOW: list[dict[str, Any]] = [
    {"contract": "venue", "function": "pause"},
    {"contract": "venue", "function": "pauseMarket", "args": {"marketId": "any"}},
    {"contract": "venue", "function": "setPoolPause", "args": {"paused": True}},
    {"contract": "venue", "function": "blockAccount", "args": {"account": "any"}},
    {"contract": "venue", "function": "setSource", "args": {"source": {"in": ["oracle"]}}},
    {
        "contract": "venue",
        "function": "setMaxLeverage",
        "args": {
            "marketId": {"in": [0, 1, 2]},
            "value": {"tighter": "lower", "current": "venue.maxLeverage(args.marketId)", "min": 1},
        },
    },
    {
        "contract": "venue",
        "function": "setMinMargin",
        "args": {"value": {"tighter": "higher", "current": "venue.minMargin()"}},
    },
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(
    clock: Clock | None = None, allow: list[dict[str, Any]] | None = None, **overrides: object
) -> Policy:
    config = PolicyConfig.model_validate(
        {
            "allow": ALLOW if allow is None else allow,
            "loosening": ["setFee"],
            "max_gas": 200_000,
            "max_fee_gwei": 100,
            "rate_limit": {"count": 2, "per_seconds": 60},
            **overrides,
        }
    )
    return Policy.compile(config, CONTRACTS, clock or Clock())


def call(function: str, *args: Any, value: int = 0) -> ContractCall:
    template = CallTemplate.build("venue", VENUE, ABI, function, list(args))
    made = template.render(None)  # type: ignore[arg-type]  # static: no template to fill
    return ContractCall(
        made.contract, made.address, made.function, made.signature, made.args, made.data, value
    )


def rule_of(p: Policy, made: ContractCall) -> str | None:
    try:
        p.check_call(made)
    except PolicyViolation as exc:
        assert not exc.recoverable
        return exc.rule
    return None


def compile_errors(allow: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        policy(allow=allow)
    return [i.message for i in info.value.issues]


def test_allowed_calls_with_their_arguments_pass() -> None:
    p = policy()
    for made in (
        call("pause"),
        call("pauseMarket", 7),
        call("setPoolPause", True),
        call("blockAccount", VENUE),
    ):
        assert rule_of(p, made) is None, made.target


def test_a_pause_switch_pinned_to_true_refuses_false() -> None:
    assert rule_of(policy(), call("setPoolPause", False)) == "arguments"
    with pytest.raises(PolicyViolation, match="'paused' is false, the policy allows true"):
        policy().check_call(call("setPoolPause", False))


@pytest.mark.parametrize("function", ["unpause", "Unpause", "raiseCap", "setFee"])
def test_loosening_names_are_refused(function: str) -> None:
    args = [1] if function in ("raiseCap", "setFee") else []
    assert rule_of(policy(), call(function, *args)) == "loosening"


def test_anything_not_allowlisted_is_refused() -> None:
    assert rule_of(policy(allow=[]), call("pause")) == "allowlist"


def test_sets_and_static_limits() -> None:
    p = policy()
    assert rule_of(p, call("setSource", ORACLE)) is None
    assert rule_of(p, call("setSource", VENUE)) == "arguments"
    assert rule_of(p, call("setMaxLeverage", 3, 5)) == "arguments"  # market 3 is not in the set
    assert rule_of(p, call("setMaxLeverage", 1, 0)) == "arguments"  # below min 1 (0 would mean "closed")
    assert rule_of(p, call("setMaxLeverage", 1, 5)) is None  # the bound is read on chain, below


def test_monotonic_bounds_lower_and_higher() -> None:
    p = policy()
    lower = call("setMaxLeverage", 1, 5)
    rule = p.check_call(lower)
    [check] = rule.bounds
    assert check.current is not None
    selector = function_signature_to_4byte_selector("maxLeverage(uint256)")
    assert check.current.calldata(lower.args) == selector + (1).to_bytes(32, "big")  # args.marketId
    assert check.current.decode((50).to_bytes(32, "big")) == 50
    p.check_bound(lower, check, 50)  # 5 <= 50: tighter
    p.check_bound(lower, check, 5)  # equal: no change, allowed
    with pytest.raises(PolicyViolation, match="above its current value 4: that loosens it") as raised:
        p.check_bound(lower, check, 4)
    assert raised.value.rule == "bound"
    higher = call("setMinMargin", -(2**255))
    [check] = p.check_call(higher).bounds
    p.check_bound(call("setMinMargin", 10), check, 9)
    with pytest.raises(PolicyViolation, match="below its current value"):
        p.check_bound(higher, check, -(2**255) + 1)


def test_value_must_be_zero() -> None:
    assert rule_of(policy(), call("pause", value=1)) == "value"


def test_every_argument_needs_a_rule() -> None:
    [message] = compile_errors(
        [{"contract": "venue", "function": "setMaxLeverage", "args": {"marketId": "any"}}]
    )
    assert "argument 'value' (uint256) needs a rule" in message and "tighter+current" in message


def test_a_boolean_cannot_be_any_nor_both() -> None:
    [any_] = compile_errors([{"contract": "venue", "function": "setPoolPause", "args": {"paused": "any"}}])
    [both] = compile_errors(
        [{"contract": "venue", "function": "setPoolPause", "args": {"paused": {"in": [True, False]}}}]
    )
    [missing] = compile_errors([{"contract": "venue", "function": "setPoolPause"}])
    assert "pin it to true or false" in any_ and "both ways" in both and "a boolean is a switch" in missing


def test_allowlisting_a_loosening_name_is_a_configuration_error() -> None:
    [message] = compile_errors([{"contract": "venue", "function": "unpause"}])
    assert "matches loosening pattern 'unpause*'" in message


def bounded(current: str) -> dict[str, Any]:
    value = {"tighter": "lower", "current": current}
    return {"contract": "venue", "function": "setMaxLeverage", "args": {"marketId": "any", "value": value}}


def test_compile_errors_name_the_closest_names() -> None:
    errors = compile_errors(
        [
            {"contract": "venue", "function": "pauseMarkt", "args": {"marketId": "any"}},
            {"contract": "venue", "function": "pauseMarket", "args": {"market": "any"}},
            bounded("venue.maxLeverag(args.marketId)"),
            bounded("venue.maxLeverage(args.market)"),
            bounded("venue.limits()"),
            {"contract": "venue", "function": "blockAccount", "args": {"account": {"min": 1}}},
        ]
    )  # fmt: skip
    joined = "\n".join(errors)
    assert "did you mean 'pauseMarket'?" in joined
    assert "no argument 'market'" in joined and "did you mean 'marketId'?" in joined
    assert "no function 'maxLeverag'" in joined
    assert "the call has no argument 'market'" in joined
    assert "returns 2 values: choose one with output" in joined
    assert "min, max and tighter apply to integers" in joined


def test_static_check_of_a_playbook_call_judges_literals_only() -> None:
    p = policy()
    refuse = CallTemplate.build("venue", VENUE, ABI, "setPoolPause", [False])
    templated = CallTemplate.build("venue", VENUE, ABI, "setPoolPause", ["{labels.paused}"])
    assert "'paused' is false, the policy allows true" in str(p.check_static(refuse))
    assert p.check_static(templated) is None
    not_listed = CallTemplate.build("venue", VENUE, ABI, "pause", [])
    assert "venue.pause() is not in policy.allow" in str(policy(allow=[]).check_static(not_listed))


def test_gas_and_fee_caps() -> None:
    p = policy()
    p.check_costs("venue.pause()", 200_000, 100 * 10**9)
    with pytest.raises(PolicyViolation) as gas:
        p.check_costs("venue.pause()", 200_001, 1)
    with pytest.raises(PolicyViolation) as fee:
        p.check_costs("venue.pause()", 21_000, 100 * 10**9 + 1)
    assert (gas.value.rule, fee.value.rule) == ("gas", "fee")


def test_rate_limit_is_a_sliding_window_per_action() -> None:
    clock = Clock()
    p = policy(clock, rate_limits={"pb.special": {"count": 1, "per_seconds": 10}})
    p.take_rate("pb.a")
    p.take_rate("pb.a")
    with pytest.raises(PolicyViolation, match="limit 2"):
        p.take_rate("pb.a")
    p.take_rate("pb.b")  # another action has its own window
    p.take_rate("pb.special")
    with pytest.raises(PolicyViolation):
        p.take_rate("pb.special")
    clock.now += 60.001
    p.take_rate("pb.a")
    p.take_rate("pb.special")


def test_the_old_name_classification_is_refused_with_a_pointer() -> None:
    with pytest.raises(ValueError, match="replaced by argument rules"):
        PolicyConfig.model_validate({"tightening": ["pause*"]})


def test_arg_check_refusal_messages() -> None:
    check = ArgCheck(0, "value", "uint256", low=2, high=9)
    assert check.refusal(1) == "argument 'value' is 1, below the policy's min 2"
    assert check.refusal(10) == "argument 'value' is 10, above the policy's max 9"
    assert check.refusal(5) is None
