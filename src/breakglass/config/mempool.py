"""The ``mempool:`` section: pre-execution simulation of pending transactions (docs/mempool.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from breakglass.config.base import Strict

__all__ = ["MempoolConfig"]

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class MempoolConfig(Strict):
    """Watch pending transactions and simulate those that can touch the protocol before inclusion."""

    enabled: bool = False
    ws: SecretStr | None = Field(
        default=None,
        description="WebSocket endpoint for the full-body pending subscription; default: chain.ws, "
        "else txpool_content polling. Secret, because provider URLs usually embed an API key.",
    )
    poll_interval: float = Field(default=0.1, gt=0, le=10, description="txpool_content polling period")
    head_poll_interval: float = Field(
        default=0.1, gt=0, le=10, description="how often the latest block number is checked (caches)"
    )
    ignore: list[str] = Field(
        default_factory=list,
        description="contracts known to be unrelated to the protocol (names or 0x addresses): "
        "transactions calling them are not simulated",
    )
    simulate_creations: bool = Field(
        default=True, description="simulate contract deployments (an exploit can run in a constructor)"
    )
    max_in_flight: int = Field(default=32, ge=1, le=1024, description="simulations sent concurrently")

    @field_validator("ws")
    @classmethod
    def _ws(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("ws://", "wss://")):
            raise ValueError("mempool.ws must start with ws:// or wss://")
        return value
