"""Detection: monitors compiled from configuration, run on every block, findings out on the bus.

Build with ``build_detectors(config, chain_id=...)`` and hand the detectors to ``DetectionEngine``;
the engine is the follower's block handler. ``InvariantSet`` + a ``CallExecutor`` evaluate the
invariants on any state (the mempool simulator brings its own executor).
"""

from breakglass.detect.build import BuiltDetectors, build_detectors, contracts_of
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.invariants import InvariantSet, Violation
from breakglass.detect.plugins import Plugin, PluginContext
from breakglass.detect.reads import CallExecutor, ReadCall, RpcBatchExecutor, decode_results
from breakglass.messages.findings import Retraction

__all__ = [
    "BuiltDetectors",
    "CallExecutor",
    "DetectionEngine",
    "InvariantSet",
    "Plugin",
    "PluginContext",
    "ReadCall",
    "Retraction",
    "RpcBatchExecutor",
    "Violation",
    "build_detectors",
    "contracts_of",
    "decode_results",
]
