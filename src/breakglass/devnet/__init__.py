"""The local chain world: anvil processes, solc-js builds, deployments and their manifests.

The names below load on first use (PEP 562): the CLI imports ``devnet.anvil`` for ``BlockMode`` to
declare its options, and ``manifest`` would otherwise load the whole configuration package (pydantic
models) at every ``breakglass`` start, ``--help`` included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from breakglass.lazy import lazy_exports

if TYPE_CHECKING:
    from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode, PublicBlocks
    from breakglass.devnet.manifest import ContractRecord, Manifest
    from breakglass.devnet.solc import Artifact, Build, compile_contracts

# Each exported name -> the module that defines it.
_SOURCES = {
    "Anvil": "breakglass.devnet.anvil",
    "AnvilOptions": "breakglass.devnet.anvil",
    "Artifact": "breakglass.devnet.solc",
    "BlockMode": "breakglass.devnet.anvil",
    "Build": "breakglass.devnet.solc",
    "ContractRecord": "breakglass.devnet.manifest",
    "Manifest": "breakglass.devnet.manifest",
    "PublicBlocks": "breakglass.devnet.anvil",
    "compile_contracts": "breakglass.devnet.solc",
}

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

__getattr__ = lazy_exports(__name__, _SOURCES, globals())
