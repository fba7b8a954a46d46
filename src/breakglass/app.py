"""``build_app(config)``: creates and wires every component. The CLI, the API and the drills call it.

Wiring is explicit and lives here only: constructors do no I/O, nothing reads configuration at import
time, there is no global locator. ``App.start()`` opens connections; ``App.close()`` releases them.
Each stage contributes one builder call below, in pipeline order.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from breakglass.bus import Bus, InProcessBus
from breakglass.bus.consumer import Consumer, consumers_ready
from breakglass.config import LoadedConfig
from breakglass.errors import StoreError
from breakglass.health import CheckResult, Health
from breakglass.logs import Redactor, active_redactor
from breakglass.roles import EVERY_ROLE, Role, check_roles
from breakglass.roles.incidents import IncidentStage, build_incident_stage
from breakglass.store.db import Store

if TYPE_CHECKING:  # the stages load only when configured (build_app imports them where it builds them)
    from breakglass.chain.follower import Follower
    from breakglass.detect.service import Watcher
    from breakglass.intel.exporter import IntelExporter
    from breakglass.intel.puller import IntelPuller
    from breakglass.metrics.refresh import MetricsRefresher
    from breakglass.respond.responder import Responder
    from breakglass.simulate.service import AttackSimulationService, MempoolService

__all__ = [
    "READY_LAG_BLOCKS",
    "RECURSION_LIMIT",
    "RESERVE_TRANSACTIONS",
    "App",
    "ChainStages",
    "Closes",
    "Components",
    "Runs",
    "Subscribes",
    "build_app",
    "restore_recursion_limit",
]

RECURSION_LIMIT = 1000
"""CPython's own default. ``py_ecc`` (through ``eth-account``) and ``py-evm`` (through
``safe-eth-py``) raise the limit to 100,000 when imported, past the point where a deeply nested
JSON document (an API body, an RPC answer) overflows the C stack and kills the process instead of
raising ``RecursionError``. Nothing in breakglass recurses deeply."""


def restore_recursion_limit(limit: int = RECURSION_LIMIT) -> int:
    """Lower the interpreter's recursion limit to ``limit`` (never raise it); returns the old one."""
    old = sys.getrecursionlimit()
    if old > limit:
        sys.setrecursionlimit(limit)
    return old


READY_LAG_BLOCKS = 10
"""Readiness: the follower may be this many blocks behind head - confirmations."""
RESERVE_TRANSACTIONS = 5
"""Readiness: the guardian must afford this many containment transactions at today's fees."""
STALL_SECONDS = 60.0
"""Readiness and liveness: a loop (follower step, responder poll) silent this long is stuck."""


class Runs(Protocol):
    """A component that works until ``stop`` is set (``serve`` runs each in its own task)."""

    async def run(self, stop: asyncio.Event) -> None: ...


class Subscribes(Protocol):
    """A component that reads the bus: its subscriptions, taken before any producer runs."""

    def subscribe(self) -> None: ...

    @property
    def consumers(self) -> Sequence[Consumer]: ...


class Closes(Protocol):
    async def close(self) -> None: ...


@dataclass
class ChainStages:
    """One chain's stages in a deployment of several chains (``chains:``, ``config/chains.py``): built
    from that chain's one-chain view, named ``<stage>:<chain>`` in runners and health checks."""

    name: str
    watcher: Watcher | None = None
    mempool: MempoolService | None = None
    attack_simulation: AttackSimulationService | None = None
    respond: Responder | None = None
    """acts on this chain's findings only, with this chain's nonce and ledger rows"""


