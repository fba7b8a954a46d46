"""``breakglass watch`` only detects: a configuration that responds is refused with the command that
responds (``serve``), unless ``--no-respond`` accepts detection alone (issue 14: a watch that loaded the
guardian key, printed the critical finding and sent nothing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.cli.watch import refuse_response, response_sections
from breakglass.config import load_config
from breakglass.errors import ConfigError

pytestmark = pytest.mark.usefixtures("reset_cli_logging")

DETECT = (
    "protocol: probe\n"
    "chain: {rpc: ['http://127.0.0.1:1']}\n"
    "contracts:\n  - {name: vault, address: '0x00000000000000000000000000000000000000aa', abi: vault.json}\n"
    "monitors:\n  - {id: paused, kind: event, contract: vault, event: Paused, severity: critical}\n"
)
RESPOND = (
    "responder:\n  guardian: {env: NO_SUCH_GUARDIAN_KEY}\n"
    "playbooks:\n"
    "  - id: stop\n"
    "    match: {monitors: [paused]}\n"
    "    actions: [{kind: call, id: pause, contract: vault, function: pause}]\n"
    "policy:\n  allow: [{contract: vault, function: pause}]\n"
)


def test_a_configuration_with_playbooks_is_refused_naming_serve_and_the_line(
    vault_config: Callable[[str], Path],
) -> None:
    path = vault_config(DETECT + RESPOND)
    loaded = load_config(path)
    assert response_sections(loaded) == ["responder", "playbooks", "policy"]
    with pytest.raises(ConfigError) as caught:
        refuse_response(loaded)
    issue = caught.value.issues[0]
    assert issue.line == 7 and issue.path == "responder"
    assert f"breakglass serve {path}" in issue.message and "--no-respond" in issue.message
    result = CliRunner().invoke(app, ["watch", str(path)], terminal_width=400)
    assert result.exit_code == 2
    assert "breakglass serve" in result.output and f"{path}:7" in result.output


def test_a_detection_only_configuration_has_nothing_to_refuse(vault_config: Callable[[str], Path]) -> None:
    loaded = load_config(vault_config(DETECT))
    assert response_sections(loaded) == []
    refuse_response(loaded)


def test_no_respond_builds_no_responder_and_loads_no_guardian_key(
    vault_config: Callable[[str], Path],
) -> None:
    from breakglass.app import build_app

    loaded = load_config(vault_config(DETECT + RESPOND))
    detect_only = build_app(loaded, respond=False)
    assert detect_only.components.respond is None and detect_only.components.watcher is not None
    with pytest.raises(Exception, match="NO_SUCH_GUARDIAN_KEY"):  # what serve would load, and fail on
        build_app(loaded)
