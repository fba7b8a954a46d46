"""``build_app(config)``: creates and wires every component. The CLI, the API and the drills call it.

Wiring is explicit and lives here only: constructors do no I/O, nothing reads configuration at import
time, there is no global locator. ``App.start()`` opens connections; ``App.close()`` releases them.
Each stage contributes one builder call below, in pipeline order.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from breakglass.bus import Bus, InProcessBus
from breakglass.config import LoadedConfig
from breakglass.incidents.stage import build_incident_stage
from breakglass.logs import Redactor, active_redactor
from breakglass.store.db import Store

__all__ = ["RECURSION_LIMIT", "App", "build_app", "restore_recursion_limit"]

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


@dataclass
class App:
    config: LoadedConfig
    bus: Bus
    redactor: Redactor
    components: dict[str, Any] = field(default_factory=dict)
    """Stage components by name (``follower``, ``detection``, ``alerts``, ``respond``, ...)."""

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


def build_app(config: LoadedConfig, *, bus: Bus | None = None, redactor: Redactor | None = None) -> App:
    """Create every component for ``config``, in pipeline order; no I/O happens here."""
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
    if config.settings.playbooks:  # findings -> actions: app.components["respond"].run(stop) (issue 5)
        from breakglass.respond import build_responder

        app.components["respond"] = build_responder(config, app.bus, redactor, store=store)
    # findings -> alerts -> incidents -> notifications; actions -> timeline: .start() or .run(stop) (issue 6)
    app.components["incidents"] = build_incident_stage(config, app.bus, store)
    restore_recursion_limit()  # after the imports above, which raise it (see RECURSION_LIMIT)
    return app
