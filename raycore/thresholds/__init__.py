"""Decision thresholds of binary classifiers: simulate, set, roll back, read live.

Public API:
    simulate_threshold / outcome_at   replay labelled scores at a threshold
    ThresholdStore                    live threshold per model, stacked history, audited changes
    ThresholdReader                   what a serving replica reads per request (cheap, change-aware)
    replay_rows / record_labels       labelled scores: prediction log ⋈ labels, or the holdout
"""

from raycore.thresholds.simulate import (
    ThresholdOutcome,
    ThresholdSimulation,
    outcome_at,
    simulate_threshold,
    validate_threshold,
)
from raycore.thresholds.store import (
    ThresholdChange,
    ThresholdReader,
    ThresholdSetting,
    ThresholdStore,
)

__all__ = [
    "ThresholdChange",
    "ThresholdOutcome",
    "ThresholdReader",
    "ThresholdSetting",
    "ThresholdSimulation",
    "ThresholdStore",
    "outcome_at",
    "simulate_threshold",
    "validate_threshold",
]
