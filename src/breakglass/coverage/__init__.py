"""The pause-coverage audit: when a containment is applied, which of the users' calls still succeed,
and which of those still move value out of the protocol (docs/coverage.md).

``probes`` finds the calls to try (history, then the ABI), ``actions`` the containments (from the
playbooks), ``audit`` runs them on a local node, ``report`` says what was found; ``service`` wires them
from a configuration, forking the configured node.
"""

from __future__ import annotations

from breakglass.coverage.audit import AuditOptions, ValueScope, run_audit
from breakglass.coverage.report import CoverageReport

__all__ = ["AuditOptions", "CoverageReport", "ValueScope", "run_audit"]
