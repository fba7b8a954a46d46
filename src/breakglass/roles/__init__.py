"""Roles: which stages one ``breakglass serve`` process runs (``serve CONFIG --role detect --role api``).

No role chosen means every role, in one process, as on one machine. A process given some roles only
expects the others to run elsewhere, so what the stages hand each other must cross processes: the bus
must be NATS JetStream (``bus.kind: jetstream``) and the store PostgreSQL (``store.url``);
``check_roles`` refuses anything else at start. What each role runs (``build_app`` wires it so):

- ``detect``: the follower (blocks, reorgs, the checkpoint) and the detectors; the attack simulation
  (new contracts probed as the follower hands them over), which needs the follower's blocks;
- ``simulate``: the mempool watcher and the pending-transaction judge (``mempool.enabled``), on its
  own RPC client and detectors (the follower is built for them, not run); on JetStream every simulate
  process submits what it sees to the work queue and judges its share (``simulate/worker.py``);
- ``respond``: the responder (playbooks, policy, ledger, the guardian relayer, Safe proposals); the
  only role that loads the guardian key;
- ``incidents``: alerts, incidents, notifications, intel export and pull;
- ``api``: the REST API, the dashboard, ``/metrics`` (in its child process, ``api/process.py``).

Every process also runs the metrics refresher and answers ``/readyz`` and ``/livez`` with its own
roles' checks only (a process without ``api`` serves those two and its ``/metrics`` alone,
``api/probes.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from breakglass.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:  # `serve` imports this module to declare --role; --help need not load the config models
    from breakglass.config import LoadedConfig

__all__ = ["EVERY_ROLE", "Role", "check_roles", "roles_of"]


class Role(StrEnum):
    DETECT = "detect"
    SIMULATE = "simulate"
    RESPOND = "respond"
    INCIDENTS = "incidents"
    API = "api"


EVERY_ROLE = frozenset(Role)


def roles_of(names: Iterable[str] | None) -> frozenset[Role]:
    """The roles named (every role for none); a name that is no role is a ``ValueError``."""
    chosen = frozenset(Role(name) for name in names or ())
    return chosen or EVERY_ROLE


def check_roles(config: LoadedConfig, roles: frozenset[Role]) -> None:
    """Raise ``ConfigError`` when ``roles`` is not every role and the configuration keeps state in
    one process: the in-process bus (``bus.kind``) or a SQLite store (``store.url``)."""
    if roles == EVERY_ROLE:
        return
    chosen = ", ".join(sorted(roles))
    issues: list[ConfigIssue] = []
    if config.settings.bus.kind != "jetstream":
        issues.append(
            config.issue(
                ("bus", "kind"),
                f"{config.settings.bus.kind!r}: roles in separate processes ({chosen} here) talk over "
                "NATS JetStream; set bus.kind: jetstream and bus.url, or run serve without --role",
            )
        )
    if not config.settings.store.url.startswith(("postgresql", "postgres")):
        scheme = config.settings.store.url.split(":", 1)[0]
        issues.append(
            config.issue(
                ("store", "url"),
                f"a {scheme} store: roles in separate processes ({chosen} here) share a PostgreSQL "
                "store; set store.url to postgresql+psycopg://..., or run serve without --role",
            )
        )
    if issues:
        raise ConfigError(issues)
