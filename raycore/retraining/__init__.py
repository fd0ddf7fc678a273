"""Safe automatic retraining: triggers, safeguards, the retrain job and its controller actor.

Public API:
    judge / Trigger / RetrainHistory / cadence_due   the safeguards (pure)
    run_retrain / RetrainResult                      one retrain: train → gate → champion/challenger → live traffic
    RetrainController / controller_actor             decides, launches, follows (live evidence, rollback window)
    shadow_comparison / live_metric                  live evidence from shadow records / the prediction log + labels
"""

from raycore.retraining.controller import (
    CONTROLLER_NAME,
    NAMESPACE,
    RetrainController,
    controller_actor,
)
from raycore.retraining.evidence import (
    LiveComparison,
    LiveMetric,
    live_metric,
    relative_change,
    shadow_comparison,
)
from raycore.retraining.job import RetrainResult, run_retrain
from raycore.retraining.policy import RetrainHistory, Trigger, Verdict, cadence_due, judge
from raycore.retraining.state import ModelRetrainState, RetrainStateStore

__all__ = [
    "CONTROLLER_NAME",
    "NAMESPACE",
    "LiveComparison",
    "LiveMetric",
    "ModelRetrainState",
    "RetrainController",
    "RetrainHistory",
    "RetrainResult",
    "RetrainStateStore",
    "Trigger",
    "Verdict",
    "cadence_due",
    "controller_actor",
    "judge",
    "live_metric",
    "relative_change",
    "run_retrain",
    "shadow_comparison",
]
