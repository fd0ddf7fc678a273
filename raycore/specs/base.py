"""The base class of every spec: frozen, strict about unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenSpec"]


class FrozenSpec(BaseModel):
    """A pydantic model that rejects unknown fields and cannot be mutated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
