"""The one exception tree of breakglass. Library code raises these; only the CLI turns them into exit codes.

    BreakglassError                 base; ``recoverable`` says whether a retry may succeed
    ├── ConfigError                 a configuration file is wrong; carries every ConfigIssue found
    ├── ToolchainError              anvil or solc-js missing, failing, or a compile error
    │   └── CompileError            solc-js reported errors; carries its messages
    ├── DevnetError                 the managed anvil process did not start, answer or stop
    ├── ChainError                  the chain answered badly or not at all
    │   ├── RpcError                a JSON-RPC error object or a transport failure (recoverable)
    │   └── ChainDataError          an answer that does not decode (names the method and field)
    ├── DetectionError              a monitor failed to evaluate (names the monitor)
    ├── ResponseError               an action could not be planned or sent
    │   └── PolicyViolation         the policy refused a call; never recoverable
    ├── NotifyError                 a notification channel failed (recoverable)
    ├── StoreError                  the database refused or lost a write
    ├── IntelError                  a threat-intel bundle was refused (``reason``: unsigned, tampered, ...)
    ├── IncidentError               (incidents/errors.py) an incident operation was refused
    │   ├── IncidentNotFound        no incident with that id (the API answers 404)
    │   └── InvalidTransition       not a valid lifecycle move (the API answers 409)
    ├── TokenError                  (api/auth.py) an API token is unknown, revoked or malformed
    ├── StageFailed                 a stage of ``breakglass serve`` ended with an error (exit code 5)
    └── ScorecardError              (drills/readme.py) the README has no scorecard section for a mode

Errors that never leave their module's boundary stay outside the tree: ``chain.rpc.TransportError``
(translated to ``RpcError``) and ``bus.codec.CodecError``.

Errors carry fields (``path``, ``value``, ``method``...) rather than only strings, so that callers and
tests can inspect them; ``str()`` renders the user-facing message with the location first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BreakglassError",
    "ChainDataError",
    "ChainError",
    "CompileError",
    "ConfigError",
    "ConfigIssue",
    "DetectionError",
    "DevnetError",
    "IntelError",
    "NotifyError",
    "PolicyViolation",
    "ResponseError",
    "RpcError",
    "StageFailed",
    "StoreError",
    "ToolchainError",
]


class BreakglassError(Exception):
    """Base of every error breakglass raises on purpose."""

    recoverable: bool = False

    def __init__(self, message: str, *, recoverable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if recoverable is not None:
            self.recoverable = recoverable

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in one configuration file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(BreakglassError):
    """The configuration is invalid. Nothing of it was applied."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        lines = "\n".join(str(i) for i in self.issues)
        super().__init__(f"{len(self.issues)} configuration error(s):\n{lines}")


class ToolchainError(BreakglassError):
    pass


class CompileError(ToolchainError):
    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)
        super().__init__("solc reported errors:\n" + "\n".join(self.messages))


class DevnetError(BreakglassError):
    pass


class ChainError(BreakglassError):
    pass


class RpcError(ChainError):
    """A JSON-RPC call failed. ``code`` is the JSON-RPC error code when the node sent one."""

    recoverable = True

    def __init__(
        self,
        method: str,
        message: str,
        *,
        code: int | None = None,
        data: Any = None,
        endpoint: str | None = None,
        recoverable: bool | None = None,
    ) -> None:
        self.method = method
        self.code = code
        self.data = data
        self.endpoint = endpoint
        prefix = f"{method}"
        if code is not None:
            prefix += f" [{code}]"
        super().__init__(f"{prefix}: {message}", recoverable=recoverable)


class ChainDataError(ChainError):
    def __init__(self, method: str, field: str, value: Any, reason: str) -> None:
        self.method = method
        self.field = field
        self.value = value
        super().__init__(f"{method}: field {field!r} = {value!r}: {reason}")


class DetectionError(BreakglassError):
    def __init__(self, monitor_id: str, message: str) -> None:
        self.monitor_id = monitor_id
        super().__init__(f"monitor {monitor_id!r}: {message}")


class ResponseError(BreakglassError):
    pass


class PolicyViolation(ResponseError):
    """The responder was asked to send a call the policy does not allow. Audited, never retried."""

    recoverable = False

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"policy refused ({rule}): {detail}", recoverable=False)


class NotifyError(BreakglassError):
    recoverable = True


class StoreError(BreakglassError):
    pass


class IntelError(BreakglassError):
    """A threat-intel bundle could not be built, read or trusted. ``reason``: ``unsigned``,
    ``tampered``, ``untrusted``, ``expired``, ``malformed`` (a refusal, the label of its metric),
    ``unreachable`` (a TAXII collection that did not answer), ``empty`` (nothing to export)."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class StageFailed(BreakglassError):
    """A stage of ``breakglass serve`` (``component``: follower, detection, responder...) ended with an
    error, e.g. a detect replica that lost its lease (``detect.service.LeaseLost``): the process stops
    with exit code 5 so that any supervisor restarts it; a SIGTERM or Ctrl-C stops it with 0."""

    def __init__(self, component: str, error: str) -> None:
        super().__init__(f"stage {component} failed: {error}")
        self.component = component
        self.error = error