@dataclass
class Components:
    """What ``build_app`` wired in this process, one typed field per stage, in pipeline order; None:
    not configured, or not in this process. The lifecycle lists below are written out, not discovered."""

    store: Store
    watcher: Watcher | None = None
    """chain -> findings: RPC, follower, detection engine (issue 4)"""
    mempool: MempoolService | None = None
    """pending transactions -> simulated findings (issue 7)"""
    attack_simulation: AttackSimulationService | None = None
    """new contracts probed before they act (issue 16)"""
    respond: Responder | None = None
    """findings -> actions (issue 5)"""
    incidents: IncidentStage | None = None
    """findings -> alerts -> incidents -> notifications; actions -> timeline (issue 6)"""
    intel_export: IntelExporter | None = None
    """confirmed incidents -> signed bundles for peers (issue 18)"""
    intel_pull: IntelPuller | None = None
    """peers' intel on a schedule (issue 18)"""
    metrics: MetricsRefresher | None = None
    """store-derived gauges, bus lag (issue 15)"""
    chains: list[ChainStages] = field(default_factory=list)
    """With several chains, each chain's stages (then ``watcher``, ``mempool``, ``attack_simulation``
    and ``respond`` above stay None: they are the one chain's of a one-chain file)."""
    follow: bool = True
    """Whether the watchers run (the ``detect`` role): a ``simulate`` process without it builds them
    for their RPC clients and detectors only."""

    def runners(self) -> list[tuple[str, Runs]]:
        """Every component with a ``run(stop)``, by name, in pipeline order."""
        named: list[tuple[str, Runs | None]] = [
            ("watcher", self.watcher if self.follow else None),
            ("mempool", self.mempool),
            ("attack_simulation", self.attack_simulation),
            ("respond", self.respond),
            *[
                (f"{name}:{c.name}", stage)
                for c in self.chains
                for name, stage in (
                    ("watcher", c.watcher if self.follow else None),
                    ("mempool", c.mempool),
                    ("attack_simulation", c.attack_simulation),
                    ("respond", c.respond),
                )
            ],
            ("incidents", self.incidents),
            ("intel_export", self.intel_export),
            ("intel_pull", self.intel_pull),
            ("metrics", self.metrics),
        ]
        return [(name, runner) for name, runner in named if runner is not None]

    def subscribers(self) -> list[Subscribes]:
        """Every component that reads the bus, in pipeline order."""
        readers: list[Subscribes | None] = [
            self.respond,
            *[c.respond for c in self.chains],
            self.incidents,
            self.intel_export,
        ]
        return [reader for reader in readers if reader is not None]

    def consumers(self) -> list[Consumer]:
        """Every bus subscription of this process (readiness, metrics)."""
        return [consumer for reader in self.subscribers() for consumer in reader.consumers]

    def closers(self) -> list[Closes]:
        """Every component holding connections, in pipeline order (closed in reverse: the store last)."""
        holders: list[Closes | None] = [
            self.store,
            self.watcher,
            self.respond,
            *[stage for c in self.chains for stage in (c.watcher, c.respond)],
            self.incidents,
            self.intel_export,
            self.metrics,
        ]
        return [holder for holder in holders if holder is not None]


@dataclass
class App:
    config: LoadedConfig
    bus: Bus
    redactor: Redactor
    components: Components
    """What this process wired, by stage (``store``, ``watcher``, ``respond``, ``incidents``, ...)."""
    health: Health = field(default_factory=Health)
    """Readiness and liveness checks (``/readyz``, ``/livez``); stages add theirs in ``build_app``."""
    exposition: Callable[[], Awaitable[bytes]] | None = None
    """Where ``/metrics`` gets its text; None: this process's registry (the API's child process
    asks the pipeline's, ``api/process.py``)."""

    async def start(self) -> None:
        """Open what needs opening before the stages run (the JetStream connection)."""
        connect = getattr(self.bus, "connect", None)
        if connect is not None:
            await connect()

    def subscribe(self) -> None:
        """Take every consumer's bus subscriptions now, before any producer runs (``serve`` calls it
        after ``start``): the in-process bus keeps nothing for a topic without a subscriber, so a
        consumer still starting (a slow migration) would lose what the watcher publishes meanwhile.
        Only for an app that runs all its consumers: the follower checkpoints a block once every
        subscribed consumer handled its findings (``Bus.settled``), so one never run would hold it."""
        for reader in self.components.subscribers():
            reader.subscribe()

    async def close(self) -> None:
        for holder in reversed(self.components.closers()):
            await holder.close()
        await self.bus.close()


def _build_bus(config: LoadedConfig) -> Bus:
    settings = config.settings.bus
    if settings.kind == "jetstream" and settings.url is not None:
        from breakglass.bus.jetstream import JetStreamBus  # nats-py is only needed when configured

        return JetStreamBus(settings.url.get_secret_value(), prefix=settings.prefix)
    return InProcessBus()


