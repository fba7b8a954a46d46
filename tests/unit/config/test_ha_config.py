"""The ``ha`` section: which lease backend, checked against the servers the file configures."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakglass.config import load_config
from breakglass.errors import ConfigError
from breakglass.ha import MemoryLeaseBackend, build_lease, lease_backend


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "breakglass.yaml"
    path.write_text("protocol: p\n" + text)
    return load_config(path, environ={})


def messages(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [str(issue) for issue in info.value.issues]


def test_no_ha_section_is_one_process_that_always_leads(tmp_path: Path) -> None:
    settings = load(tmp_path, "").settings
    assert settings.ha.lease == "none"
    assert isinstance(lease_backend(settings.ha), MemoryLeaseBackend)
    lease = build_lease("respond", settings.ha)
    assert lease.ttl == settings.ha.ttl_seconds and lease.holder_id


def test_a_nats_lease_needs_a_nats_server(tmp_path: Path) -> None:
    [message] = messages(tmp_path, "ha: {lease: nats}\n")
    assert "ha.lease 'nats' needs a NATS server" in message and "bus.kind jetstream" in message


def test_a_postgres_lease_needs_a_postgresql_server(tmp_path: Path) -> None:
    [message] = messages(tmp_path, "ha: {lease: postgres}\n")  # the default store is SQLite
    assert "ha.lease 'postgres' needs a PostgreSQL server" in message


def test_an_unknown_backend_and_a_tiny_ttl_are_located(tmp_path: Path) -> None:
    found = messages(tmp_path, "ha:\n  lease: etcd\n  ttl_seconds: 0.1\n")
    assert any("ha.lease" in m and "nats" in m and "postgres" in m for m in found), found
    assert any("ha.ttl_seconds" in m for m in found), found


def test_the_lease_servers_default_to_the_bus_and_the_store(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        'bus: {kind: jetstream, url: "nats://127.0.0.1:4222", prefix: pre}\n'
        "ha: {lease: nats, ttl_seconds: 2, holder_id: east-1}\n",
    ).settings
    from breakglass.ha.nats import NatsLeaseBackend

    assert isinstance(lease_backend(settings.ha), NatsLeaseBackend)
    lease = build_lease("respond", settings.ha)
    assert (lease.holder_id, lease.ttl) == ("east-1", 2.0)
    pg = load(tmp_path, 'store: {url: "postgresql://u@h/db"}\nha: {lease: postgres}\n').settings
    from breakglass.ha.postgres import PostgresLeaseBackend

    assert isinstance(lease_backend(pg.ha), PostgresLeaseBackend)
