"""The optional ``conformal:`` block of a model spec: calibrated uncertainty and its automation policy.

Every regression-like and classification model is calibrated at training time
with the defaults below; the block only changes how (or switches it off).

Example:
    >>> spec = ConformalSpec(regression="normalized", policy={"max_relative_width": 0.5})
    >>> spec.levels, spec.policy.level
    ([0.9, 0.95, 0.99], 0.9)
    >>> ConformalSpec(levels=[0.9, 1.2])
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ConformalSpec
    ...
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from raycore.specs.base import FrozenSpec

__all__ = ["ConformalSpec", "DecisionPolicySpec"]

DEFAULT_LEVELS = (0.9, 0.95, 0.99)


class DecisionPolicySpec(FrozenSpec):
    """Confidence-aware automation: when a prediction may be acted on without a person.

    A prediction is *high-risk* when its value is at or above ``high_risk_above``
    (every prediction when it is unset). A high-risk prediction is decided
    ``auto`` only when its conformal interval at ``level`` is narrow enough
    (``max_width`` in label units and/or ``max_relative_width`` = width /
    |prediction|) or its prediction set small enough (``max_set_size``);
    otherwise ``review``. Predictions that are not high-risk are ``auto``.
    """

    level: float = Field(
        default=0.9, gt=0.0, lt=1.0, description="Coverage level whose interval/set is judged."
    )
    high_risk_above: float | None = Field(
        default=None,
        description="Predictions at or above this value (binary: P(class 1)) are high-risk; unset = all.",
    )
    max_width: float | None = Field(
        default=None, gt=0.0, description="Widest interval (label units) still decided auto."
    )
    max_relative_width: float | None = Field(
        default=None,
        gt=0.0,
        description="Widest interval relative to |prediction| still decided auto.",
    )
    max_set_size: int | None = Field(
        default=None, ge=1, description="Largest prediction set (classifiers) still decided auto."
    )

    @model_validator(mode="after")
    def _some_threshold(self) -> DecisionPolicySpec:
        if self.max_width is None and self.max_relative_width is None and self.max_set_size is None:
            raise ValueError(
                "a decision policy needs at least one threshold: max_width, max_relative_width "
                "(regression) or max_set_size (classification); got none"
            )
        return self


class ConformalSpec(FrozenSpec):
    """How a model's conformal calibrator is built (see ``raycore.conformal``)."""

    enabled: bool = Field(default=True, description="Calibrate this model at training time.")
    levels: list[float] = Field(
        default_factory=lambda: list(DEFAULT_LEVELS),
        min_length=1,
        description="Coverage levels served, each strictly between 0 and 1.",
    )
    regression: Literal["absolute", "normalized", "auto"] | None = Field(
        default=None,
        description=(
            "Regression score: absolute residual, residual / a learnt scale (normalized), or auto "
            "(the narrower of the two on the calibration rows); unset = the task default (auto)."
        ),
    )
    classification: Literal["lac", "aps"] = Field(
        default="lac",
        description="Classification score: LAC (1 - p_true) or APS (cumulative sorted probabilities).",
    )
    nonempty_from: float = Field(
        default=0.99,
        gt=0.0,
        le=1.0,
        description="From this level on every prediction set holds at least the top class (below: may be empty).",
    )
    strategy: Literal["refit", "split"] | None = Field(
        default=None,
        description=(
            "refit: calibrate a model fitted on the inner training rows, ship the model fitted on all of them; "
            "split: ship the inner model itself (exact guarantee, one fit less data); unset = the task default."
        ),
    )
    recent_window: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description=(
            "Share of the calibration cut used, its most recent time values (time holdouts; "
            "a remedy for drift between calibration and serving). 1 = all of it."
        ),
    )
    policy: DecisionPolicySpec | None = Field(
        default=None, description="Confidence-aware automation thresholds (optional)."
    )
    coverage_tolerance: float = Field(
        default=0.03,
        gt=0.0,
        lt=0.5,
        description=(
            "Online coverage: realised coverage further than this from a level (and beyond twice its "
            "sampling noise) is out of tolerance and alerts."
        ),
    )
    min_labelled: int = Field(
        default=100,
        ge=10,
        description="Online coverage is judged (and a recalibration allowed) from this many labelled answers on.",
    )

    @field_validator("levels")
    @classmethod
    def _valid_levels(cls, value: list[float]) -> list[float]:
        bad = [v for v in value if not 0.0 < v < 1.0]
        if bad:
            raise ValueError(f"levels must lie strictly between 0 and 1 (0.9 = 90%), got {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"levels must be distinct, got {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _policy_level_served(self) -> ConformalSpec:
        if self.policy is not None and self.policy.level not in self.levels:
            raise ValueError(
                f"policy.level ({self.policy.level}) must be one of the calibrated levels {self.levels}"
            )
        return self
