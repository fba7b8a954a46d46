"""The message types that travel on the bus between stages, in one place every stage can import.

A stage that publishes a type and the stage that consumes it both depend on this package, not on each
other (``respond`` publishes ``ActionEvent``, ``incidents`` records it). Importing the package registers
every type here with the bus codec, so a process running any role can decode them.

- ``findings``: ``Retraction`` (``Topics.RETRACTIONS``; ``domain.Finding`` itself is in ``domain``);
- ``alerts``: ``AlertChange`` (``Topics.ALERTS``);
- ``incidents``: ``TimelineEntry``, ``TimelineKind``, ``IncidentChange`` (``Topics.TIMELINE``,
  ``Topics.INCIDENTS``);
- ``actions``: ``ActionEvent``, ``ActionStep`` (``Topics.ACTIONS``, published by the responder);
- ``pending``: ``PendingWork``, ``PendingVerdict`` (the simulate work queue, ``bus/workqueue.py``).
"""

from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.messages.alerts import AlertChange
from breakglass.messages.findings import Retraction
from breakglass.messages.incidents import IncidentChange, TimelineEntry, TimelineKind
from breakglass.messages.pending import PendingVerdict, PendingWork

__all__ = [
    "ActionEvent",
    "ActionStep",
    "AlertChange",
    "IncidentChange",
    "PendingVerdict",
    "PendingWork",
    "Retraction",
    "TimelineEntry",
    "TimelineKind",
]
