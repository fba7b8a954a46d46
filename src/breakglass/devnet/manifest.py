"""The deployment manifest a devnet writes: ``breakglass.config.deployment.Manifest``.

The manifest format belongs to configuration (a real deployment is described the same way); the devnet
writes it (``Deployer.manifest``). Re-exported here for the devnet's own code.
"""

from breakglass.config.deployment import ContractRecord, Manifest

__all__ = ["ContractRecord", "Manifest"]
