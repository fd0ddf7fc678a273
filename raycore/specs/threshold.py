"""The decision threshold of a binary classifier, as declared in its catalog YAML.

    threshold:
      default: 0.35         # alert when P(positive) >= 0.35 until an operator changes it
      cost_fp: 1.0          # cost of one false alarm
      cost_fn: 8.0          # cost of one missed positive

Operators move the live threshold with ``foundry threshold set``; this block is
the starting point and the cost model ``foundry threshold simulate`` uses.
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from raycore.specs.base import FrozenSpec

__all__ = ["ThresholdSpec"]


class ThresholdSpec(FrozenSpec):
    """Starting decision threshold and the costs of the two errors."""

    default: float = Field(default=0.5, gt=0, lt=1, description="Alert when P(positive) >= this.")
    cost_fp: float = Field(
        default=1.0, ge=0, description="Cost of one false positive (a false alarm)."
    )
    cost_fn: float = Field(
        default=1.0, ge=0, description="Cost of one false negative (a missed positive)."
    )

    @field_validator("cost_fp", "cost_fn")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"costs must be finite, got {value!r}")
        return value
