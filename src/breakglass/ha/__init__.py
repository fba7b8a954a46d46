"""High availability: leader leases with fencing tokens (``ha/lease.py``), for every role that must
have one active owner at a time (the responder per signing key, the follower per chain)."""

from __future__ import annotations

import os
import socket

from breakglass.config.ha import HaConfig
from breakglass.ha.lease import Held, Lease, LeaseBackend, LeaseError, MemoryLeaseBackend

__all__ = [
    "Held",
    "Lease",
    "LeaseBackend",
    "LeaseError",
    "MemoryLeaseBackend",
    "build_lease",
    "default_holder_id",
    "lease_backend",
]


def default_holder_id() -> str:
    """This process's name in a lease: host name and process id (two replicas on one host differ)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def lease_backend(ha: HaConfig) -> LeaseBackend:
    """The backend ``ha`` (``settings.ha``) names (no I/O): NATS KV, PostgreSQL, or this process's
    memory. One backend may serve several leases (one connection)."""
    if ha.lease != "none" and ha.server is None:
        raise LeaseError(f"ha.lease {ha.lease!r}: no server (load the settings through load_config)")
    if ha.lease == "nats":
        from breakglass.ha.nats import NatsLeaseBackend  # nats-py only when configured

        assert ha.server is not None
        return NatsLeaseBackend(ha.server, prefix=ha.prefix)
    if ha.lease == "postgres":
        from breakglass.ha.postgres import PostgresLeaseBackend

        assert ha.server is not None
        return PostgresLeaseBackend(ha.server)
    return MemoryLeaseBackend()


def build_lease(name: str, ha: HaConfig, backend: LeaseBackend | None = None) -> Lease:
    """The lease ``name`` for this process as ``ha`` (``settings.ha``) configures it (no I/O).
    Without HA (``lease: none``) the lease is in memory: this process acquires it at once and
    keeps it. With HA, ``run`` renews from a thread of its own on a connection of its own (a busy
    event loop does not lose the lease); ``backend`` serves direct calls only."""
    return Lease(
        name,
        ha.holder_id or default_holder_id(),
        ha.ttl_seconds,
        backend or lease_backend(ha),
        renewer=None if ha.lease == "none" else lambda: lease_backend(ha),
        stall_limit=ha.stall_seconds,
    )
