"""``build_app(config)``: creates and wires every component. The CLI, the API and the drills call it.

Wiring is explicit and lives here only: constructors do no I/O, nothing reads configuration at import
time, there is no global locator. ``App.start()`` opens connections; ``App.close()`` releases them.
Each stage contributes one builder call below, in pipeline order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from breakglass.bus import Bus, InProcessBus
from breakglass.bus.consumer import Consumer, consumers_ready
from breakglass.config import LoadedConfig
from breakglass.errors import ConfigError, StoreError
from breakglass.health import CheckResult, Health
from breakglass.incidents.stage import build_incident_stage
from breakglass.logs import Redactor, active_redactor
from breakglass.store.db import Store

__all__ = [
    "READY_LAG_BLOCKS",
    "RECURSION_LIMIT",
    "RESERVE_TRANSACTIONS",
    "App",
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


@dataclass
class App:
    config: LoadedConfig
    bus: Bus
    redactor: Redactor
    components: dict[str, Any] = field(default_factory=dict)
    """Stage components by name (``follower``, ``detection``, ``alerts``, ``respond``, ...)."""
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
        for component in self.components.values():
            subscribe = getattr(component, "subscribe", None)
            if subscribe is not None:
                subscribe()

    async def close(self) -> None:
        for component in reversed(list(self.components.values())):
            closer = getattr(component, "close", None)
            if closer is not None:
                await closer()
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
) -> App:
    """Create every component for ``config``, in pipeline order; no I/O happens here. ``respond=False``
    leaves the responder out (``breakglass watch --no-respond``): no guardian key is loaded.
    ``guardian=False`` builds the responder without its key (the API's child process,
    ``api/process.py``, which runs no stage: it reads proposals and the ledger)."""
    if len(config.chain_names) > 1:  # the stages of each chain are wired next (issue 19)
        raise ConfigError([config.issue(("chains",), "several chains are checked, not yet served")])
    redactor = redactor or active_redactor()
    redactor.add(config.secrets)
    app = App(config=config, bus=bus or _build_bus(config), redactor=redactor)
    app.components["store"] = store = Store(config.settings.store.url)  # first in, last closed (issue 6)
    if config.settings.monitors and config.rpc_urls():  # chain -> findings (issue 4)
        from breakglass.detect.service import build_watcher

        app.components["watcher"] = watcher = build_watcher(config, app.bus, health=store.health)
        if config.settings.mempool.enabled:  # pending txs -> simulated findings (issue 7)
            from breakglass.simulate import build_mempool

            app.components["mempool"] = build_mempool(config, watcher, app.bus)
        if config.settings.attack_simulation.enabled:  # new contracts probed before they act (issue 16)
            from breakglass.simulate import build_attack_simulation

            app.components["attack_simulation"] = build_attack_simulation(config, watcher, app.bus)
    # findings -> actions: app.components["respond"].run(stop) (issue 5)
    if respond and config.settings.playbooks:
        from breakglass.respond import build_responder

        app.components["respond"] = build_responder(config, app.bus, redactor, store=store, guardian=guardian)
    # findings -> alerts -> incidents -> notifications; actions -> timeline: .start() or .run(stop) (issue 6)
    app.components["incidents"] = build_incident_stage(config, app.bus, store)
    if config.settings.intel.export is not None:  # confirmed incidents -> signed bundles for peers (issue 18)
        from breakglass.intel.export import load_intel_signer
        from breakglass.intel.exporter import IntelExporter

        signer = load_intel_signer(config, redactor)
        app.components["intel_export"] = IntelExporter(config, app.bus, store, signer)
    if config.settings.intel.pull_minutes is not None and config.settings.intel.sources:
        from breakglass.intel.puller import IntelPuller  # peers' intel on a schedule (issue 18)

        app.components["intel_pull"] = IntelPuller(config)
    _add_health_checks(app)
    from breakglass.metrics.refresh import MetricsRefresher  # store-derived gauges, bus lag (issue 15)

    app.components["metrics"] = MetricsRefresher(store, app.bus, app.health)
    restore_recursion_limit()  # after the imports above, which raise it (see RECURSION_LIMIT)
    return app


def _add_health_checks(app: App) -> None:
    """What ``/readyz`` and ``/livez`` ask of each stage (``breakglass.health``)."""
    store: Store = app.components["store"]

    async def store_writable() -> CheckResult:
        try:
            await store.check_writable()
        except StoreError as exc:  # our own sentence; a driver's error is named by its class only
            return CheckResult(False, str(exc))
        return CheckResult(True)

    app.health.add_readiness("store", store_writable)

    def consumers() -> list[Consumer]:
        return [c for component in app.components.values() for c in getattr(component, "consumers", ())]

    app.health.add_readiness("bus", consumers_ready(app.bus, consumers))  # every stage's subscriptions
    watcher = app.components.get("watcher")
    if watcher is not None:
        follower = watcher.follower

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

        app.health.add_readiness("follower", follower_caught_up)
        app.health.add_liveness("follower", follower_turning)
    responder = app.components.get("respond")
    if responder is not None:

        async def responder_ready() -> CheckResult:
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

        app.health.add_readiness("responder", responder_ready)
        app.health.add_liveness("responder", responder_turning)
