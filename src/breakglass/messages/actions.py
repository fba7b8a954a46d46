"""What the responder publishes on ``Topics.ACTIONS``: one ``ActionEvent`` per step of every action.

The incident stage records them in the incident timeline; they mirror the ledger's append-only rows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from breakglass.bus.codec import register

__all__ = ["ActionEvent", "ActionStep"]


class ActionStep(enum.StrEnum):
    """The steps an action goes through; each is one ledger row and one published event."""

    INTENT = "intent"
    """Claimed under its idempotency key; nothing sent yet."""
    DUPLICATE = "duplicate"
    """Already claimed (repeated finding, restart): nothing sent again."""
    REFUSED = "refused"
    """The policy refused it (``detail.rule`` says which rule)."""
    SIGNED = "signed"
    """Signed and durably recorded; about to be broadcast."""
    SUBMITTED = "submitted"
    REPLACED = "replaced"
    """Re-signed with the same nonce and higher fees (a stuck transaction)."""
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REORGED = "reorged"
    """The block holding the confirmed (or failed) transaction was orphaned: the key is open again
    until a receipt on the new branch closes it (``detail.block_number``/``block_hash``: the orphaned one)."""
    PROPOSED = "proposed"
    """A Safe transaction was proposed and awaits signatures."""
    SAFE_SIGNED = "safe_signed"
    EXECUTED = "executed"
    RATIFICATION_OPENED = "ratification_opened"
    RATIFIED = "ratified"
    LAPSED = "lapsed"
    NOTIFY = "notify"
    """A playbook asks the notification stage to send ``detail.message``."""
    ESCALATE = "escalate"
    """A playbook asks the incident stage to open or escalate an incident to ``detail.severity``."""
    ASSESSED = "assessed"
    """Looked at before it was sent (``detail.look``: sampled honest transactions, those the call makes
    revert, harm, value at risk, decision)."""
    WITHHELD = "withheld"
    """Not sent: its harm to honest traffic outweighs what it protects (``detail.look``); people decide."""
    SATISFIED = "satisfied"
    """Not sent: the identical guardian call (same contract, same calldata) was sent for another step
    a few blocks before (``detail.by``: its key, ``detail.tx_hash``); the first one's record is the send."""


@register  # it travels on Topics.ACTIONS: over JetStream only registered types do
@dataclass(frozen=True, slots=True)
class ActionEvent:
    """One step of one action, as recorded in the ledger."""

    step: ActionStep
    key: str
    """The idempotency key: (finding fingerprint or target scope, playbook.action, target)."""
    playbook: str
    action: str
    target: str
    """``contract.function(args)`` for calls; the message or severity for the others."""
    finding_fingerprint: str
    monitor_id: str = ""
    tx_hash: str | None = None
    nonce: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    at_ms: float = 0.0
    chain_id: int | None = None
    """The chain the action is on: its finding's (None: a step not caused by a finding, in a one-chain
    deployment)."""
