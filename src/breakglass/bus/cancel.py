"""Cancellation that a library turned into its own exception.

nats-py answers a cancelled ``fetch`` with its own errors (``nats.errors.TimeoutError``,
``ConnectionClosedError``) or asyncio's ``TimeoutError`` instead of letting ``CancelledError`` through.
A loop that treats those as "nothing came" or "restart the subscription" then never ends: the stage
cannot be stopped (``serve`` hung on SIGTERM on JetStream, the responder's consumer outlived its
cancel). Every such ``except`` asks ``cancelling()`` first.
"""

from __future__ import annotations

import asyncio

__all__ = ["cancelling", "raise_if_cancelling"]


def cancelling() -> bool:
    """True when the running task has been asked to stop (``Task.cancel()``), delivered or not."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelling(exc: BaseException) -> None:
    """Re-raise a cancellation that arrived disguised as ``exc``; return otherwise."""
    if cancelling():
        raise asyncio.CancelledError from exc
