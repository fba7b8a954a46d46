"""The shipped alert rules and Grafana dashboard: promtool checks and unit-tests the rules, and every
metric they name is one breakglass exports (a renamed metric would leave an alert that never fires)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import breakglass.api.routes.metrics
import breakglass.metrics.collect  # registers the monitor-time summary

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
RULES = DEPLOY / "prometheus" / "breakglass.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "breakglass.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "breakglass.json"
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run scripts/ensure-promtool (make setup does)")
    return found


def _exported() -> set[str]:
    assert breakglass.api.routes.metrics.REQUESTS is not None
    names = {f.name for f in REGISTRY.collect()}
    return {name + suffix for name in names for suffix in SUFFIXES}


def _named(text: str) -> set[str]:
    return set(re.findall(r"\bbreakglass_[a-z0-9_]+", text))


def test_promtool_accepts_the_rules() -> None:
    run = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 11 rules found" in run.stdout


def test_each_alert_fires_on_its_trouble_and_not_on_a_healthy_process() -> None:
    run = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    defined = set(re.findall(r"- alert: (\w+)", RULES.read_text(encoding="utf-8")))
    assert defined == tested, f"alerts without a promtool test: {defined - tested}"


def test_the_rules_and_the_dashboard_name_only_metrics_breakglass_exports() -> None:
    exported = _exported()
    rules = _named(RULES.read_text(encoding="utf-8"))
    dashboard = _named(DASHBOARD.read_text(encoding="utf-8"))
    assert rules and dashboard
    assert rules - exported == set()
    assert dashboard - exported == set()


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["uid"] == "breakglass" and board["templating"]["list"][0]["type"] == "datasource"
    graphs = [p for p in board["panels"] if p["type"] != "row"]
    assert len(graphs) >= 20
    for panel in graphs:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    # every stage has its panel
    text = DASHBOARD.read_text(encoding="utf-8")
    for family in ("follower", "rpc", "monitor", "findings", "mempool", "responder", "incidents",
                   "alerts", "notifications", "bus"):  # fmt: skip
        assert f"breakglass_{family}" in text, family
