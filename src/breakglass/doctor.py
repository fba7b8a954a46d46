"""``breakglass doctor CONFIG``: is a live deployment able to watch, contain and tell, before it must?

Every check runs against the real thing and says what is wrong in one line:

- ``rpc``: each endpoint of ``chain.rpc`` answers ``eth_chainId`` with the configured chain id;
- ``contracts``: every contract of the configuration has code at its address;
- ``guardian``: the signer holds the configured address (a remote signer lists it, a KMS key's public
  key is it), and its balance pays for ``RESERVE_TRANSACTIONS`` containment transactions at today's
  fees (``policy.max_gas`` x the max fee the responder would offer);
- ``playbooks``: every guardian call of every playbook, simulated (``eth_estimateGas``) from the
  guardian with placeholder values for templated arguments (numbers 0, addresses ``0x…dEaD``): a
  revert is a missing role or a contract refusing that call from this key;
- ``store``: reachable, migrated to head, writable;
- ``notifications``: each channel's URL parses, and an HTTP(S) endpoint accepts a TCP connection
  (nothing is sent: a test message would page someone).

With several chains (``chains:``), ``rpc``, ``contracts``, ``guardian`` and ``playbooks`` run for each
chain, each check's subject prefixed by the chain's name.

Endpoints are named by ``redact_url``; no secret is printed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from eth_abi.abi import encode

from breakglass.config import LoadedConfig
from breakglass.errors import BreakglassError, StoreError
from breakglass.logs import Redactor, redact_url

__all__ = ["DoctorCheck", "run_doctor"]

PLACEHOLDER_ADDRESS = "0x000000000000000000000000000000000000dEaD"


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    area: str
    subject: str
    ok: bool
    detail: str = ""


async def run_doctor(config: LoadedConfig, redactor: Redactor | None = None) -> list[DoctorCheck]:
    """Every check of the module docstring, in that order (the chain's checks once per chain)."""
    redactor = redactor or Redactor()
    redactor.add(config.secrets)
    out: list[DoctorCheck] = []
    for view in config.per_chain():  # several chains: each one's endpoints, contracts and guardian
        checks = await _chain(view, redactor)
        if view.several:
            name = view.settings.chain.name
            checks = [replace(c, subject=f"{name}: {c.subject}") for c in checks]
        out += checks
    out += await _store(config)
    out += await _notifications(config)
    return out


async def _chain(config: LoadedConfig, redactor: Redactor) -> list[DoctorCheck]:
    """One chain's checks: its endpoints (each answers the chain id), contracts and guardian."""
    from breakglass.chain.rpc import RpcClient

    out: list[DoctorCheck] = []
    urls = config.rpc_urls()
    if not urls:
        out.append(DoctorCheck("rpc", "chain.rpc", False, "no RPC endpoint and no deployment manifest"))
    expected = config.chain_id
    live: list[str] = []
    for url in urls:
        client = RpcClient.from_urls([url], timeout=5.0, max_rounds=1)
        try:
            answered = int(await client.call("eth_chainId"), 16)
            if expected is not None and answered != expected:
                out.append(
                    DoctorCheck("rpc", redact_url(url), False, f"chain id {answered}, expected {expected}")
                )
            else:
                out.append(DoctorCheck("rpc", redact_url(url), True, f"chain id {answered}"))
                live.append(url)
        except BreakglassError as exc:
            out.append(DoctorCheck("rpc", redact_url(url), False, redactor.text(str(exc))))
        finally:
            await client.close()
    if live:
        rpc = RpcClient.from_urls(live, timeout=10.0, max_rounds=2)
        try:
            out += await _contracts(config, rpc)
            out += await _guardian(config, rpc, redactor)
        finally:
            await rpc.close()
    return out


async def _contracts(config: LoadedConfig, rpc: Any) -> list[DoctorCheck]:
    names = sorted(config.contracts)
    codes = await rpc.batch(
        [("eth_getCode", (config.contracts[n].address, "latest")) for n in names], strict=False
    )
    out = []
    for name, code in zip(names, codes, strict=True):
        address = config.contracts[name].address
        if isinstance(code, BaseException):
            out.append(DoctorCheck("contracts", name, False, f"eth_getCode failed: {code}"))
        elif not code or code == "0x":
            out.append(DoctorCheck("contracts", name, False, f"no code at {address}"))
        else:
            out.append(DoctorCheck("contracts", name, True, f"{(len(code) - 2) // 2} bytes at {address}"))
    return out


async def _guardian(config: LoadedConfig, rpc: Any, redactor: Redactor) -> list[DoctorCheck]:
    from breakglass.app import RESERVE_TRANSACTIONS
    from breakglass.respond.fees import FeePolicy, FeeQuote
    from breakglass.respond.signer import load_guardian

    settings = config.settings
    guardian = settings.responder.guardian
    calls = [a for p in settings.playbooks for a in p.actions if a.kind == "call" and a.via == "guardian"]
    if guardian is None:
        if calls:
            return [
                DoctorCheck("guardian", "responder.guardian", False, "playbooks call via guardian, no key")
            ]
        return []
    try:
        signer = load_guardian(guardian, config.path.parent, redactor)
    except BreakglassError as exc:
        return [DoctorCheck("guardian", "responder.guardian", False, redactor.text(str(exc)))]
    address = signer.address
    out = [await _holds(signer, address)]
    block, tip = await rpc.batch(
        [("eth_getBlockByNumber", ("latest", False)), ("eth_maxPriorityFeePerGas", ())]
    )
    max_fee_wei = int(settings.policy.max_fee_gwei * 10**9)
    fees = FeePolicy(settings.responder.fees, max_fee_wei)
    quote = FeeQuote(int(block.get("baseFeePerGas") or "0x0", 16), int(tip, 16))
    cost = settings.policy.max_gas * fees.price(quote, None).max_fee_per_gas
    balance = int(await rpc.call("eth_getBalance", address, "latest"), 16)
    need = RESERVE_TRANSACTIONS * cost
    out.append(
        DoctorCheck(
            "guardian",
            f"balance of {address}",
            balance >= need,
            f"{balance / 1e18:.6g} ETH; {RESERVE_TRANSACTIONS} containment transactions cost up to "
            f"{need / 1e18:.6g} ETH at today's fees",
        )
    )
    for playbook in settings.playbooks:
        for action in playbook.actions:
            if action.kind == "call" and action.via == "guardian":
                out.append(await _simulate(config, rpc, address, f"{playbook.id}.{action.id}", action))
    return out


async def _holds(signer: Any, address: str) -> DoctorCheck:
    accounts = getattr(signer, "accounts", None)
    key_address = getattr(signer, "key_address", None)
    try:
        if accounts is not None:
            held = await accounts()
            ok = address.lower() in {a.lower() for a in held}
            return DoctorCheck(
                "guardian", "signer", ok, f"{signer.name} {'holds' if ok else 'does not hold'} {address}"
            )
        if key_address is not None:
            found = await key_address()
            return DoctorCheck("guardian", "signer", found == address, f"{signer.name} is {found}")
    except BreakglassError as exc:
        return DoctorCheck("guardian", "signer", False, str(exc))
    return DoctorCheck("guardian", "signer", True, f"local key of {address}")


def _placeholder(kind: str) -> Any:
    if kind.startswith(("uint", "int")):
        return 0
    if kind == "address":
        return PLACEHOLDER_ADDRESS
    if kind == "bool":
        return True
    if kind.startswith("bytes"):
        return b"\0" * int(kind[5:] or 32)
    return ""


async def _simulate(config: LoadedConfig, rpc: Any, sender: str, name: str, action: Any) -> DoctorCheck:
    from breakglass.respond.calls import CallTemplate

    record = config.contracts[action.contract]
    try:
        template = CallTemplate.build(
            action.contract, record.address, record.abi, action.function, action.args
        )
    except BreakglassError as exc:
        return DoctorCheck("playbooks", name, False, str(exc))
    values = [
        _placeholder(kind) if isinstance(arg, str) and "{" in arg else arg
        for kind, arg in zip(template.arg_types, template.args, strict=True)
    ]
    if template.static is not None:
        data = template.static.data
    else:
        data = template.selector + encode(list(template.arg_types), values)
    tx = {"from": sender, "to": template.address, "data": "0x" + data.hex(), "value": "0x0"}
    shown = f"{action.contract}.{template.signature}"
    try:
        gas = int(await rpc.call("eth_estimateGas", tx), 16)
    except BreakglassError as exc:
        reason = str(exc).split(": ", 1)[-1][:160]
        return DoctorCheck(
            "playbooks", name, False, f"{shown} reverts from the guardian ({reason}): missing role?"
        )
    return DoctorCheck("playbooks", name, True, f"{shown} simulates from the guardian ({gas} gas)")


async def _store(config: LoadedConfig) -> list[DoctorCheck]:
    from breakglass.store.db import Store
    from breakglass.store.migrate import current_async, head

    url = config.settings.store.url
    shown = redact_url(url)
    try:
        current = await current_async(url)
    except Exception as exc:  # a driver's error may carry the password: its class only
        return [DoctorCheck("store", shown, False, f"unreachable ({type(exc).__name__})")]
    wanted = head()
    if current != wanted:
        return [
            DoctorCheck(
                "store",
                shown,
                False,
                f"at migration {current}, head is {wanted}: run `breakglass db upgrade`",
            )
        ]
    store = Store(url)
    try:
        await store.check_writable()
    except StoreError as exc:
        return [DoctorCheck("store", shown, False, str(exc))]
    except Exception as exc:  # a driver's error may carry the password: its class only
        return [DoctorCheck("store", shown, False, f"not writable ({type(exc).__name__})")]
    finally:
        await store.close()
    return [DoctorCheck("store", shown, True, f"migrated ({current}) and writable")]


async def _notifications(config: LoadedConfig) -> list[DoctorCheck]:
    out = []
    for channel in config.settings.notifications.channels:
        url = channel.url.get_secret_value()
        out.append(await _reachable(channel.name, channel.kind, url))
    return out


async def _reachable(name: str, kind: str, url: str) -> DoctorCheck:
    if kind == "apprise":
        import apprise

        if not apprise.Apprise().add(url):
            return DoctorCheck("notifications", name, False, f"Apprise does not accept {redact_url(url)}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "json", "jsons", "form", "forms", "xml", "xmls"):
        return DoctorCheck("notifications", name, True, f"{parts.scheme}:// URL accepted (not dialled)")
    secure = parts.scheme.endswith("s")
    port = parts.port or (443 if secure else 80)
    host = parts.hostname or ""
    try:
        async with asyncio.timeout(5):
            _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return DoctorCheck("notifications", name, False, f"{host}:{port} unreachable ({type(exc).__name__})")
    return DoctorCheck("notifications", name, True, f"{host}:{port} accepts connections")


def failed(checks: Sequence[DoctorCheck]) -> list[DoctorCheck]:
    return [c for c in checks if not c.ok]
