"""High availability: the ``ha`` section (leader leases of ``breakglass.ha``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr

from breakglass.config.base import Strict

__all__ = ["HaConfig"]


class HaConfig(Strict):
    """Which process acts when several replicas run one role (``docs/architecture.md``, High
    availability). ``lease: none`` (default): this process is the only one, always the leader."""

    lease: Literal["none", "nats", "postgres"] = Field(
        default="none",
        description="where the leader leases live: nats (a JetStream key-value bucket, bus.url by "
        "default), postgres (a table, store.url by default), none (one process: always the leader)",
    )
    ttl_seconds: float = Field(
        default=3.0,
        ge=0.5,
        le=300,
        description="a leader silent this long loses its lease and a standby takes over; it stops "
        "acting on its own before then. Takeover time is about this plus one acquire retry (ttl/5)",
    )
    stall_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="the lease is renewed from a thread of its own, so a busy event loop keeps it; "
        "a process whose event loop has not run for this long stops renewing and loses the lease "
        "ttl later (default: 3 x ttl_seconds)",
    )
    holder_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="this replica's name in the lease (default: host name and process id)",
    )
    url: SecretStr | None = Field(
        default=None,
        description="the NATS or PostgreSQL server of the leases, when not bus.url / store.url",
    )
    _server: str | None = PrivateAttr(default=None)
    _prefix: str = PrivateAttr(default="breakglass")

    def resolve(self, *, server: str | None, prefix: str) -> None:
        """Set where the leases live, as the whole file says (``Settings`` calls it once loaded)."""
        self._server = self.url.get_secret_value() if self.url is not None else server
        self._prefix = prefix

    @property
    def server(self) -> str | None:
        """The NATS or PostgreSQL URL of the leases (``url``, else ``bus.url`` / ``store.url``)."""
        return self._server

    @property
    def prefix(self) -> str:
        """Names of the lease buckets on NATS start with this (``bus.prefix``)."""
        return self._prefix
