"""Response engine: playbooks, policy, ledger, executors (guardian relayer, Safe), optimistic guardian.

The names below load on first use (PEP 562): importing one submodule (``respond.ledger`` from the API
process, which holds no guardian key) must not pull in the signer stack (eth_account, py_ecc), which
``build`` -> ``relayer`` -> ``signer`` would otherwise import for every ``breakglass.respond.*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from breakglass.lazy import lazy_exports

if TYPE_CHECKING:
    from breakglass.messages.actions import ActionEvent, ActionStep
    from breakglass.respond.build import build_responder
    from breakglass.respond.calls import CallTemplate, ContractCall
    from breakglass.respond.fees import FeePolicy, FeeQuote, Fees, PendingFees
    from breakglass.respond.ledger import Ledger
    from breakglass.respond.playbook import PlaybookBook
    from breakglass.respond.policy import Policy
    from breakglass.respond.ratify import RatificationWatcher
    from breakglass.respond.relayer import GuardianRelayer, PlannedTx
    from breakglass.respond.responder import Responder, outbid_from
    from breakglass.respond.rpc import HttpRpc, Rpc, SendVerdict, connect, send_verdict
    from breakglass.respond.safe import SafeService
    from breakglass.respond.signer import LocalSigner, Signer, load_guardian
    from breakglass.respond.tables import create_tables

# Each exported name -> the module that defines it.
_SOURCES = {
    "ActionEvent": "breakglass.messages.actions",
    "ActionStep": "breakglass.messages.actions",
    "CallTemplate": "breakglass.respond.calls",
    "ContractCall": "breakglass.respond.calls",
    "FeePolicy": "breakglass.respond.fees",
    "FeeQuote": "breakglass.respond.fees",
    "Fees": "breakglass.respond.fees",
    "GuardianRelayer": "breakglass.respond.relayer",
    "HttpRpc": "breakglass.respond.rpc",
    "Ledger": "breakglass.respond.ledger",
    "LocalSigner": "breakglass.respond.signer",
    "PendingFees": "breakglass.respond.fees",
    "PlannedTx": "breakglass.respond.relayer",
    "PlaybookBook": "breakglass.respond.playbook",
    "Policy": "breakglass.respond.policy",
    "RatificationWatcher": "breakglass.respond.ratify",
    "Responder": "breakglass.respond.responder",
    "Rpc": "breakglass.respond.rpc",
    "SafeService": "breakglass.respond.safe",
    "SendVerdict": "breakglass.respond.rpc",
    "Signer": "breakglass.respond.signer",
    "build_responder": "breakglass.respond.build",
    "connect": "breakglass.respond.rpc",
    "create_tables": "breakglass.respond.tables",
    "load_guardian": "breakglass.respond.signer",
    "outbid_from": "breakglass.respond.responder",
    "send_verdict": "breakglass.respond.rpc",
}

__all__ = [
    "ActionEvent",
    "ActionStep",
    "CallTemplate",
    "ContractCall",
    "FeePolicy",
    "FeeQuote",
    "Fees",
    "GuardianRelayer",
    "HttpRpc",
    "Ledger",
    "LocalSigner",
    "PendingFees",
    "PlannedTx",
    "PlaybookBook",
    "Policy",
    "RatificationWatcher",
    "Responder",
    "Rpc",
    "SafeService",
    "SendVerdict",
    "Signer",
    "build_responder",
    "connect",
    "create_tables",
    "load_guardian",
    "outbid_from",
    "send_verdict",
]

__getattr__ = lazy_exports(__name__, _SOURCES, globals())
