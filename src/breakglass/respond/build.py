"""``build_responder(config, bus, redactor)``: the response engine assembled from a loaded configuration.

Only the guardian key is read here (from its keystore file or variable), so that it is registered with
the redactor before anything can log; no network or database I/O happens until ``Responder.start()``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.bus import Bus
from breakglass.config import LoadedConfig
from breakglass.errors import ConfigError
from breakglass.logs import Redactor
from breakglass.respond.fees import FeePolicy
from breakglass.respond.journal import LedgerJournal, journal_path
from breakglass.respond.ledger import Ledger, make_hot_engine
from breakglass.respond.lookout import Lookout
from breakglass.respond.playbook import PlaybookBook, vet_playbooks
from breakglass.respond.policy import Policy
from breakglass.respond.ratify import RatificationWatcher
from breakglass.respond.relayer import GuardianRelayer
from breakglass.respond.responder import Responder
from breakglass.respond.rpc import Rpc, connect
from breakglass.respond.safe import SafeService
from breakglass.store.db import Store, make_engine, make_sessionmaker

if TYPE_CHECKING:  # eth_account (py_ecc under it) loads with a key: the API's child holds none
    from breakglass.respond.signer import Signer

__all__ = ["STORE_TIMEOUT", "build_responder"]

STORE_TIMEOUT = 1.0
"""Seconds a ledger write waits for a locked or silent store before it goes to the journal instead."""


def build_responder(
    config: LoadedConfig,
    bus: Bus,
    redactor: Redactor,
    *,
    store: Store | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    rpc: Rpc | None = None,
    signer: Signer | None = None,
    environ: Mapping[str, str] | None = None,
    vet: bool = True,
    guardian: bool = True,
) -> Responder:
    """The responder for ``config``.

    The database is the app's ``store`` (shared sessions, plus a hot-path engine on the same URL), or
    ``sessions``, or else engines of its own from ``store.url`` (disposed by ``Responder.close``). Its
    tables come from the store's migrations: run ``breakglass.store.migrate.upgrade_async`` first.
    ``rpc`` and ``signer`` override what the configuration says. A playbook call the policy always
    refuses is a ``ConfigError`` (as ``breakglass check`` says); ``vet=False`` builds it anyway, for
    tests of the refusals at run time. ``guardian=False`` loads no guardian key (the API's child
    process, which runs no stage: its Safe executions go through the pipeline's process).
    With ``ha.lease`` set, the responder is one replica of several: it acts only while it holds the
    lease ``respond-<guardian address>`` (``respond-<chain id>-<address>`` with several chains).
    """
    settings = config.settings
    book = PlaybookBook.compile(settings.playbooks, config.contracts, str(config.path), locate=config.issue)
    policy = Policy.compile(settings.policy, config.contracts, time.monotonic, locate=config.issue)
    book.chain_id = config.chain_id if config.several else None  # one of several chains: keys name it
    refused = vet_playbooks(book, policy, config.issue) if vet else []
    if refused:
        raise ConfigError(refused)
    engine = None
    hot = None
    # a claim the store does not take within a second goes to the journal (docs/reliability.md)
    if store is not None:
        sessions = store.sessions
        hot = make_hot_engine(store.url, busy_timeout=STORE_TIMEOUT)
    elif sessions is None:
        engine = make_engine(settings.store.url)
        sessions = make_sessionmaker(engine)
        hot = make_hot_engine(settings.store.url, busy_timeout=STORE_TIMEOUT)
    path = journal_path(settings.store.url, settings.store.journal, config.path.parent)
    scope = config.chain_id if config.several else None  # one of several chains: its own rows and journal
    if config.several:
        path = path.with_name(f"{path.name.removesuffix('.jsonl')}.{settings.chain.name}.jsonl")
    health = store.health if store is not None else None
    ledger = Ledger(
        sessions,
        hot=hot,
        journal=LedgerJournal(path),
        health=health,
        store_timeout=STORE_TIMEOUT + 2,
        chain_id=scope,
    )
    if rpc is None:
        urls = config.rpc_urls()
        # every endpoint of chain.rpc, in its order: a containment must not hang on one dead provider
        rpc = connect(urls, timeout=settings.chain.request_timeout) if urls else None
    responder = Responder(
        book=book,
        policy=policy,
        ledger=ledger,
        bus=bus,
        poll_interval=settings.chain.poll_interval,
        chain_id=scope,
        name=f"respond-{settings.chain.name}" if config.several else "respond",
    )
    responder.owned_engine = engine
    if rpc is None:
        return responder
    responder.rpc = rpc
    key = settings.responder.guardian if guardian else None
    if signer is None and key is not None:
        from breakglass.respond.signer import load_guardian

        signer = load_guardian(key, config.path.parent, redactor, environ)
    if signer is not None:
        fees = FeePolicy(settings.responder.fees, policy.max_fee_wei)
        responder.relayer = GuardianRelayer(
            rpc,
            signer,
            ledger,
            policy,
            fees,
            gas_margin=settings.responder.gas_margin,
            bump_after_blocks=settings.responder.bump_after_blocks,
            emit=responder.emit,
        )
    look = settings.responder.look
    if look is not None:
        responder.lookout = Lookout(rpc, look, config.contracts, file=str(config.path))
    responder.safes = SafeService(
        sessions,
        rpc,
        {s.name: s.address for s in settings.safes},
        relayer=responder.relayer,
        emit=responder.emit,
    )
    responder.ratifier = RatificationWatcher(rpc, ledger, emit=responder.emit)
    if settings.ha.lease != "none" and guardian:  # replicas: one acts at a time per key (issue 19)
        from breakglass.ha import build_lease

        owner = signer.address.lower() if signer is not None else settings.protocol
        if config.several:  # one key on several chains: one nonce, one lease per chain
            owner = f"{settings.chain.chain_id}-{owner}"
        responder.use_lease(build_lease(f"respond-{owner}", settings.ha))
    return responder
