"""Response engine: playbooks, policy, ledger, executors (guardian relayer, Safe), optimistic guardian."""

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
