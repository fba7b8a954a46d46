"""Matchers, routing and group keys: the declarative parts of the alert pipeline."""

from __future__ import annotations

import pytest

from breakglass.alerts.group import group_of
from breakglass.alerts.route import Route, Router
from breakglass.alerts.stage import matchable_labels
from breakglass.config.alerting import AlertingConfig
from breakglass.domain import Severity
from breakglass.matchers import matches_all, parse_matcher, parse_matchers
from breakglass.testing import make_finding


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("market=ETH", {"market": "ETH"}, True),
        ("market=ETH", {"market": "BTC"}, False),
        ("market!=ETH", {"market": "BTC"}, True),
        ("market!=ETH", {}, True),
        ("market=~'ETH|BTC'", {"market": "BTC"}, True),
        ("market=~ETH", {"market": "ETH-PERP"}, False),  # anchored, as in Alertmanager
        ("market!~E.*", {"market": "BTC"}, True),
        ("severity>=high", {"severity": "critical"}, True),
        ("severity>=high", {"severity": "medium"}, False),
        ("severity<high", {"severity": "medium"}, True),
        ("severity>info", {}, False),
        ('kind="liquidation"', {"kind": "liquidation"}, True),
    ],
)
def test_a_matcher_matches_labels_as_written(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no operator", "is not name=value"),
        ("market=~(", "bad regular expression"),
        ("market>=x", "compares severities only"),
        ("severity>=dire", "unknown severity 'dire'"),
    ],
)
def test_a_bad_matcher_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_matcher(text)


def test_an_empty_matcher_list_matches_everything() -> None:
    assert matches_all((), {"anything": "x"})


def test_finding_labels_include_monitor_severity_stage_and_chain() -> None:
    labels = matchable_labels(make_finding("flows", severity=Severity.CRITICAL, labels={"m": "1"}))
    assert labels == {"m": "1", "monitor": "flows", "severity": "critical", "stage": "block",
                      "chain_id": "31337"}  # fmt: skip


def test_first_matching_route_wins_unless_it_continues() -> None:
    router = Router(
        [
            Route(parse_matchers(["severity>=critical"]), ("pager",), continue_=True),
            Route(parse_matchers(["severity>=medium"]), ("slack",)),
            Route(parse_matchers(["severity>=low"]), ("email",)),
        ],
        default=("log",),
    )
    assert router.receivers({"severity": "critical"}) == ("pager", "slack")
    assert router.receivers({"severity": "high"}) == ("slack",)
    assert router.receivers({"severity": "low"}) == ("email",)
    assert router.receivers({"severity": "info"}) == ("log",)


def test_router_is_built_from_configuration() -> None:
    config = AlertingConfig.model_validate(
        {
            "routes": [{"matchers": ["market=ETH"], "receivers": ["eth-desk"]}],
            "default_receivers": ["ops"],
        }
    )
    router = Router.of(config)
    assert router.receivers({"market": "ETH"}) == ("eth-desk",)
    assert router.receivers({"market": "BTC"}) == ("ops",)


def test_group_key_depends_only_on_the_grouping_labels() -> None:
    a, values = group_of({"protocol": "perp", "group": "oracle", "market": "ETH"}, ["protocol", "group"])
    b, _ = group_of({"protocol": "perp", "group": "oracle", "market": "BTC"}, ["protocol", "group"])
    c, _ = group_of({"protocol": "perp", "group": "flows"}, ["protocol", "group"])
    assert a == b != c
    assert values == {"protocol": "perp", "group": "oracle"}
