"""``serve --role``: which stages each role wires, and a split refused unless the bus and the store are
shared (issue 19). The four role processes on JetStream and PostgreSQL: tests/e2e/roles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakglass.app import build_app
from breakglass.cli.main import app as cli
from breakglass.config import load_config
from breakglass.errors import ConfigError
from breakglass.roles import EVERY_ROLE, Role, check_roles, roles_of

pytestmark = pytest.mark.usefixtures("reset_cli_logging")

CONFIG = (
    "protocol: probe\n"
    "chain: {rpc: ['http://127.0.0.1:1']}\n"
    "contracts:\n  - {name: vault, address: '0x00000000000000000000000000000000000000aa', abi: vault.json}\n"
    "monitors:\n  - {id: paused, kind: event, contract: vault, event: Paused, severity: critical}\n"
    "mempool: {enabled: true}\n"
    "responder:\n  guardian: {env: ROLES_TEST_GUARDIAN_KEY}\n"
    "playbooks:\n"
    "  - id: stop\n"
    "    match: {monitors: [paused]}\n"
    "    actions: [{kind: call, id: pause, contract: vault, function: pause}]\n"
    "policy:\n  allow: [{contract: vault, function: pause}]\n"
)
SHARED = "store: {url: 'postgresql+psycopg://bg@127.0.0.1:1/bg'}\nbus: {kind: jetstream, url: 'nats://127.0.0.1:1'}\n"
KEY = "0x" + "11" * 32


def test_no_role_named_is_every_role_and_an_unknown_name_is_refused() -> None:
    assert roles_of(None) == roles_of([]) == EVERY_ROLE
    assert roles_of(["detect", "api"]) == {Role.DETECT, Role.API}
    with pytest.raises(ValueError, match="'detector'"):
        roles_of(["detector"])


def test_a_role_split_on_the_in_process_bus_and_sqlite_is_refused_naming_both_settings(
    tmp_path: Path, vault_config: Callable[[str], Path]
) -> None:
    path = vault_config(CONFIG + f"store: {{url: 'sqlite:///{tmp_path / 'bg.db'}'}}\n")
    loaded = load_config(path)
    check_roles(loaded, EVERY_ROLE)  # one process: anything goes
    with pytest.raises(ConfigError) as caught:
        check_roles(loaded, frozenset({Role.DETECT}))
    paths = {issue.path: issue for issue in caught.value.issues}
    assert set(paths) == {"bus.kind", "store.url"}
    assert "jetstream" in paths["bus.kind"].message and "PostgreSQL" in paths["store.url"].message
    assert paths["store.url"].line == 16
    with pytest.raises(ConfigError):
        build_app(loaded, roles=frozenset({Role.INCIDENTS}), respond=False)

    result = CliRunner().invoke(cli, ["serve", str(path), "--role", "detect"], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert "bus.kind" in result.output and "store.url" in result.output and f"{path}:16" in result.output


def test_an_unknown_role_on_the_command_line_lists_the_roles(vault_config: Callable[[str], Path]) -> None:
    path = vault_config(CONFIG + SHARED)
    result = CliRunner().invoke(cli, ["serve", str(path), "--role", "detector"], terminal_width=400)
    assert result.exit_code == 2
    assert "detect" in result.output and "incidents" in result.output


@pytest.mark.parametrize(
    ("roles", "wired"),
    [
        ({Role.DETECT}, {"watcher", "metrics"}),
        ({Role.SIMULATE}, {"mempool", "metrics"}),
        ({Role.RESPOND}, {"respond", "metrics"}),
        ({Role.INCIDENTS}, {"incidents", "metrics"}),
        ({Role.API}, {"metrics"}),
        ({Role.DETECT, Role.SIMULATE}, {"watcher", "mempool", "metrics"}),
        (set(Role), {"watcher", "mempool", "respond", "incidents", "metrics"}),
    ],
)
def test_each_role_runs_its_own_stages_only(
    vault_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, roles: set[Role], wired: set[str]
) -> None:
    monkeypatch.setenv("ROLES_TEST_GUARDIAN_KEY", KEY)
    loaded = load_config(vault_config(CONFIG + SHARED))
    app = build_app(loaded, roles=frozenset(roles))  # no I/O: nothing connects
    assert {name for name, _ in app.components.runners()} == wired
    assert (app.components.respond is not None) == (Role.RESPOND in roles)  # the key: respond's alone
    checks = set(app.health._ready)  # which checks /readyz asks, not their answers
    assert ("follower" in checks) == (Role.DETECT in roles)
    assert ("responder" in checks) == (Role.RESPOND in roles)
    assert {"store", "bus"} <= checks
    # the simulate work queue's backlog is exported where the queue is used (pending txs submitted)
    queues = [queue.stream for queue in app.components.metrics.queues]
    assert queues == (["breakglass-work-simulate"] if Role.SIMULATE in roles else [])
