"""Logging: structlog, human console by default or JSON lines, with secrets redacted on the way out.

Redaction is the last processor before rendering, so no code path can log around it. It removes
(1) every known secret value (the configuration's ``SecretStr`` values, signer keys) wherever it
appears in any string, (2) values of keys whose names say secret (``private_key``, ``token``...),
(3) credentials and query strings in URLs, and (4) anything shaped like a raw private key under a
key-ish name.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["Redactor", "active_redactor", "configure_logging", "get_logger", "logging_settings", "redact_url"]

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(
    r"(private[_-]?key|secret|token|password|passphrase|api[_-]?key|authorization|mnemonic|"
    r"webhook|apprise|signature_key|keystore)",
    re.IGNORECASE,
)
_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s]+@)?(?P<rest>[^\s\"']*)", re.I)
_HEX_KEY = re.compile(r"\b(0x)?[0-9a-fA-F]{64}\b")


def redact_url(url: str) -> str:
    """Keep scheme, host and path; drop user:password@ and the query string (where API keys live)."""

    def clean(match: re.Match[str]) -> str:
        rest = match.group("rest")
        host_path, _, query = rest.partition("?")
        segments = host_path.split("/")
        # Provider URLs put the key in the path too (…/v2/<key>): mask long opaque segments.
        segments = [REDACTED if len(s) >= 20 and re.fullmatch(r"[A-Za-z0-9_-]+", s) else s for s in segments]
        out = match.group("scheme") + ("[redacted]@" if match.group("userinfo") else "") + "/".join(segments)
        return out + ("?" + REDACTED if query else "")

    return _URL.sub(clean, url)


class Redactor:
    """Removes known secrets and secret-looking values from log events. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= 4:
                    self._secrets.add(secret)
                    if secret.startswith("0x"):
                        self._secrets.add(secret[2:])

    def text(self, value: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if "://" in value:
            value = redact_url(value)
        return value

    def value(self, key: str | None, value: Any) -> Any:
        if key is not None and _SECRET_KEYS.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.hex())
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return [self.value(key, v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.text(repr(value) if not isinstance(value, BaseException) else str(value))

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            if key == "exc_info":
                continue
            event[key] = self.value(None if key == "event" else key, event[key])
        return event


def _format_exception_redacted(redactor: Redactor) -> Any:
    formatter = structlog.processors.format_exc_info

    def process(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event = formatter(logger, method, event)
        if "exception" in event:
            event["exception"] = redactor.text(str(event["exception"]))
        return event

    return process


_ACTIVE: list[Redactor] = []
_SETTINGS: list[str] = []


def logging_settings() -> str:
    """``json:LEVEL`` or ``console:LEVEL``, as ``configure_logging`` set them last (a child process
    that logs like its parent, ``api/process.py``)."""
    return _SETTINGS[-1] if _SETTINGS else "console:info"


def active_redactor() -> Redactor:
    """The redactor of the log pipeline ``configure_logging`` installed last (a new one if none).

    Logging is process-wide state in structlog; so is the redactor that guards it. ``build_app``
    registers the configuration's and the signers' secrets here, so that what the logs render is
    redacted by the very object that knows them.
    """
    if not _ACTIVE:
        _ACTIVE.append(Redactor())
    return _ACTIVE[-1]


class _Stderr:
    """``sys.stderr`` as it is at each write: a process whose stderr is replaced after logging was set
    up (a test runner capturing each test, a daemon redirecting it) writes where stderr is now, not to
    a file object that may have been closed since."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    *,
    json: bool = False,
    level: str = "info",
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> Redactor:
    """Set up structlog for the process. Returns the redactor so callers can register secrets."""
    redactor = redactor or Redactor()
    _ACTIVE[:] = [redactor]
    _SETTINGS[:] = [f"{'json' if json else 'console'}:{level}"]
    out: TextIO | _Stderr = stream or _Stderr()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _format_exception_redacted(redactor),
        redactor,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    return redactor


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
