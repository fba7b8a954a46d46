"""The chain boundary: JSON-RPC client, raw-answer decoding, the block follower and its checkpoint."""

from breakglass.chain.checkpoint import BlockRow, Checkpoint, CheckpointStore
from breakglass.chain.follower import BlockHandler, Follower, fetch_blocks
from breakglass.chain.rpc import HttpTransport, RpcClient, Transport, TransportError

__all__ = [
    "BlockHandler",
    "BlockRow",
    "Checkpoint",
    "CheckpointStore",
    "Follower",
    "HttpTransport",
    "RpcClient",
    "Transport",
    "TransportError",
    "fetch_blocks",
]
