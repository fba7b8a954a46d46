"""breakglass: security incident management for DeFi derivatives venues.

Watches a protocol on an EVM chain, detects exploits and their set-up, contains them (pause, block,
tighten) through a guardian key or a Safe, and runs each incident from detection to post-mortem.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
