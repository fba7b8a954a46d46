"""The shipped systemd units start what exists: the serve command, the probe path, the backup target."""

from __future__ import annotations

import configparser
from pathlib import Path

from breakglass.cli.main import app

UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name, encoding="utf-8")
    return parser


def test_the_service_runs_breakglass_serve_with_json_logs_and_restarts() -> None:
    unit = _unit("breakglass.service")
    command = unit["Service"]["ExecStart"].split()
    assert command[0].endswith("/bin/breakglass") and command[1:3] == ["--log-json", "serve"]
    names = {c.name for c in app.registered_commands}
    assert "serve" in names and "doctor" in names
    assert unit["Service"]["Restart"] == "always" and unit["Service"]["KillSignal"] == "SIGINT"
    assert unit["Service"]["ReadWritePaths"] == unit["Service"]["WorkingDirectory"]


def test_the_watchdog_probes_livez_and_each_timer_has_its_service() -> None:
    probe = _unit("breakglass-watchdog.service")["Service"]["ExecStart"]
    assert "/livez" in probe
    # a 503 (curl -f: exit 22) restarts the service; an API process that does not answer does not
    assert "[ $$? -ne 22 ] || systemctl restart breakglass.service" in probe
    for timer in UNITS.glob("*.timer"):
        assert (UNITS / timer.name.replace(".timer", ".service")).is_file(), timer.name
        assert _unit(timer.name)["Timer"]
