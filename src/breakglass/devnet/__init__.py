"""The local chain world: anvil processes, solc-js builds, deployments and their manifests."""

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode, PublicBlocks
from breakglass.devnet.manifest import ContractRecord, Manifest
from breakglass.devnet.solc import Artifact, Build, compile_contracts

__all__ = [
    "Anvil",
    "AnvilOptions",
    "Artifact",
    "BlockMode",
    "Build",
    "ContractRecord",
    "Manifest",
    "PublicBlocks",
    "compile_contracts",
]
