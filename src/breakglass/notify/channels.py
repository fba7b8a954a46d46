"""Notification channels behind one small interface: Apprise URLs, and signed webhooks.

A ``Channel.send`` either delivers or raises ``NotifyError`` with ``recoverable`` saying whether a
retry may help. Channel URLs are secrets: ``repr`` and errors show them redacted, never whole.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any, Protocol

import apprise

from breakglass.config.alerting import ChannelConfig, NotificationsConfig
from breakglass.errors import NotifyError
from breakglass.notify.webhook import WebhookChannel, where

__all__ = ["AppriseChannel", "Channel", "build_channels"]

# Apprise logs whole notification URLs (their tokens included) at DEBUG; its warnings do not.
logging.getLogger("apprise").setLevel(logging.WARNING)


class Channel(Protocol):
    name: str

    async def send(self, title: str, body: str, payload: Mapping[str, Any]) -> None: ...

    async def close(self) -> None: ...


class AppriseChannel:
    """Slack, Discord, Telegram, PagerDuty, Opsgenie, email, json:// ... through one Apprise URL."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._url = url
        self._apprise = apprise.Apprise()
        with warnings.catch_warnings():
            # Apprise loads its plugins on the first add(), one of which imports the standard
            # library's deprecated ``imghdr``: not ours to fix, and not a warning for our users.
            warnings.simplefilter("ignore", DeprecationWarning)
            added = self._apprise.add(url)
        if not added:
            raise NotifyError(
                f"channel {name!r}: Apprise does not understand the URL ({where(url)})",
                recoverable=False,
            )

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r}, {where(self._url)!r})"

    async def send(self, title: str, body: str, payload: Mapping[str, Any]) -> None:
        result = await self._apprise.async_notify(body=body, title=title)
        if not result:
            # Apprise reports failure as a value, without a cause we could classify: retry it.
            raise NotifyError(f"channel {self.name!r}: delivery failed", recoverable=True)

    async def close(self) -> None:
        return None


def _channel(config: ChannelConfig, timeout: float) -> Channel:
    url = config.url.get_secret_value()
    if config.kind == "webhook":
        secret = config.secret.get_secret_value() if config.secret else None
        return WebhookChannel(config.name, url, secret, timeout=timeout)
    return AppriseChannel(config.name, url)


def build_channels(config: NotificationsConfig) -> dict[str, Channel]:
    """One channel per configured name; no I/O."""
    return {c.name: _channel(c, config.timeout) for c in config.channels}
