"""Exact per-prediction contributions of tree models (TreeSHAP from LightGBM / XGBoost)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from raycore.errors import ExplanationError
from raycore.models.adapter import PROBABILITY_MATRIX_TASKS, select_features

if TYPE_CHECKING:
    from raycore.models import Estimator
    from raycore.registry.bundle import ModelBundle

__all__ = ["Explanation", "ExplanationError", "explain_features", "explain_rows", "supports_contributions"]

TREE_FAMILIES = frozenset({"lightgbm", "xgboost"})


@dataclass(frozen=True)
class Explanation:
    """Contributions of each model feature to each row's margin.

    ``values`` is (n_rows, n_features); ``bias`` the expected margin (n_rows,);
    ``margin`` the booster's raw output, equal to ``bias + values.sum(axis=1)``.
    For a multiclass model these are of one class (``class_index``).
    """

    feature_names: list[str]
    features: pd.DataFrame  # the model features the contributions are about
    values: np.ndarray
    bias: np.ndarray
    margin: np.ndarray
    class_index: int | None = None

    def additivity_error(self) -> float:
        """max |bias + sum(contributions) - margin| over the rows (≈ 1e-12 for exact TreeSHAP)."""
        if len(self.margin) == 0:
            return 0.0
        return float(np.max(np.abs(self.bias + self.values.sum(axis=1) - self.margin)))

    def top(self, row: int, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` features with the largest |contribution| for one row, with their values."""
        if k < 1:
            raise ExplanationError(f"top-k needs k >= 1, got {k}", hint="ask for at least one feature")
        contrib = self.values[row]
        order = np.argsort(-np.abs(contrib), kind="stable")[:k]
        return [
            {
                "feature": self.feature_names[i],
                "value": _plain(self.features.iloc[row, i]),
                "contribution": float(contrib[i]),
            }
            for i in order
        ]

    def reason(self, row: int, k: int = 3) -> str:
        """One line: which features pushed this prediction up and which pushed it down."""
        top = self.top(row, k)
        up = [t for t in top if t["contribution"] > 0]
        down = [t for t in top if t["contribution"] < 0]

        def fmt(items: list[dict[str, Any]]) -> str:
            return ", ".join(f"{t['feature']}={_short(t['value'])} ({t['contribution']:+.3g})" for t in items)

        parts = []
        if up:
            parts.append(f"higher because {fmt(up)}")
        if down:
            parts.append(f"lower because {fmt(down)}")
        base = f"baseline {self.bias[row]:.4g}"
        return "; ".join(parts) + f" (margin {self.margin[row]:.4g}, {base})" if parts else f"at the {base}"

    def records(self, k: int = 5) -> list[dict[str, Any]]:
        """Per row: top-k contributions, the reason, the bias and the margin (JSON-ready)."""
        return [
            {
                "top": self.top(i, k),
                "reason": self.reason(i, min(k, 3)),
                "bias": float(self.bias[i]),
                "margin": float(self.margin[i]),
            }
            for i in range(len(self.margin))
        ]


def supports_contributions(estimator: Estimator) -> bool:
    """Tree models with exact TreeSHAP: LightGBM (not with linear trees) and XGBoost."""
    if getattr(estimator, "family", "") not in TREE_FAMILIES or not hasattr(estimator, "booster"):
        return False
    if estimator.family == "lightgbm":
        # LightGBM computes no contributions for linear trees (`linear_tree: true`).
        head = estimator.booster.model_to_string(num_iteration=1)  # type: ignore[attr-defined]
        return "is_linear=1" not in head
    return True


def explain_features(
    estimator: Estimator, features: pd.DataFrame, *, task: str, class_index: int | None = None
) -> Explanation:
    """Exact contributions of ``estimator`` for a frame of model features."""
    if not supports_contributions(estimator):
        raise ExplanationError(
            f"per-prediction contributions need a tree model (lightgbm without linear trees, xgboost); "
            f"this is '{estimator.family}'",
            hint="use global importance (`foundry explain MODEL`) for this model",
        )
    frame = select_features(features, estimator.feature_names)
    matrix = frame.to_numpy(dtype="float64")
    n, p = matrix.shape
    multiclass = task in PROBABILITY_MATRIX_TASKS
    if multiclass and class_index is None:
        raise ExplanationError(
            "a multiclass model is explained one class at a time", hint="pass class_index (0-based)"
        )
    booster = estimator.booster  # type: ignore[attr-defined]
    if estimator.family == "lightgbm":
        contrib = np.asarray(booster.predict(matrix, pred_contrib=True))
        margin = np.asarray(booster.predict(matrix, raw_score=True))
        if multiclass:
            k = contrib.shape[1] // (p + 1)
            _check_class(class_index, k)
            contrib = contrib.reshape(n, k, p + 1)[:, class_index, :]
            margin = margin.reshape(n, k)[:, class_index]
    else:
        import xgboost as xgb

        dmatrix = xgb.DMatrix(matrix, feature_names=estimator.feature_names)
        contrib = np.asarray(booster.predict(dmatrix, pred_contribs=True))
        margin = np.asarray(booster.predict(dmatrix, output_margin=True))
        if multiclass:
            _check_class(class_index, contrib.shape[1])
            contrib = contrib[:, class_index, :]
            margin = margin.reshape(n, -1)[:, class_index]
    return Explanation(
        feature_names=list(estimator.feature_names),
        features=frame.reset_index(drop=True),
        values=contrib[:, :p].astype("float64"),
        bias=contrib[:, p].astype("float64"),
        margin=margin.reshape(n).astype("float64"),
        class_index=class_index,
    )


def explain_rows(
    bundle: ModelBundle, raw: pd.DataFrame, *, class_index: int | None = None
) -> Explanation:
    """Contributions for raw input rows: the bundle's own feature code, then the booster."""
    features = bundle.view.compute(raw)
    return explain_features(
        bundle.estimator, features, task=bundle.metadata.task, class_index=class_index
    )


def _check_class(class_index: int | None, k: int) -> None:
    if class_index is None or not 0 <= class_index < k:
        raise ExplanationError(
            f"class_index {class_index} is out of range for {k} classes", hint=f"use 0..{k - 1}"
        )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