def build_app(
    config: LoadedConfig,
    *,
    bus: Bus | None = None,
    redactor: Redactor | None = None,
    respond: bool = True,
    guardian: bool = True,
    roles: frozenset[Role] = EVERY_ROLE,
) -> App:
    """Create every component for ``config``, in pipeline order; no I/O happens here. ``respond=False``
    leaves the responder out (``breakglass watch --no-respond``): no guardian key is loaded.
    ``guardian=False`` builds the responder without its key (the API's child process,
    ``api/process.py``, which runs no stage: it reads proposals and the ledger). ``roles``: only the
    stages of these roles (``breakglass.roles``; ``serve --role``), the others run in other processes:
    a ``ConfigError`` unless the bus and the store are shared (``check_roles``)."""
    check_roles(config, roles)
    redactor = redactor or active_redactor()
    redactor.add(config.secrets)
    store = Store(config.settings.store.url)  # first in, last closed (issue 6)
    wired = Components(store, follow=Role.DETECT in roles)
    app = App(config=config, bus=bus or _build_bus(config), redactor=redactor, components=wired)
    for view in config.per_chain():  # chain -> findings -> actions, for each chain (issue 19)
        stages = _build_chain(app, view, respond=respond, guardian=guardian, roles=roles)
        if view.several:
            wired.chains.append(stages)
        else:
            wired.watcher, wired.mempool = stages.watcher, stages.mempool
            wired.attack_simulation, wired.respond = stages.attack_simulation, stages.respond
    # findings -> alerts -> incidents -> notifications; actions -> timeline: .start() or .run(stop) (issue 6)
    if Role.INCIDENTS in roles:
        wired.incidents = build_incident_stage(config, app.bus, store)
    if Role.INCIDENTS in roles and config.settings.intel.export is not None:  # signed bundles (issue 18)
        from breakglass.intel.export import load_intel_signer
        from breakglass.intel.exporter import IntelExporter

        signer = load_intel_signer(config, redactor)
        wired.intel_export = IntelExporter(config, app.bus, store, signer)
    if (
        Role.INCIDENTS in roles
        and config.settings.intel.pull_minutes is not None
        and config.settings.intel.sources
    ):
        from breakglass.intel.puller import IntelPuller  # peers' intel on a schedule (issue 18)

        wired.intel_pull = IntelPuller(config)
    _add_health_checks(app)
    from breakglass.metrics.refresh import MetricsRefresher  # store-derived gauges, bus lag (issue 15)

    mempools = [wired.mempool, *(stages.mempool for stages in wired.chains)]
    queues = [m.queue for m in mempools if m is not None and m.queue is not None]  # simulate queues
    wired.metrics = MetricsRefresher(store, app.bus, app.health, queues=list(queues))
    restore_recursion_limit()  # after the imports above, which raise it (see RECURSION_LIMIT)
    return app


def _build_chain(
    app: App, config: LoadedConfig, *, respond: bool, guardian: bool, roles: frozenset[Role]
) -> ChainStages:
    """One chain's stages of ``roles``, from its one-chain configuration (``LoadedConfig.per_chain``)."""
    store = app.components.store
    stages = ChainStages(config.settings.chain.name)
    chain = roles & {Role.DETECT, Role.SIMULATE}
    if chain and config.settings.monitors and config.rpc_urls():  # chain -> findings (issue 4)
        from breakglass.detect.service import build_watcher

        stages.watcher = watcher = build_watcher(config, app.bus, health=store.health)
        if Role.SIMULATE in roles and config.settings.mempool.enabled:  # pending txs -> findings (issue 7)
            from breakglass.simulate import build_mempool
            from breakglass.simulate.worker import work_queue_for

            # on JetStream the judging is a work queue (one per chain) shared by every simulate worker
            queue = work_queue_for(app.bus, config.settings.chain.name if config.several else None)
            stages.mempool = build_mempool(config, watcher, app.bus, queue=queue, worker=True)
        if Role.DETECT in roles and config.settings.attack_simulation.enabled:  # probed contracts (issue 16)
            from breakglass.simulate import build_attack_simulation

            stages.attack_simulation = build_attack_simulation(config, watcher, app.bus)
    # findings -> actions: app.components.respond.run(stop) (issue 5); several chains: one per chain,
    # each acting on its chain's findings with its own relayer (nonce) and ledger rows
    if respond and Role.RESPOND in roles and config.settings.playbooks:
        from breakglass.respond import build_responder

        stages.respond = build_responder(config, app.bus, app.redactor, store=store, guardian=guardian)
    return stages


