"""solc-js builds: real compiles, cache hits on unchanged sources, misses on any change, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.toolchain import project_root
from breakglass.errors import CompileError, ToolchainError

pytestmark = pytest.mark.node

COUNTER = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
contract Counter is Ownable {
    uint256 public count;
    constructor() Ownable(msg.sender) {}
    function bump() external onlyOwner { count += STEP; }
    uint256 constant STEP = 1;
}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Counter.sol").write_text(COUNTER)
    # solc-js resolves @openzeppelin from the project's pinned node_modules.
    (tmp_path / "node_modules").symlink_to(project_root() / "node_modules")
    return tmp_path


def test_compiles_with_openzeppelin_then_hits_the_cache(tree: Path) -> None:
    cache = tree / "cache"
    first = compile_contracts(root=tree, cache_dir=cache)
    assert not first.cached
    counter = first["Counter"]
    assert counter.bytecode.startswith("0x60") and len(counter.deployed_bytecode) > 100
    assert {item.get("name") for item in counter.abi} >= {"bump", "count", "owner"}
    assert first.solc_version.startswith("0.8.30")

    second = compile_contracts(root=tree, cache_dir=cache)
    assert second.cached and second.key == first.key
    assert second["Counter"].bytecode == counter.bytecode


def test_any_source_or_setting_change_misses_the_cache(tree: Path) -> None:
    cache = tree / "cache"
    first = compile_contracts(root=tree, cache_dir=cache)
    source = tree / "contracts" / "Counter.sol"
    source.write_text(COUNTER.replace("STEP = 1", "STEP = 2"))
    changed = compile_contracts(root=tree, cache_dir=cache)
    assert not changed.cached and changed.key != first.key
    assert changed["Counter"].bytecode != first["Counter"].bytecode
    settings = {
        "optimizer": {"enabled": False},
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
    }
    unoptimized = compile_contracts(root=tree, cache_dir=cache, settings=settings)
    assert not unoptimized.cached and unoptimized.key != changed.key


def test_compile_errors_carry_solc_messages(tree: Path) -> None:
    (tree / "contracts" / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract Broken { uint x = ; }\n"
    )
    with pytest.raises(CompileError) as info:
        compile_contracts(root=tree, cache_dir=tree / "cache")
    assert any("Broken.sol" in m for m in info.value.messages)


def test_unknown_artifact_lists_known_names(tree: Path) -> None:
    build = compile_contracts(root=tree, cache_dir=tree / "cache")
    with pytest.raises(ToolchainError, match=r"no compiled contract 'Countr' \(known: Counter\)"):
        build["Countr"]


def test_the_project_contracts_compile(build: object) -> None:
    from breakglass.devnet.solc import Build

    assert isinstance(build, Build)
    assert "MockERC20" in build.artifacts


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir()
    with pytest.raises(ToolchainError, match="does not exist"):
        compile_contracts(root=tmp_path, cache_dir=tmp_path / "c")
