"""Training: Ray Train runs built from specs, evaluation, quality gates."""

from raycore.training.holdout import split_holdout
from raycore.training.metrics import METRICS, compute_metric

__all__ = ["METRICS", "TrainOutcome", "compute_metric", "split_holdout", "train_model"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in {"TrainOutcome", "train_model"}:
        from raycore.training import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
