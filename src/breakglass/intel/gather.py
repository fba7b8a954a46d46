"""An incident's indicators, from its timeline and (when a node is at hand) from the chain.

The timeline's findings name the transactions and, in their evidence, the accounts and contracts
their detectors saw (``attacker``, ``actor``, ``sender``, ``deployer``, ``contract``...). The chain
then says who sent each transaction, what it called or created, and which of those addresses hold
code (an attack contract: its code hash and dispatcher selectors) and which do not (an attacker
account). The protocol's own contracts are never indicators, whatever a finding says about them.
A set-up finding's ``funding`` path (its actor, the actor's funder, ... up to the mixer or flagged
source) becomes the incident's funding sources: shared, but not as attackers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from eth_utils.crypto import keccak

from breakglass.incidents.models import Incident
from breakglass.intel.bundle import AttackContract, IncidentIntel
from breakglass.timeline import TimelineEntry, TimelineKind

__all__ = ["ChainReader", "enrich", "intel_from_timeline"]

_ACCOUNT_KEYS = ("attacker", "actor", "sender", "deployer", "creator")
_CONTRACT_KEYS = ("contract", "attack_contract")
_SETUP_TARGETS = ("tainted-deployment", "fresh-contract-interaction")
_ZERO = "0x" + "00" * 20


class ChainReader(Protocol):
    """What ``enrich`` asks of a node (``chain.rpc.RpcClient`` is one)."""

    async def call(self, method: str, *params: Any) -> Any: ...


def _address(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        try:
            int(value, 16)
        except ValueError:
            return None
        return None if value.lower() == _ZERO else value.lower()
    return None


def intel_from_timeline(
    incident: Incident,
    timeline: Sequence[TimelineEntry],
    *,
    chain_id: int,
    protocol_addresses: Iterable[str],
) -> IncidentIntel:
    """What the findings of ``incident`` say, without asking the chain: accounts named in evidence,
    contracts (with the code hash the attack simulation recorded), and the findings' transactions."""
    protocol = {a.lower() for a in protocol_addresses}
    accounts: dict[str, None] = {}
    contracts: dict[str, AttackContract] = {}
    transactions: dict[str, None] = {}
    funding: dict[tuple[str, ...], None] = {}
    for entry in timeline:
        data = entry.data
        if entry.kind is not TimelineKind.FINDING or data.get("retracted"):
            continue
        evidence: Mapping[str, Any] = data.get("evidence") or {}
        path = _funding_path(evidence.get("funding"), protocol)
        if path:
            funding[path] = None
        tx = data.get("tx_hash")
        if isinstance(tx, str) and len(tx) == 66:
            transactions[tx.lower()] = None
        keys = [*_CONTRACT_KEYS] + (["target"] if evidence.get("signal") in _SETUP_TARGETS else [])
        for key in keys:
            address = _address(evidence.get(key))
            if address is not None and address not in protocol:
                code_hash = evidence.get("code_hash") if key in _CONTRACT_KEYS else None
                known = contracts.get(address)
                contracts[address] = AttackContract(
                    address,
                    code_hash=str(code_hash) if code_hash else (known.code_hash if known else None),
                    deployer=_address(evidence.get("deployer")) or (known.deployer if known else None),
                )
        for key in _ACCOUNT_KEYS:
            address = _address(evidence.get(key))
            if address is not None and address not in protocol and address not in contracts:
                accounts[address] = None
    return IncidentIntel(
        incident_id=incident.id,
        title=incident.title,
        protocol=incident.protocol,
        chain_id=chain_id,
        severity=_severity_name(incident.severity),
        detected_at_ms=incident.onset_at or incident.detected_at,
        accounts=tuple(a for a in accounts if a not in contracts),
        contracts=tuple(contracts.values()),
        transactions=tuple(transactions),
        funding=tuple(funding),
    )


def _funding_path(value: Any, protocol: set[str]) -> tuple[str, ...]:
    """A funding path of addresses (an actor and at least its funder), cut before any of ours."""
    if not isinstance(value, list):
        return ()
    path: list[str] = []
    for item in value:
        address = _address(item)
        if address is None or address in protocol:
            break
        path.append(address)
    return tuple(path) if len(path) >= 2 else ()


def _severity_name(value: int) -> str:
    from breakglass.domain import Severity

    return str(Severity(value))


async def enrich(
    intel: IncidentIntel, chain: ChainReader, *, protocol_addresses: Iterable[str]
) -> IncidentIntel:
    """``intel`` completed from the chain: each transaction's sender, what it called or created, and
    for every address whether it holds code (then its code hash and selectors) or not. A contract
    becomes an indicator when a finding named it or an incident transaction created it; one the
    exploit merely called (a token, a DEX router) does not."""
    from breakglass.simulate.bytecode import selectors

    protocol = {a.lower() for a in protocol_addresses}
    candidates: dict[str, str | None] = dict.fromkeys(intel.accounts)  # address -> deployer
    candidates.update({c.address: c.deployer for c in intel.contracts})
    created_here: set[str] = set()
    for tx_hash in intel.transactions:
        tx = await chain.call("eth_getTransactionByHash", tx_hash)
        if not tx:
            continue  # a pending transaction that never landed
        sender = _address(tx.get("from"))
        if sender is not None:
            candidates.setdefault(sender, None)
        to = _address(tx.get("to"))
        if to is not None:
            candidates.setdefault(to, None)
        receipt = await chain.call("eth_getTransactionReceipt", tx_hash)
        created = _address((receipt or {}).get("contractAddress"))
        if created is not None:
            candidates[created] = sender
            created_here.add(created)
    accounts: list[str] = []
    contracts: list[AttackContract] = []
    known = {c.address: c for c in intel.contracts}
    for address, deployer in candidates.items():
        if address in protocol:
            continue
        code = bytes.fromhex(str(await chain.call("eth_getCode", address, "latest"))[2:])
        if not code:
            accounts.append(address)
            continue
        if address not in known and address not in created_here:
            continue  # a contract the exploit only called (a token, a DEX): no indicator of anyone
        contracts.append(
            AttackContract(
                address,
                code_hash="0x" + keccak(code).hex(),
                selectors=tuple("0x" + s.hex() for s in selectors(code)),
                deployer=deployer or (known[address].deployer if address in known else None),
            )
        )
    return IncidentIntel(
        incident_id=intel.incident_id,
        title=intel.title,
        protocol=intel.protocol,
        chain_id=intel.chain_id,
        severity=intel.severity,
        detected_at_ms=intel.detected_at_ms,
        accounts=tuple(accounts),
        contracts=tuple(contracts),
        transactions=intel.transactions,
        funding=intel.funding,
    )
