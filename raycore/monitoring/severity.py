"""Severity: one level from every monitoring signal, the highest any signal reaches.

Signals: the relative drop of the model's metric against its registered
value (performance monitor, delayed labels), the share of drifted features
and drift of the predictions (drift check). The thresholds come from
``SeverityConfig`` (catalog ``monitoring:`` block via
``SeverityConfig.from_monitoring``). Alerting (log, metrics, webhook) reads
this level; it does not decide it.

Example:
    >>> from raycore.specs.monitoring import SeverityConfig
    >>> assess_severity(drifted_share=0.0, prediction_drift=False, metric_drop=0.12,
    ...                 config=SeverityConfig()).value
    'HIGH'
"""

from __future__ import annotations

import math

from raycore.errors import DataError
from raycore.specs.monitoring import Severity, SeverityConfig

__all__ = ["assess_severity", "metric_drop"]


def metric_drop(*, baseline: float, current: float, higher_is_better: bool) -> float:
    """Relative drop of a metric from its baseline; positive means worse, 0 when not worse.

    Example:
        >>> round(metric_drop(baseline=0.80, current=0.72, higher_is_better=True), 3)
        0.1
        >>> round(metric_drop(baseline=0.10, current=0.12, higher_is_better=False), 3)
        0.2
    """
    if not (math.isfinite(baseline) and math.isfinite(current)) or baseline == 0:
        raise DataError(
            f"metric drop needs a finite, non-zero baseline and a finite current value, "
            f"got baseline={baseline}, current={current}",
            hint="compare against the metric logged when the model version was registered",
        )
    change = (baseline - current) if higher_is_better else (current - baseline)
    return max(change / abs(baseline), 0.0)


def _level(value: float, medium: float, high: float, critical: float) -> Severity:
    if value >= critical:
        return Severity.CRITICAL
    if value >= high:
        return Severity.HIGH
    if value >= medium:
        return Severity.MEDIUM
    return Severity.NONE


def assess_severity(
    *,
    drifted_share: float,
    prediction_drift: bool,
    metric_drop: float | None,
    config: SeverityConfig,
) -> Severity:
    """The highest severity that any of the signals reaches.

    ``metric_drop`` is relative (0.12 = 12% worse; see ``metric_drop``), or
    None while labels have not arrived. Metric drops of 5-10% are MEDIUM,
    10-20% HIGH, over 20% CRITICAL by default; drifted shares of 10% / 30% /
    50% likewise; prediction drift alone is MEDIUM.
    """
    if not 0.0 <= drifted_share <= 1.0:
        raise DataError(
            f"drifted_share must be in [0, 1], got {drifted_share}",
            hint="pass a share, not a count",
        )
    if metric_drop is not None and not (math.isfinite(metric_drop) and metric_drop >= 0):
        raise DataError(
            f"metric_drop must be a finite relative drop >= 0, got {metric_drop}",
            hint="use raycore.monitoring.metric_drop(baseline=..., current=..., higher_is_better=...)",
        )
    levels = [
        _level(
            drifted_share,
            config.drifted_share_medium,
            config.drifted_share_high,
            config.drifted_share_critical,
        )
    ]
    if prediction_drift:
        levels.append(config.prediction_drift)
    if metric_drop is not None:
        levels.append(
            _level(
                metric_drop,
                config.metric_drop_medium,
                config.metric_drop_high,
                config.metric_drop_critical,
            )
        )
    return max(levels)
