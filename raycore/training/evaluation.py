"""How a trained model is scored on its holdout: evaluators by name.

The default evaluator, ``holdout``, scores the bundle's predictions against the
label column with the gate's metric(s), and the oracle column (the data
world's true expected label, joined by the spec's ``oracle`` keys) with the
same metric(s). Decision, causal and unsupervised models register their own
evaluator (``raycore.training.evaluators`` modules, imported on first use)
and name it in YAML::

    evaluation:
      evaluator: price_uplift
      params: {grid: 21}

Example:
    >>> from raycore.training.evaluation import get_evaluator
    >>> get_evaluator("holdout").__name__
    'holdout_evaluator'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.plugins import PluginRegistry
from raycore.training.metrics import compute_metric

if TYPE_CHECKING:
    from raycore.registry.bundle import ModelBundle
    from raycore.specs import ModelSpec

__all__ = [
    "ORACLE_COLUMN",
    "EvalContext",
    "EvalResult",
    "Evaluator",
    "evaluator",
    "evaluators",
    "gate_metric_names",
    "get_evaluator",
    "holdout_evaluator",
]

ORACLE_COLUMN = "__oracle__"


@dataclass
class EvalContext:
    """Everything an evaluator may use. Raw rows hold entity, request, table inputs and the label."""

    spec: ModelSpec
    bundle: ModelBundle
    train_rows: pd.DataFrame
    holdout_rows: pd.DataFrame
    truth: Callable[[str], pd.DataFrame]
    table: Callable[[str], pd.DataFrame]
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, rows: pd.DataFrame | None = None) -> np.ndarray:
        """The bundle's predictions (label units; class labels for classifiers)."""
        return np.asarray(self.bundle.predict(self.holdout_rows if rows is None else rows))

    def groups(self, rows: pd.DataFrame | None = None) -> np.ndarray | None:
        col = self.spec.group_column
        if col is None:
            return None
        return (self.holdout_rows if rows is None else rows)[col].to_numpy()


@dataclass
class EvalResult:
    """Metric values of the model and, where the truth defines it, of the oracle."""

    metrics: dict[str, float]
    oracle: dict[str, float] = field(default_factory=dict)
    notes: str = ""


Evaluator = Callable[[EvalContext], EvalResult]
_REGISTRY: PluginRegistry[Evaluator] = PluginRegistry("evaluator", "raycore.training.evaluators")
evaluator = _REGISTRY.register
evaluators = _REGISTRY.all


def get_evaluator(name: str) -> Evaluator:
    return _REGISTRY.get(name, field="evaluation.evaluator")


def gate_metric_names(spec: ModelSpec) -> list[str]:
    """The gate's metric followed by every ``gate.also`` metric."""
    return [spec.gate.metric, *(c.metric for c in spec.gate.also)]


@evaluator("holdout")
def holdout_evaluator(ctx: EvalContext) -> EvalResult:
    """Gate metric(s) of predictions vs the label; of the oracle column vs the label when present."""
    rows = ctx.holdout_rows
    y = rows[ctx.spec.label].to_numpy()
    pred = ctx.predict()
    groups = ctx.groups()
    names = gate_metric_names(ctx.spec)
    metrics = {m: compute_metric(m, y_true=y, y_pred=pred, groups=groups) for m in names}
    oracle: dict[str, float] = {}
    if ORACLE_COLUMN in rows.columns:
        truth = rows[ORACLE_COLUMN].to_numpy()
        if pd.isna(truth).any():
            raise DataError(
                f"{int(pd.isna(truth).sum())} holdout row(s) of {ctx.spec.id} have no oracle value",
                hint="check oracle.keys in the model spec: every label row must match one truth row",
            )
        oracle = {m: compute_metric(m, y_true=y, y_pred=truth, groups=groups) for m in names}
    return EvalResult(metrics, oracle)
