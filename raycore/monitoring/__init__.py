"""Monitoring: reference profiles, drift checks (fast path + Evidently reports), severity.

Example:
    >>> from raycore.monitoring import build_reference_profile, check_drift
    >>> profile = build_reference_profile(features=train_x, predictions=train_pred,
    ...                                   categorical=["channel"])          # doctest: +SKIP
    >>> check_drift(reference=profile, current=window).drifted_features      # doctest: +SKIP
"""

from raycore.monitoring.drift import DriftReport, FeatureDrift, check_drift
from raycore.monitoring.evidently_report import (
    EvidentlyColumn,
    EvidentlyDrift,
    evidently_report_for_profile,
    parse_evidently_drift,
    run_evidently_drift,
)
from raycore.monitoring.reference import (
    PREDICTION,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_reference_profile,
    infer_categorical,
)
from raycore.monitoring.severity import assess_severity, metric_drop
from raycore.specs.monitoring import DriftConfig, Severity, SeverityConfig

__all__ = [
    "PREDICTION",
    "CategoricalProfile",
    "DriftConfig",
    "DriftReport",
    "EvidentlyColumn",
    "EvidentlyDrift",
    "FeatureDrift",
    "NumericProfile",
    "ReferenceProfile",
    "Severity",
    "SeverityConfig",
    "assess_severity",
    "build_reference_profile",
    "check_drift",
    "evidently_report_for_profile",
    "infer_categorical",
    "metric_drop",
    "parse_evidently_drift",
    "run_evidently_drift",
]
