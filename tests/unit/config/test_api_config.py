"""The ``api:`` section: listen address, trusted proxies, the session secret from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakglass.config import load_config
from breakglass.errors import ConfigError

SECRET = "x" * 40


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "breakglass.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ=environ or {})


def test_the_api_section_takes_its_session_secret_from_the_environment_as_a_secret(tmp_path: Path) -> None:
    text = (
        "api:\n  host: 0.0.0.0\n  port: 9090\n  trusted_proxies: [10.0.0.5, 10.1.0.0/16]\n"
        "  session_secret: ${BG_SESSION}\n"
    )
    loaded = _load(tmp_path, text, {"BG_SESSION": SECRET})
    api = loaded.settings.api  # type: ignore[attr-defined]
    assert (api.host, api.port, api.trusted_proxies) == ("0.0.0.0", 9090, ["10.0.0.5", "10.1.0.0/16"])
    assert api.session_secret.get_secret_value() == SECRET
    assert SECRET in loaded.secrets  # type: ignore[attr-defined]  (registered with the log redactor)
    assert SECRET not in repr(api)


def test_defaults_listen_on_loopback_and_trust_no_proxy(tmp_path: Path) -> None:
    api = _load(tmp_path, "protocol: x\n").settings.api  # type: ignore[attr-defined]
    assert (api.host, api.port, api.trusted_proxies, api.session_secret) == ("127.0.0.1", 8080, [], None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "api:\n  session_secret: short\n",
            "api.session_secret: Value error, api.session_secret must be at least 32",
        ),
        ("api:\n  trusted_proxies: [proxy.local]\n", "'proxy.local' is not an IP address or CIDR range"),
        ("api:\n  port: 70000\n", "api.port"),
        ("api:\n  listen: 0.0.0.0\n", "api.listen"),
    ],
)
def test_bad_api_settings_are_errors_naming_the_line_and_path(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert says in message and ":2" in message


def test_a_session_secret_too_short_is_refused_without_being_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "api:\n  session_secret: ${BG_SESSION}\n", {"BG_SESSION": "hunter2-too-short"})
    assert "api.session_secret" in str(info.value) and "hunter2" not in str(info.value)
