"""Every table module of breakglass, imported in one place so ``Base.metadata`` is complete.

Alembic's ``env.py`` and the schema tests import this module; a package that adds a table adds its
module here, then generates a migration (``docs/incidents.md``, "Migrations").
"""

from __future__ import annotations

from breakglass import timeline
from breakglass.alerts import models as alerts_models
from breakglass.chain import checkpoint as chain_checkpoint
from breakglass.incidents import models as incidents_models
from breakglass.notify import models as notify_models
from breakglass.respond import ledger as respond_ledger
from breakglass.respond import safe as respond_safe
from breakglass.store import tokens as store_tokens
from breakglass.store.db import Base

__all__ = ["MODULES", "metadata"]

MODULES = (
    alerts_models,
    chain_checkpoint,
    incidents_models,
    notify_models,
    respond_ledger,
    respond_safe,
    store_tokens,
    timeline,
)
metadata = Base.metadata
