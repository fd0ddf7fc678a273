"""Evaluation metrics by name, as catalog gates use them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from raycore.errors import SpecError

__all__ = ["METRICS", "compute_metric"]


def _mape(y: np.ndarray, p: np.ndarray) -> float:
    mask = np.abs(y) > 1e-12
    return float(np.mean(np.abs(y[mask] - p[mask]) / np.abs(y[mask])))


def _wape(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum(np.abs(y - p)) / max(np.sum(np.abs(y)), 1e-12))


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mape": _mape,
    "wape": _wape,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}


def compute_metric(name: str, *, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Compute metric ``name`` on aligned arrays.

    Example:
        >>> compute_metric("mape", y_true=np.array([100.0]), y_pred=np.array([90.0]))
        0.1
    """
    try:
        fn = METRICS[name]
    except KeyError:
        raise SpecError(
            f"unknown metric '{name}'", field="gate.metric", hint=f"use one of: {', '.join(sorted(METRICS))}"
        ) from None
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_pred, dtype="float64")
    if y.shape != p.shape:
        raise ValueError(f"y_true shape {y.shape} != y_pred shape {p.shape}")
    return fn(y, p)
