"""The strict base model every configuration section derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    """Unknown keys are errors; models are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
