"""``breakglass init``: a starter configuration from a protocol's deployment (addresses and ABIs)."""

from breakglass.scaffold.render import InitOptions, render
from breakglass.scaffold.surface import ContractSurface, EmergencyFunction, ProtocolSurface, discover

__all__ = ["ContractSurface", "EmergencyFunction", "InitOptions", "ProtocolSurface", "discover", "render"]
