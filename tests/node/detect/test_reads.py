"""View-call executors agree: a JSON-RPC batch of eth_calls and one Multicall3 ``aggregate3`` call."""

from __future__ import annotations

import pytest
from detect_support import USD, Probe  # type: ignore[import-not-found]

from breakglass.chain.rpc import RpcClient
from breakglass.detect.reads import (
    MulticallExecutor,
    ReadFailed,
    RpcBatchExecutor,
    decode_results,
    parse_call,
)
from breakglass.devnet.deploy import Deployer

pytestmark = pytest.mark.node


async def test_batch_and_multicall_read_the_same_values_and_failures(probe: Probe) -> None:
    probe.deposit(probe.users[0], 5 * USD)
    multicall = Deployer(probe.w3, probe.build).deploy("multicall", "ProbeMulticall")
    contracts = {
        "vault": (probe.vault.address, probe.build["ProbeVault"].abi),
        "usd": (probe.token.address, probe.build["MockERC20"].abi),
    }
    texts = [
        "vault.totalAssets()",
        "usd.balanceOf(vault)",
        f"vault.deposits({probe.users[0]})",
        "vault.unpause()",
    ]
    calls = [parse_call(t, contracts, "m") for t in texts]
    rpc = RpcClient.from_urls([probe.node.url])
    block = probe.w3.eth.block_number
    batch = decode_results(calls, await RpcBatchExecutor(rpc).execute(calls, block))
    multi = decode_results(calls, await MulticallExecutor(rpc, multicall.address).execute(calls, block))
    await rpc.close()
    assert (
        [batch[c.key] for c in calls[:3]] == [multi[c.key] for c in calls[:3]] == [5 * USD, 5 * USD, 5 * USD]
    )
    assert isinstance(batch["vault.unpause()"], ReadFailed) and isinstance(
        multi["vault.unpause()"], ReadFailed
    )
