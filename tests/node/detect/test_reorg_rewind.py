"""Stateful detectors across a real reorg (``anvil_reorg``): the new branch is judged without the
orphaned blocks' state."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from detect_support import USD, Probe  # type: ignore[import-not-found]

from breakglass.detect.flows import FlowDetector

pytestmark = pytest.mark.node


def yaml(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip() + "\n", "  ")


async def test_a_withdrawal_replayed_on_the_new_branch_is_not_counted_twice(
    probe: Probe, watch_factory: Any
) -> None:
    probe.deposit(probe.users[0], 100 * USD)
    watch = await watch_factory(
        yaml(f"""
        - id: vault-drain
          kind: flow
          severity: critical
          token: usd
          holders: [vault]
          window_blocks: 20
          max_outflow: {80 * USD}
        """)
    )
    user = probe.users[0]
    withdraw = probe.vault.functions.withdraw(50 * USD)
    probe.send(withdraw, user)
    assert await watch.catch_up() == []
    # the withdrawal's block is replaced by one carrying the same withdrawal: 50 left, once (a gas
    # limit of its own: anvil would estimate it on the old branch, where the withdrawal is done)
    data = withdraw._encode_transaction_data()
    replay = {"from": user, "to": probe.vault.address, "data": data, "gas": hex(200_000)}
    probe.node.rpc("anvil_reorg", 1, [[replay, 0]])
    found = await watch.catch_up()
    found += await watch.catch_up()
    assert watch.follower.reorgs == 1
    assert probe.token.functions.balanceOf(user).call() == 50 * USD  # the new branch withdrew it again
    assert found == []
    [flow] = [d for d in watch.engine.detectors if isinstance(d, FlowDetector)]
    assert sum(n for _b, _t, n in flow.window) == 50 * USD
