"""The bus between pipeline stages: one Protocol, implemented in process and over NATS JetStream."""

from breakglass.bus.base import Bus, Topics
from breakglass.bus.memory import InProcessBus

__all__ = ["Bus", "InProcessBus", "Topics"]
