"""The venue's governance Safe: the real Safe v1.4.1 bytecode shipped in safe-eth-py, deployed behind its
proxy factory, and owner-signed Safe transactions (EIP-712 hash from the Safe itself, sorted signatures).
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_account.signers.local import LocalAccount
from eth_typing import Hash32, HexStr
from safe_eth.eth.contracts import (
    get_proxy_factory_V1_4_1_contract,
    get_safe_V1_4_1_contract,
)
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from breakglass.devnet.venue.tx import build_tx, send_signed, sign_tx, transact
from breakglass.errors import DevnetError

__all__ = ["SafeDeployment", "deploy_safe", "exec_safe_tx", "safe_exec_function", "safe_signatures"]

ZERO = "0x0000000000000000000000000000000000000000"


class SafeDeployment:
    def __init__(self, singleton: Contract, factory: Contract, safe: Contract) -> None:
        self.singleton = singleton
        self.factory = factory
        self.safe = safe


def _deploy(w3: Web3, factory: Contract, deployer: LocalAccount) -> str:
    data = factory.constructor()._encode_data_in_transaction()
    tx = build_tx(w3, deployer.address, to=None, data=data, gas=8_000_000)
    receipt = send_signed(w3, sign_tx(deployer, tx)).receipt
    address = receipt["contractAddress"] if receipt and receipt["status"] == 1 else None
    if not address:
        raise DevnetError("Safe contract deployment returned no address")
    return str(address)


def deploy_safe(
    w3: Web3, deployer: LocalAccount, owners: Sequence[str], threshold: int, salt: int = 0
) -> SafeDeployment:
    """Deploy the Safe singleton and proxy factory, then a Safe proxy owned by ``owners``."""
    singleton_addr = _deploy(w3, get_safe_V1_4_1_contract(w3), deployer)
    factory_addr = _deploy(w3, get_proxy_factory_V1_4_1_contract(w3), deployer)
    singleton = get_safe_V1_4_1_contract(w3, singleton_addr)
    factory = get_proxy_factory_V1_4_1_contract(w3, factory_addr)
    setup = singleton.functions.setup(
        [Web3.to_checksum_address(o) for o in owners], threshold, ZERO, b"", ZERO, ZERO, 0, ZERO
    )._encode_transaction_data()
    create = factory.functions.createProxyWithNonce(singleton_addr, setup, salt)
    proxy = create.call({"from": deployer.address})
    transact(w3, deployer, create, gas=1_000_000)
    return SafeDeployment(singleton, factory, get_safe_V1_4_1_contract(w3, proxy))


def safe_signatures(safe_tx_hash: bytes, signers: Sequence[LocalAccount]) -> bytes:
    """Concatenated (r, s, v) owner signatures over the Safe tx hash, ordered by owner address."""
    ordered = sorted(signers, key=lambda a: int(a.address, 16))
    out = b""
    for account in ordered:
        sig = account.unsafe_sign_hash(Hash32(safe_tx_hash))
        out += sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v])
    return out


def safe_exec_function(
    safe: Contract, to: str, data: bytes | str, signers: Sequence[LocalAccount], *, value: int = 0
) -> ContractFunction:
    """``safe.execTransaction(...)`` for a call signed by ``signers`` at the Safe's current nonce."""
    nonce = safe.functions.nonce().call()
    raw = bytes(Web3.to_bytes(hexstr=HexStr(data))) if isinstance(data, str) else data
    args = (Web3.to_checksum_address(to), value, raw, 0, 0, 0, 0, ZERO, ZERO)
    safe_tx_hash = safe.functions.getTransactionHash(*args, nonce).call()
    return safe.functions.execTransaction(*args, safe_signatures(safe_tx_hash, signers))


def exec_safe_tx(
    w3: Web3,
    safe: Contract,
    to: str,
    data: bytes | str,
    signers: Sequence[LocalAccount],
    submitter: LocalAccount,
    *,
    value: int = 0,
    check: bool = True,
) -> TxReceipt:
    """Have ``signers`` (owners, at least the threshold) sign a call and ``submitter`` execute it."""
    fn = safe_exec_function(safe, to, data, signers, value=value)
    receipt = transact(w3, submitter, fn, gas=2_000_000, check=check)
    if check:
        # A Safe whose inner call fails still mines successfully; ExecutionFailure tells them apart.
        failures = safe.events.ExecutionFailure().process_receipt(receipt, errors=DISCARD)
        if failures:
            raise DevnetError(f"Safe transaction to {to} failed inside the Safe")
    return receipt
