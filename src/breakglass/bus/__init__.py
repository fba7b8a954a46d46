"""The bus between pipeline stages: one Protocol, an in-process implementation, NATS JetStream later."""

from breakglass.bus.base import Bus, Topics
from breakglass.bus.memory import InProcessBus

__all__ = ["Bus", "InProcessBus", "Topics"]
