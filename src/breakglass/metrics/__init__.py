"""Prometheus metrics of every stage, in one place: names, help texts and labels (``docs/metrics.md``).

Naming follows Prometheus' conventions: ``breakglass_<stage>_<what>_<unit>``, counters end in
``_total``, times are seconds, amounts of ether are wei. Labels are bounded: monitor ids, severities,
action steps, incident states and endpoint *hosts* (``endpoint_label``: never a path, query or
credentials, where providers put API keys).

Hot paths pay for a counter increment or a histogram observation (0.5-1.5 us, children cached by the
caller), or nothing at all: per-monitor evaluation time is accumulated in plain floats by the
detection engine and read when Prometheus scrapes (``collect.py``); gauges that need the store or the
bus (alerts and incidents by state, bus lag) are refreshed by ``refresh.MetricsRefresher`` in the
background, not by the stages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ALERTS",
    "API_PROCESS_DEATHS",
    "ATTACK_PROBES",
    "ATTACK_PROBE_SECONDS",
    "ATTACK_SIMULATIONS",
    "ATTACK_SKIPPED",
    "BUS_CONSUMER_RESTARTS",
    "BUS_CONSUMER_UP",
    "BUS_LAG",
    "DETECTOR_ERRORS",
    "FINDINGS",
    "FOLLOWER_BLOCKS",
    "FOLLOWER_ERRORS",
    "FOLLOWER_HEAD",
    "FOLLOWER_LAG_BLOCKS",
    "FOLLOWER_LAG_SECONDS",
    "FOLLOWER_LAST_STEP",
    "FOLLOWER_PROCESSED",
    "FOLLOWER_REORGS",
    "INCIDENTS",
    "INTEL_BUNDLES",
    "MEMPOOL_LAST_SEEN",
    "MEMPOOL_SEEN",
    "MEMPOOL_SIMULATED",
    "MEMPOOL_SKIPPED",
    "MEMPOOL_SUBSCRIBED",
    "MEMPOOL_VERDICT_SECONDS",
    "NOTIFICATIONS",
    "READY",
    "RESPONDER_ACTIONS",
    "RESPONDER_BACKLOG",
    "RESPONDER_BALANCE",
    "RESPONDER_FEES",
    "RESPONDER_TX_COST",
    "RPC_ERRORS",
    "RPC_EXHAUSTED",
    "RPC_FAILOVERS",
    "RPC_REQUESTS",
    "RPC_SECONDS",
    "WORK_QUEUE_OLDEST_AGE",
    "WORK_QUEUE_PENDING",
    "endpoint_label",
]

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def endpoint_label(url: str) -> str:
    """``scheme://host[:port]`` of an endpoint URL: what a metric label may say about it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "invalid-url"
    return f"{parts.scheme}://{host}{port}"


# ---- chain/rpc: every JSON-RPC round trip, per endpoint
RPC_REQUESTS = Counter(
    "breakglass_rpc_requests", "JSON-RPC HTTP requests sent (a batch is one), per endpoint.", ["endpoint"]
)
RPC_ERRORS = Counter(
    "breakglass_rpc_errors",
    "JSON-RPC requests that failed over: reason=transport (unreachable, timeout, HTTP 5xx/429/401..., "
    "not JSON-RPC) or throttled (every answer a rate-limit error).",
    ["endpoint", "reason"],
)
RPC_SECONDS = Histogram(
    "breakglass_rpc_request_duration_seconds",
    "Time from sending a JSON-RPC request to its answer (or failure), per endpoint.",
    ["endpoint"],
    buckets=_LATENCY,
)
RPC_FAILOVERS = Counter(
    "breakglass_rpc_failovers",
    "Times a client moved its preferred endpoint to this one after the previous one failed.",
    ["endpoint"],
)
RPC_EXHAUSTED = Counter(
    "breakglass_rpc_exhausted",
    "Calls that gave up: every endpoint failed for every round of retries.",
)

# ---- chain/follower, per chain id
FOLLOWER_HEAD = Gauge("breakglass_follower_head_block", "The chain head the follower last saw.", ["chain_id"])
FOLLOWER_PROCESSED = Gauge(
    "breakglass_follower_processed_block", "The last block the follower processed.", ["chain_id"]
)
FOLLOWER_LAG_BLOCKS = Gauge(
    "breakglass_follower_head_lag_blocks",
    "Head minus the last processed block (confirmations included).",
    ["chain_id"],
)
FOLLOWER_LAG_SECONDS = Gauge(
    "breakglass_follower_head_lag_seconds",
    "Timestamp of the head block minus that of the last processed block.",
    ["chain_id"],
)
FOLLOWER_BLOCKS = Counter(
    "breakglass_follower_blocks_processed", "Blocks handed to detection and checkpointed.", ["chain_id"]
)
FOLLOWER_REORGS = Counter("breakglass_follower_reorgs", "Reorgs rolled back.", ["chain_id"])
FOLLOWER_ERRORS = Counter(
    "breakglass_follower_errors", "Follower steps that failed and were retried.", ["chain_id"]
)
FOLLOWER_LAST_STEP = Gauge(
    "breakglass_follower_last_step_timestamp_seconds",
    "Unix time of the follower's last successful step (head read, new blocks processed).",
    ["chain_id"],
)