def _add_health_checks(app: App) -> None:
    """What ``/readyz`` and ``/livez`` ask of each stage (``breakglass.health``)."""
    store = app.components.store

    async def store_writable() -> CheckResult:
        try:
            await store.check_writable()
        except StoreError as exc:  # our own sentence; a driver's error is named by its class only
            return CheckResult(False, str(exc))
        return CheckResult(True)

    app.health.add_readiness("store", store_writable)

    every_subscription = consumers_ready(app.bus, lambda: app.components.consumers())
    app.health.add_readiness("bus", every_subscription)
    wired = app.components
    named = [("", wired.watcher, wired.respond, wired.mempool)]
    named += [(f":{c.name}", c.watcher, c.respond, c.mempool) for c in wired.chains]
    for suffix, watcher, responder, mempool in named:
        if watcher is not None and wired.follow:
            _add_follower_checks(app, "follower" + suffix, watcher.follower)
        if responder is not None:
            _add_responder_checks(app, "responder" + suffix, responder)
        if mempool is not None and mempool.worker is not None:  # the simulate work queue (issue 19)
            app.health.add_readiness("simulate" + suffix, mempool.worker.ready)


def _add_follower_checks(app: App, name: str, follower: Follower) -> None:
    """A follower's checks, named ``follower`` (``follower:<chain>`` with several chains)."""

    async def follower_caught_up() -> CheckResult:
        if follower.last_step_at is None or follower.head is None or follower.last is None:
            return CheckResult(False, "not caught up yet")
        age = time.monotonic() - follower.last_step_at
        if age > STALL_SECONDS:
            return CheckResult(False, f"no successful step for {age:.0f} s")
        behind = follower.head - follower.confirmations - follower.last.number
        if behind > READY_LAG_BLOCKS:
            return CheckResult(False, f"{behind} blocks behind")
        return CheckResult(True)

    async def follower_turning() -> CheckResult:
        attempted = follower.last_attempt_at
        if attempted is not None and time.monotonic() - attempted > STALL_SECONDS:
            return CheckResult(False, f"no step attempted for {time.monotonic() - attempted:.0f} s")
        return CheckResult(True)

    app.health.add_readiness(name, follower_caught_up)
    app.health.add_liveness(name, follower_turning)


def _add_responder_checks(app: App, name: str, responder: Responder) -> None:
    """A responder's checks, named ``responder`` (``responder:<chain>`` with several chains)."""

    async def responder_ready() -> CheckResult:
        if responder.lease is not None and not responder.lease.is_held():
            return CheckResult(True, "standby: another replica holds the lease")
        if not responder.started:
            return CheckResult(False, "not started")
        relayer = responder.relayer
        if relayer is None:
            return CheckResult(True, "no guardian key: proposals and notices only")
        if relayer.balance is None:
            return CheckResult(False, "guardian balance not read yet")
        needed = RESERVE_TRANSACTIONS * relayer.tx_cost()
        if relayer.balance < needed:
            return CheckResult(
                False,
                f"guardian {relayer.address} holds {relayer.balance} wei, below {RESERVE_TRANSACTIONS} "
                f"containment transactions ({needed} wei)",
            )
        return CheckResult(True)

    async def responder_turning() -> CheckResult:
        ticked = responder.last_tick_at
        if ticked is not None and time.monotonic() - ticked > STALL_SECONDS:
            return CheckResult(False, f"poll loop silent for {time.monotonic() - ticked:.0f} s")
        return CheckResult(True)

    app.health.add_readiness(name, responder_ready)
    app.health.add_liveness(name, responder_turning)
