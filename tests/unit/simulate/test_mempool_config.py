"""The ``mempool:`` section: off by default, strict, its WebSocket URL a secret of the right scheme."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from breakglass.config.mempool import MempoolConfig
from breakglass.config.models import Settings


def test_mempool_protection_is_off_unless_enabled() -> None:
    assert Settings().mempool.enabled is False
    on = Settings.model_validate({"mempool": {"enabled": True, "ignore": ["other_dex"], "max_in_flight": 8}})
    assert on.mempool.enabled and on.mempool.ignore == ["other_dex"] and on.mempool.max_in_flight == 8
    assert on.mempool.simulate_creations  # an exploit can run in a constructor


def test_unknown_keys_and_non_websocket_urls_are_refused_and_the_url_is_never_shown() -> None:
    with pytest.raises(ValidationError, match="enable"):
        MempoolConfig.model_validate({"enable": True})
    with pytest.raises(ValidationError, match="ws://"):
        MempoolConfig.model_validate({"ws": "https://node.example/key-123"})
    config = MempoolConfig.model_validate({"ws": "wss://node.example/key-123"})
    assert "key-123" not in repr(config) and "key-123" not in str(config.model_dump())
