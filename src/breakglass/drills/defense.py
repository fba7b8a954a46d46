"""breakglass defending a devnet venue in-process: the example configuration built for the devnet's
manifest, ``build_app`` wiring every stage, and what the stages publish recorded with wall-clock times.

The configuration is ``examples/venue.yaml`` (monitors) with ``examples/playbooks.venue.yaml``'s
responder, policy and playbooks as they ship (the playbooks match venue.yaml's monitors by id; the
playbooks example's own monitors are copies, for that file to stand alone). No playbook is added: what
contains an attack in a drill is what ships (issue 16 removed the drill-only set-up playbook that
blocked a mixer-funded deployer and its contract through ``blockAccount``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from eth_account import Account

from breakglass.app import App, Runs, build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.devnet.toolchain import examples_dir
from breakglass.domain import Finding, Severity
from breakglass.errors import BreakglassError
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.messages.alerts import AlertChange
from breakglass.messages.incidents import IncidentChange
from breakglass.store.migrate import upgrade_async

__all__ = [
    "EXAMPLES",
    "Defense",
    "Observed",
    "defended_config",
    "write_keystore",
]

EXAMPLES = examples_dir()
"""The shipped examples (a wheel's package data, or the checkout's ``examples/``)."""
PASSWORD_ENV = "BREAKGLASS_DRILL_KEYSTORE_PASSWORD"  # noqa: S105 (a variable name)


def write_keystore(folder: Path, private_key: bytes) -> tuple[Path, str]:
    """The guardian key as an encrypted keystore in the drill's folder, with a throwaway password
    (a devnet key: a cheap KDF so that loading it takes milliseconds)."""
    password = secrets.token_hex(16)
    keystore = Account.encrypt(private_key, password, kdf="pbkdf2", iterations=4096)
    path = folder / "guardian.keystore.json"
    path.write_text(json.dumps(keystore), encoding="utf-8")
    path.chmod(0o600)
    return path, password


def defended_config(
    folder: Path,
    manifest: Path,
    keystore: Path,
    *,
    ws_url: str | None,
    poll_interval: float = 0.05,
    rpc_url: str | None = None,
) -> Path:
    """Write ``folder/breakglass.yaml``: the examples for this devnet, a SQLite store in ``folder``, the
    guardian key from ``keystore``, the mempool stage on when ``ws_url`` is given. ``rpc_url`` overrides
    the manifest's endpoint (a faulty proxy in front of the node)."""
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "venue.yaml").read_text(encoding="utf-8"))
    playbooks: dict[str, Any] = yaml.safe_load(
        (EXAMPLES / "playbooks.venue.yaml").read_text(encoding="utf-8")
    )
    playbooks["responder"]["guardian"] = {
        "keystore": str(keystore.resolve()),
        "password": f"${{{PASSWORD_ENV}}}",
    }
    config.update(
        deployment=str(manifest.resolve()),
        store={"url": f"sqlite:///{folder.resolve() / 'breakglass.db'}"},
        responder=playbooks["responder"],
        policy=playbooks["policy"],
        playbooks=playbooks["playbooks"],
        mempool={"enabled": ws_url is not None, **({"ws": ws_url} if ws_url else {})},
    )
    config["chain"]["poll_interval"] = poll_interval
    if rpc_url:
        config["chain"]["rpc"] = [rpc_url]
    path = folder / "breakglass.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Observed:
    """What the pipeline published, each with the wall-clock ms it was seen at."""

    findings: list[Finding] = field(default_factory=list)
    actions: list[ActionEvent] = field(default_factory=list)
    alerts: list[AlertChange] = field(default_factory=list)
    incidents: list[IncidentChange] = field(default_factory=list)
    seen_ms: dict[int, float] = field(default_factory=dict)
    """Wall-clock ms at which each message (by ``id``) reached the drill's subscriber."""

    def seen(self, message: object) -> float:
        return self.seen_ms.get(id(message), 0.0)

    def serious(self) -> list[Finding]:
        return [f for f in self.findings if f.severity >= Severity.HIGH]

    def confirmed(self) -> list[ActionEvent]:
        return [a for a in self.actions if a.step is ActionStep.CONFIRMED]

    def incident_id(self) -> str | None:
        opened = [c.incident_id for c in self.incidents if c.change == "opened"]
        return opened[0] if opened else (self.incidents[0].incident_id if self.incidents else None)


