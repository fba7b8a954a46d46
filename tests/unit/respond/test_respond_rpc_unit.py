"""The responder's RPC: what an answer to eth_sendRawTransaction means; failover as the relayer sees it."""

from __future__ import annotations

from typing import Any

import pytest

from breakglass.chain.rpc import RpcClient
from breakglass.errors import RpcError
from breakglass.respond import SendVerdict, connect, send_verdict
from breakglass.respond.rpc import RESPONDER_ROUNDS
from breakglass.testing import FakeTransport

SEND = "eth_sendRawTransaction"
TX_HASH = "0x" + "ab" * 32


@pytest.mark.parametrize(
    "message",
    [
        "already known",  # geth, op-geth, anvil
        "known transaction: " + TX_HASH[2:],  # older geth
        "transaction already imported",
        "INTERNAL_ERROR: existing tx with same hash",  # erigon
        "nonce too low: next nonce 5, tx nonce 4",  # geth: mined (ours, after a failover)
        "Transaction nonce is too low. Try incrementing the nonce.",  # openethereum
        "AlreadyKnown",  # nethermind
        "OldNonce, Current nonce: 5, nonce of rejected tx: 4",  # nethermind
        "replacement transaction underpriced",  # an earlier version of ours is pending
    ],
)
def test_already_known_and_nonce_too_low_answers_mean_the_transaction_is_in(message: str) -> None:
    assert send_verdict(RpcError(SEND, message, code=-32000, recoverable=False)) is SendVerdict.IN


def test_the_words_may_come_in_the_error_data_rather_than_the_message() -> None:
    exc = RpcError(SEND, "Invalid parameters: tx", code=-32602, data="already known", recoverable=False)
    assert send_verdict(exc) is SendVerdict.IN


@pytest.mark.parametrize(
    "exc",
    [
        RpcError(SEND, "insufficient funds for gas * price + value", code=-32000, recoverable=False),
        RpcError(SEND, "max fee per gas less than block base fee", code=-32000, recoverable=False),
        RpcError(SEND, "txpool is full", code=-32000, recoverable=False),
        RpcError(SEND, "every endpoint failed after 3 rounds; last: http://a: HTTP 503", recoverable=True),
        RpcError(SEND, "transport: ConnectError", recoverable=True),
    ],
    ids=["funds", "fee-cap", "pool-full", "every-endpoint-down", "transport"],
)
def test_other_refusals_and_transport_failures_mean_send_the_same_bytes_again(exc: RpcError) -> None:
    assert send_verdict(exc) is SendVerdict.REFUSED


def node(*, send: Any = TX_HASH) -> FakeTransport:
    """A node that answers eth_sendRawTransaction with ``send`` (a hash or ``FakeTransport.error``)."""

    def handler(method: str, params: list[Any]) -> Any:
        return send if method == SEND else "0x1"

    return FakeTransport(handler)


async def test_a_send_fails_over_from_a_dead_endpoint_and_an_already_known_answer_there_is_in() -> None:
    dead = node()
    dead.down = True
    known = node(send=FakeTransport.error(-32000, "already known"))
    rpc = RpcClient([dead, known], backoff=0)
    with pytest.raises(RpcError) as info:
        await rpc.call(SEND, "0x02")
    assert not info.value.recoverable  # a healthy node's verdict, not an outage
    assert send_verdict(info.value) is SendVerdict.IN
    assert len(dead.sent) == 1 and len(known.sent) == 1


async def test_a_rate_limited_endpoint_is_skipped_for_the_send() -> None:
    limited = node(send=FakeTransport.error(-32005, "rate limit exceeded"))
    good = node()
    rpc = RpcClient([limited, good], backoff=0)
    assert await rpc.call(SEND, "0x02") == TX_HASH
    assert await rpc.call("eth_blockNumber") == "0x1"
    assert len(limited.sent) == 1  # the next call went straight to the endpoint that took the send


async def test_every_endpoint_down_is_a_recoverable_refusal_after_the_responders_rounds() -> None:
    first, second = node(), node()
    first.down = second.down = True
    rpc = RpcClient([first, second], max_rounds=RESPONDER_ROUNDS, backoff=0)
    with pytest.raises(RpcError) as info:
        await rpc.call(SEND, "0x02")
    assert info.value.recoverable and send_verdict(info.value) is SendVerdict.REFUSED
    assert len(first.sent) == len(second.sent) == RESPONDER_ROUNDS


async def test_connect_uses_every_url_in_order_and_names_endpoints_without_their_keys() -> None:
    key = "abcdefghijklmnopqrstuvwxyz012345"
    rpc = connect([f"https://eth.provider.example/v2/{key}", f"https://other.example/rpc?key={key}"])
    try:
        assert isinstance(rpc, RpcClient)
        assert rpc.endpoint.startswith("https://eth.provider.example/") and key not in rpc.endpoint
    finally:
        await rpc.close()  # nothing was opened: constructors do no I/O
