"""The response policy: default deny, loosening never, value 0, caps and per-action rate windows."""

from __future__ import annotations

import pytest

from breakglass.config.playbooks import PolicyConfig
from breakglass.errors import PolicyViolation
from breakglass.respond import Policy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock | None = None, **overrides: object) -> Policy:
    config = PolicyConfig.model_validate(
        {
            "allow": [
                {"contract": "venue", "function": f}
                for f in ("pause", "pauseMarket", "unpause", "Unpause", "raiseCap", "setFee")
            ],
            "tightening": ["pause*", "unpause", "raise*"],
            "loosening": ["setFee"],
            "max_gas": 200_000,
            "max_fee_gwei": 100,
            "rate_limit": {"count": 2, "per_seconds": 60},
            **overrides,
        }
    )
    return Policy(config, clock or Clock())


def rule_of(p: Policy, function: str, value: int = 0) -> str | None:
    try:
        p.check_call("venue", function, value)
    except PolicyViolation as exc:
        assert not exc.recoverable
        return exc.rule
    return None


def test_allowlisted_tightening_calls_pass() -> None:
    assert rule_of(policy(), "pause") is None and rule_of(policy(), "pauseMarket") is None


@pytest.mark.parametrize("function", ["unpause", "Unpause", "raiseCap", "setFee"])
def test_loosening_is_refused_even_when_allowlisted_and_classified_tightening(function: str) -> None:
    assert rule_of(policy(), function) == "loosening"


def test_anything_not_allowlisted_is_refused() -> None:
    assert rule_of(policy(), "blockAccount") == "allowlist"


def test_an_allowlisted_function_not_classified_tightening_is_refused() -> None:
    p = policy(tightening=["pauseMarket"])
    assert rule_of(p, "pause") == "tightening"


def test_value_must_be_zero() -> None:
    assert rule_of(policy(), "pause", value=1) == "value"


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