@dataclass
class Defense:
    """The whole pipeline (follower, mempool simulator, responder, incident stage) on one event loop."""

    app: App
    observed: Observed = field(default_factory=Observed)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    on_event: Callable[[str, Any], None] | None = None
    errors: list[str] = field(default_factory=list)
    """Errors that ended a stage during the drill (e.g. the responder failing to start)."""

    @classmethod
    async def start(
        cls,
        config_path: Path,
        password: str,
        start_block: int,
        on_event: Callable[[str, Any], None] | None = None,
    ) -> Defense:
        """Migrate the store, build the app, start every stage from ``start_block``."""
        loaded = load_config(config_path, environ={PASSWORD_ENV: password})
        await upgrade_async(loaded.settings.store.url)
        defense = cls(build_app(loaded), on_event=on_event)
        app = defense.app
        await app.start()
        wired = app.components
        if wired.watcher is None or wired.respond is None or wired.incidents is None or wired.metrics is None:
            raise BreakglassError(f"{config_path}: a drill's defense needs monitors, chain.rpc and playbooks")
        watcher = wired.watcher
        watcher.follower.start_block = start_block
        observers: list[tuple[str, list[Any]]] = [
            (Topics.FINDINGS, defense.observed.findings),
            (Topics.ACTIONS, defense.observed.actions),
            (Topics.ALERTS, defense.observed.alerts),
            (Topics.INCIDENTS, defense.observed.incidents),
        ]
        for topic, sink in observers:
            stream = app.bus.subscribe(topic, f"drill-{topic}")
            defense.tasks.append(asyncio.create_task(defense._collect(topic, stream, sink)))
        await wired.incidents.start()
        runners: list[Runs] = [watcher, wired.respond, wired.metrics]
        mempool = wired.mempool
        if mempool is not None:
            runners.append(mempool)
        if wired.attack_simulation is not None:  # new contracts probed before they act (issue 16)
            runners.append(wired.attack_simulation)
        defense.tasks += [asyncio.create_task(r.run(defense.stop), name=type(r).__name__) for r in runners]
        if mempool is not None:
            async with asyncio.timeout(30):
                await mempool.mempool.subscribed.wait()
        return defense

    async def _collect(self, topic: str, stream: Any, sink: list[Any]) -> None:
        async for message in stream:
            self.observed.seen_ms[id(message)] = time.time() * 1000
            sink.append(message)
            if self.on_event is not None:
                self.on_event(topic, message)

    async def settle(self, head: int, within: float = 30.0) -> None:
        """Wait until the follower has processed ``head`` and the last action has an outcome."""
        assert self.app.components.watcher is not None  # checked by start()
        follower = self.app.components.watcher.follower
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            last = follower.last
            if last is not None and last.number >= head and not self._open_actions():
                return
            await asyncio.sleep(0.05)

    def _open_actions(self) -> set[str]:
        final = {ActionStep.CONFIRMED, ActionStep.FAILED, ActionStep.REFUSED, ActionStep.DUPLICATE}
        started = {a.key for a in self.observed.actions if a.step is ActionStep.SUBMITTED}
        done = {a.key for a in self.observed.actions if a.step in final}
        return started - done

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks[4:]:
            try:
                async with asyncio.timeout(30):
                    await task  # the timeout cancels the task
            except asyncio.CancelledError:
                pass
            except TimeoutError:  # a stage that does not stop on request would hang `serve`'s SIGTERM
                self.errors.append(f"{task.get_name()} did not end within 30 s of its stop (cancelled)")
            except BreakglassError as exc:  # a stage that died mid-drill is a result, not a crash
                self.errors.append(f"{type(exc).__name__}: {exc}")
        await self.app.close()  # closes the bus: the collectors end
        for task in self.tasks[:4]:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):
                    await task
