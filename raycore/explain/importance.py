"""Global feature importance of a model version.

- Tree models: mean |contribution| (TreeSHAP, margin space) over a sample of rows.
- Other families: permutation importance — how much the model's score gets
  worse when one feature's column is shuffled (mean over ``repeats``). The
  score is the gate metric against the label when that metric can be computed
  from predictions; otherwise (decision, causal, unsupervised models) it is the
  mean absolute change of the prediction, and ``kind`` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from raycore.errors import RaycoreError
from raycore.explain.contributions import explain_features, supports_contributions
from raycore.models.adapter import PROBABILITY_MATRIX_TASKS

if TYPE_CHECKING:
    from raycore.models import Estimator
    from raycore.registry.bundle import ModelBundle

__all__ = ["global_importance", "permutation_importance"]


def global_importance(
    bundle: ModelBundle,
    rows: pd.DataFrame,
    *,
    label: np.ndarray | None = None,
    metric: str | None = None,
    higher_is_better: bool = False,
    sample: int = 2000,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"kind": ..., "importance": {feature: value, ...}}`` sorted high to low, for raw ``rows``."""
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(rows), size=min(sample, len(rows)), replace=False))
    part = rows.iloc[take].reset_index(drop=True)
    y = None if label is None else np.asarray(label)[take]
    features = bundle.view.compute(part)
    estimator, task = bundle.estimator, bundle.metadata.task
    if supports_contributions(estimator):
        if task in PROBABILITY_MATRIX_TASKS:
            n_classes = len(bundle.metadata.classes) or int(getattr(estimator, "n_classes", 0) or 0)
            values = sum(
                np.abs(explain_features(estimator, features, task=task, class_index=c).values).mean(axis=0)
                for c in range(n_classes)
            ) / max(n_classes, 1)
        else:
            values = np.abs(explain_features(estimator, features, task=task).values).mean(axis=0)
        return _result("mean_abs_contribution", estimator.feature_names, np.asarray(values))
    return permutation_importance(estimator, features, y, metric, higher_is_better, repeats, rng)


def permutation_importance(
    estimator: Estimator,
    features: pd.DataFrame,
    y: np.ndarray | None,
    metric: str | None,
    higher_is_better: bool,
    repeats: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    from raycore.training.metrics import compute_metric

    """Score loss (or prediction change, without a usable label/metric) when each feature is shuffled."""
    names = list(estimator.feature_names)
    base_pred = np.asarray(estimator.predict(features))

    def score(pred: np.ndarray) -> float | None:
        if y is None or metric is None:
            return None
        try:
            return float(compute_metric(metric, y_true=y, y_pred=pred))
        except (ValueError, TypeError, KeyError, RaycoreError):  # needs more than predictions
            return None

    base = score(base_pred)
    kind = f"permutation_{metric}" if base is not None else "permutation_prediction_change"
    out = np.zeros(len(names))
    for j, name in enumerate(names):
        losses = []
        for _ in range(repeats):
            shuffled = features.copy()
            shuffled[name] = rng.permutation(shuffled[name].to_numpy())
            pred = np.asarray(estimator.predict(shuffled))
            if base is not None:
                now = score(pred)
                assert now is not None
                losses.append((base - now) if higher_is_better else (now - base))
            else:
                losses.append(float(np.mean(np.abs(pred.astype("float64") - base_pred.astype("float64")))))
        out[j] = float(np.mean(losses))
    return _result(kind, names, out)


def _result(kind: str, names: list[str], values: np.ndarray) -> dict[str, Any]:
    order = np.argsort(-values, kind="stable")
    return {"kind": kind, "importance": {names[i]: float(values[i]) for i in order}}
