"""Drift and severity specs: how the monitors judge a window of traffic.

``DriftConfig`` sets the per-feature drift rule (effect size above a threshold
AND significant after a multiple-testing correction); ``SeverityConfig`` maps a
drift report and a metric drop to a ``Severity``. Both are frozen pydantic
models. A model's catalog ``monitoring:`` block carries a ``drift:`` mapping
(``MonitoringSpec.drift``); ``SeverityConfig.from_monitoring`` reads the
block's flat severity fields.

Example:
    >>> from raycore.specs.monitoring import DriftConfig, Severity, SeverityConfig
    >>> DriftConfig(wasserstein_threshold=0.08).alpha
    0.01
    >>> SeverityConfig().metric_drop_high
    0.1
    >>> Severity.HIGH > Severity.MEDIUM
    True
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from raycore.specs.base import FrozenSpec

if TYPE_CHECKING:
    from raycore.specs.model import MonitoringSpec

__all__ = ["DriftConfig", "Severity", "SeverityConfig"]


class Severity(str, Enum):
    """How bad a monitoring finding is, ordered NONE < MEDIUM < HIGH < CRITICAL."""

    NONE = "NONE"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """0 for NONE up to 3 for CRITICAL."""
        return _RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {"NONE": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}


class DriftConfig(FrozenSpec):
    """The per-feature drift rule of ``raycore.monitoring.check_drift``.

    A feature drifts when its effect size reaches its threshold AND its
    two-sample test (chi-square of binned counts; for numeric features also a
    Welch test of the means) stays significant after the correction across
    features. The effect size keeps large windows honest (at 100k rows
    a p-value alone flags harmless shifts); the test keeps small windows
    honest (sampling noise alone inflates an effect size).

    Defaults, and what they call drift:

    * numeric features: normalised Wasserstein distance (W1 / reference std)
      >= 0.05, i.e. the distribution moved by at least 5% of its reference
      standard deviation: a 0.05 sigma mean shift, or a ~6% change of spread.
      A 0.1 sigma shift (the smallest shift the measurements on this project
      call real) is then twice the threshold and is caught once the window is
      large enough to measure it; shifts of 0.02 sigma and less are treated
      as harmless. Evidently's default (0.1) sits exactly on a 0.1 sigma shift
      and so misses about half of them.
    * categorical features: Jensen-Shannon distance (natural log) >= 0.1, as
      Evidently: a new category taking about 3% of rows, or ten points of
      share moving between two categories of 25%.
    * missing values: a change of the missing share by >= 0.05 is drift too.
    """

    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Significance level after the multiple-testing correction (false discovery rate for 'bh').",
    )
    correction: Literal["bh", "bonferroni", "none"] = Field(
        default="bh",
        description="Correction across features: Benjamini-Hochberg, Bonferroni, or none.",
    )
    wasserstein_threshold: float = Field(
        default=0.05,
        gt=0,
        description="Numeric drift from this normalised Wasserstein distance (in reference std units).",
    )
    jensenshannon_threshold: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Categorical drift from this Jensen-Shannon distance (natural log, at most sqrt(ln 2)).",
    )
    missing_share_threshold: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Drift when the share of missing values changes by at least this much.",
    )
    min_current_rows: int = Field(
        default=50,
        ge=5,
        description="Fewest rows a current window may have; smaller windows are refused.",
    )
    dataset_drift_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="The dataset drifts when at least this share of features drifts.",
    )


class SeverityConfig(FrozenSpec):
    """Thresholds that turn a drift report and a metric drop into a Severity.

    The severity is the highest level any signal reaches: the relative drop of
    the model's metric (0.07 = 7% worse than at registration), the share of
    drifted features, and prediction drift (``prediction_drift`` level).
    """

    metric_drop_medium: float = Field(
        default=0.05, gt=0, lt=1, description="MEDIUM from this relative metric drop."
    )
    metric_drop_high: float = Field(
        default=0.10, gt=0, lt=1, description="HIGH from this relative metric drop."
    )
    metric_drop_critical: float = Field(
        default=0.20, gt=0, lt=1, description="CRITICAL from this relative metric drop."
    )
    drifted_share_medium: float = Field(
        default=0.1, gt=0, le=1, description="MEDIUM from this share of drifted features."
    )
    drifted_share_high: float = Field(
        default=0.3, gt=0, le=1, description="HIGH from this share of drifted features."
    )
    drifted_share_critical: float = Field(
        default=0.5, gt=0, le=1, description="CRITICAL from this share of drifted features."
    )
    prediction_drift: Severity = Field(
        default=Severity.MEDIUM, description="Severity of drift in the model's predictions alone."
    )

    @model_validator(mode="after")
    def _ordered(self) -> SeverityConfig:
        drops = (self.metric_drop_medium, self.metric_drop_high, self.metric_drop_critical)
        if not drops[0] < drops[1] < drops[2]:
            raise ValueError(
                "metric drops must rise: metric_drop_medium < metric_drop_high < metric_drop_critical, got "
                f"{drops[0]} / {drops[1]} / {drops[2]}"
            )
        shares = (self.drifted_share_medium, self.drifted_share_high, self.drifted_share_critical)
        if not shares[0] <= shares[1] <= shares[2]:
            raise ValueError(
                "drifted shares must not fall: drifted_share_medium <= drifted_share_high <= "
                f"drifted_share_critical, got {shares[0]} / {shares[1]} / {shares[2]}"
            )
        return self

    @classmethod
    def from_monitoring(cls, spec: MonitoringSpec) -> SeverityConfig:
        """The severity thresholds of a catalog ``monitoring:`` block.

        The block's metric drops are used as they are; its
        ``drifted_feature_share`` (the share that raises an alert) becomes the
        HIGH share, with MEDIUM and CRITICAL kept at their defaults unless
        that would break their order.

        Example:
            >>> from raycore.specs import MonitoringSpec
            >>> SeverityConfig.from_monitoring(MonitoringSpec(drifted_feature_share=0.6)).drifted_share_critical
            0.6
        """
        high = spec.drifted_feature_share
        return cls(
            metric_drop_medium=spec.metric_drop_medium,
            metric_drop_high=spec.metric_drop_high,
            metric_drop_critical=spec.metric_drop_critical,
            drifted_share_medium=min(0.1, high),
            drifted_share_high=high,
            drifted_share_critical=max(0.5, high),
        )
