"""Keeper meta-transactions through the venue's ERC-2771 forwarder: EIP-712 signed ``ForwardRequest``s."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

__all__ = ["signed_price_push"]


def signed_price_push(
    forwarder: Contract, oracle: Contract, signer: LocalAccount, prices: dict[int, int]
) -> tuple[Any, ...]:
    """An ERC-2771 ForwardRequestData calling ``oracle.setPrices`` signed (EIP-712) by ``signer``."""
    w3 = forwarder.w3
    ids = sorted(prices)
    data = oracle.functions.setPrices(ids, [prices[i] for i in ids])._encode_transaction_data()
    nonce = forwarder.functions.nonces(signer.address).call()
    deadline = w3.eth.get_block("latest")["timestamp"] + 3_600
    gas = 300_000
    message = {
        "from": signer.address,
        "to": oracle.address,
        "value": 0,
        "gas": gas,
        "nonce": nonce,
        "deadline": deadline,
        "data": bytes.fromhex(data[2:]),
    }
    typed = encode_typed_data(
        domain_data={
            "name": "VenueForwarder",
            "version": "1",
            "chainId": w3.eth.chain_id,
            "verifyingContract": forwarder.address,
        },
        message_types={
            "ForwardRequest": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "gas", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint48"},
                {"name": "data", "type": "bytes"},
            ]
        },
        message_data=message,
    )
    signature = Account.sign_message(typed, signer.key).signature
    return (signer.address, oracle.address, 0, gas, deadline, message["data"], bytes(signature))
