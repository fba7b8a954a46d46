"""Log redaction: keys, tokens and webhook URLs never appear in console or JSON output."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from eth_account import Account

from breakglass.logs import configure_logging, get_logger, redact_url

KEY = Account.create().key.hex()  # 0x-less or 0x-prefixed depending on version; both handled


@pytest.mark.parametrize("as_json", [True, False])
def test_known_secrets_are_redacted_everywhere(as_json: bool) -> None:
    stream = io.StringIO()
    redactor = configure_logging(json=as_json, stream=stream)
    webhook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
    redactor.add([KEY, webhook, "tok_live_abcdef123456"])
    log = get_logger("test")
    log.info("sending with key " + KEY, detail={"nested": [webhook]})
    log.warning("header", auth="Bearer tok_live_abcdef123456")
    try:
        raise RuntimeError(f"failed to post to {webhook} using {KEY}")
    except RuntimeError:
        log.exception("notify failed")
    out = stream.getvalue()
    bare = KEY.removeprefix("0x")
    assert bare not in out
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in out
    assert "tok_live_abcdef123456" not in out
    assert "[redacted]" in out
    if as_json:
        assert all(json.loads(line) for line in out.strip().splitlines())


def test_secret_named_fields_are_redacted_even_when_unknown() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    get_logger("t").info("x", private_key="0x" + "1" * 64, api_token="abc", password="pw")
    event = json.loads(stream.getvalue())
    assert event["private_key"] == event["api_token"] == event["password"] == "[redacted]"


def test_transaction_hashes_and_addresses_are_kept() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    tx = "0x" + "ab" * 32
    get_logger("t").info("sent", tx_hash=tx, to="0x5FbDB2315678afecb367f032d93F642f64180aa3")
    event = json.loads(stream.getvalue())
    assert event["tx_hash"] == tx
    assert event["to"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_redact_url_drops_credentials_query_and_path_keys() -> None:
    assert redact_url("https://u:p@host.example/v2/abcdefghijklmnopqrstuvwx?key=1") == (
        "https://[redacted]@host.example/v2/[redacted]?[redacted]"
    )
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"


def test_build_app_registers_secrets_with_the_redactor_the_logs_use(tmp_path: Path) -> None:
    from breakglass.app import build_app
    from breakglass.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("chain:\n  rpc: ['https://node.example/${KEY}']\n")
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    build_app(load_config(path, environ={"KEY": "zz-provider-key-123"}))
    get_logger("t").info("endpoint", note="calling https://node.example/zz-provider-key-123 now")
    assert "zz-provider-key-123" not in stream.getvalue()


def test_default_stream_is_stderr_at_each_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set up under one stderr that is then closed and replaced (a test runner's capture, a daemon's
    redirect): logging goes to the stderr of the moment instead of failing on the closed file."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(json=True)
    get_logger("t").warning("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("t").warning("two")
    assert json.loads(second.getvalue())["event"] == "two"