# ---- detect: findings of both paths (per-monitor evaluation time: collect.py)
FINDINGS = Counter(
    "breakglass_findings",
    "Findings published, by monitor, severity and stage (block or pending).",
    ["monitor", "severity", "stage"],
)
DETECTOR_ERRORS = Counter(
    "breakglass_detector_errors", "Monitor evaluations that raised (logged, skipped).", ["monitor"]
)

# ---- intel: peers' signed bundles pulled (docs/intel.md)
INTEL_BUNDLES = Counter(
    "breakglass_intel_bundles",
    "Threat-intel bundles pulled, per source: outcome=accepted, or why refused (unsigned, tampered, "
    "untrusted, expired, malformed).",
    ["source", "outcome"],
)

# ---- chain/mempool + simulate: pending transactions
MEMPOOL_SEEN = Counter("breakglass_mempool_transactions_seen", "New pending transactions received.")
MEMPOOL_SIMULATED = Counter(
    "breakglass_mempool_transactions_simulated", "Pending transactions simulated and judged."
)
MEMPOOL_SKIPPED = Counter(
    "breakglass_mempool_transactions_skipped",
    "Pending transactions not judged: reason=duplicate, irrelevant, included (mined first), "
    "unsupported (a deployment the node cannot simulate, once) or error.",
    ["reason"],
)
MEMPOOL_VERDICT_SECONDS = Histogram(
    "breakglass_mempool_verdict_latency_seconds",
    "From a pending transaction first seen to its verdict (simulated ones only).",
    buckets=_LATENCY,
)
MEMPOOL_LAST_SEEN = Gauge(
    "breakglass_mempool_last_seen_timestamp_seconds",
    "Unix time the last new pending transaction arrived, or the mempool stage started (0: no such stage).",
)
MEMPOOL_SUBSCRIBED = Gauge(
    "breakglass_mempool_subscribed", "1 while the pending-transaction WebSocket subscription is live."
)

# ---- simulate/attack: new contracts probed before they act
ATTACK_PROBES = Counter(
    "breakglass_attack_simulation_probes",
    "Contracts probed: outcome=proven, quiet, timeout or superseded; reason=created, touched or follow-up "
    "(the one-simulation follow-up check).",
    ["outcome", "reason"],
)
ATTACK_SIMULATIONS = Counter(
    "breakglass_attack_simulation_simulations", "eth_simulateV1 requests made probing contracts."
)
ATTACK_SKIPPED = Counter(
    "breakglass_attack_simulation_skipped",
    "Work left undone: what=block (the queue was full), contract (over a block's budget) or cached "
    "(identical code probed quiet at its creation).",
    ["what"],
)
ATTACK_PROBE_SECONDS = Histogram(
    "breakglass_attack_simulation_probe_seconds", "Wall time of one contract's probe.", buckets=_LATENCY
)

# ---- respond
RESPONDER_ACTIONS = Counter(
    "breakglass_responder_actions",
    "Action steps recorded (intent, refused, duplicate, signed, submitted, confirmed, failed, ...).",
    ["step"],
)
RESPONDER_FEES = Counter(
    "breakglass_responder_fees_paid_wei", "Fees paid by the guardian key for landed transactions, in wei."
)
RESPONDER_BALANCE = Gauge(
    "breakglass_responder_guardian_balance_wei", "The guardian key's balance, in wei.", ["address"]
)
RESPONDER_TX_COST = Gauge(
    "breakglass_responder_containment_tx_cost_wei",
    "What one containment transaction may cost now: policy.max_gas times the current max fee per gas.",
)
RESPONDER_BACKLOG = Gauge(
    "breakglass_responder_ledger_backlog",
    "Signed guardian transactions without a final receipt yet (open ledger keys).",
)

# ---- alerts, incidents, notifications (store-derived gauges: refresh.py)
ALERTS = Gauge("breakglass_alerts", "Alerts in the store by status.", ["status"])
INCIDENTS = Gauge("breakglass_incidents", "Incidents in the store by state.", ["state"])
NOTIFICATIONS = Counter(
    "breakglass_notifications",
    "Notification deliveries by channel and outcome (delivered or failed).",
    ["channel", "outcome"],
)

# ---- bus and readiness
BUS_LAG = Gauge(
    "breakglass_bus_consumer_lag_messages",
    "Messages waiting for a durable consumer (a stage) on a topic.",
    ["topic", "consumer"],
)
WORK_QUEUE_PENDING = Gauge(
    "breakglass_work_queue_pending_items",
    "Items of a JetStream work queue (the simulate queue: pending transactions) not yet done, "
    "taken ones included.",
    ["stream"],
)
WORK_QUEUE_OLDEST_AGE = Gauge(
    "breakglass_work_queue_oldest_age_seconds",
    "How long the oldest item not yet done has waited in a JetStream work queue (0 when empty).",
    ["stream"],
)
BUS_CONSUMER_UP = Gauge(
    "breakglass_bus_consumer_up",
    "1 while a stage's durable consumer reads its topic, 0 while it waits to restart or has stopped.",
    ["topic", "consumer"],
)
BUS_CONSUMER_RESTARTS = Counter(
    "breakglass_bus_consumer_restarts",
    "Times a stage's durable consumer failed (logged as bus.consumer_failed) and subscribed again.",
    ["topic", "consumer"],
)
API_PROCESS_DEATHS = Counter(
    "breakglass_serve_api_deaths",
    "Times serve's API process died and was started again (cause: the signal, e.g. SIGSEGV, or exit).",
    ["cause"],
)
READY = Gauge("breakglass_ready", "1 when a readiness check passes, 0 when it fails.", ["check"])
