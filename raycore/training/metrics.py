"""Evaluation metrics by name, as catalog gates use them.

Regression metrics take float arrays; classification metrics take labels
(``accuracy``, ``macro_f1``, ``f1`` on predicted classes) or scores
(``roc_auc``, ``ks`` on the positive-class probability); ranking metrics
(``ndcg_at_3``) also need the query group of every row; ``adjusted_rand``
compares cluster assignments with true segments (label permutation-free).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from raycore.errors import SpecError

__all__ = ["GROUPED", "LABEL_METRICS", "METRICS", "compute_metric", "ndcg_at_k"]


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


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def _ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov: max distance between the score CDFs of positives and negatives."""
    pos, neg = np.sort(p[y == 1]), np.sort(p[y != 1])
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    grid = np.unique(p)
    cdf_pos = np.searchsorted(pos, grid, side="right") / len(pos)
    cdf_neg = np.searchsorted(neg, grid, side="right") / len(neg)
    return float(np.max(np.abs(cdf_pos - cdf_neg)))


def _poisson_deviance_ratio(y: np.ndarray, p: np.ndarray) -> float:
    """Mean Poisson deviance of ``p`` over that of the mean-only baseline (lower is better)."""
    from sklearn.metrics import mean_poisson_deviance

    p = np.clip(p, 1e-9, None)
    base = np.full_like(y, max(float(np.mean(y)), 1e-9))
    return float(mean_poisson_deviance(y, p) / mean_poisson_deviance(y, base))


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, average="macro"))


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y.astype("int64"), p.astype("int64")))


def _adjusted_rand(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(y, p))


def ndcg_at_k(y: np.ndarray, p: np.ndarray, groups: np.ndarray, k: int = 3) -> float:
    """Mean NDCG@k over query groups (graded relevance ``y``; groups without a relevant item skipped)."""
    order = np.lexsort((-p, groups))
    y, p, groups = y[order], p[order], groups[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    scores = []
    for s, e in zip(starts, ends, strict=True):
        rel = y[s:e]
        ideal = np.sort(rel)[::-1][:k]
        idcg = float(np.sum((2.0**ideal - 1.0) * discounts[: len(ideal)]))
        if idcg <= 0:
            continue
        got = rel[:k]
        scores.append(float(np.sum((2.0**got - 1.0) * discounts[: len(got)])) / idcg)
    return float(np.mean(scores)) if scores else float("nan")


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mape": _mape,
    "wape": _wape,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
    "roc_auc": _roc_auc,
    "ks": _ks,
    "poisson_deviance_ratio": _poisson_deviance_ratio,
    "accuracy": _accuracy,
    "macro_f1": _macro_f1,
    "f1": _f1,
    "adjusted_rand": _adjusted_rand,
}
# Metrics over class labels or cluster ids: compared as given, never cast to float.
LABEL_METRICS = frozenset({"accuracy", "macro_f1", "adjusted_rand"})
# Metrics that need the query group of each row.
GROUPED = frozenset({"ndcg_at_3"})


def compute_metric(
    name: str, *, y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None = None
) -> float:
    """Compute metric ``name`` on aligned arrays.

    Example:
        >>> compute_metric("mape", y_true=np.array([100.0]), y_pred=np.array([90.0]))
        0.1
        >>> compute_metric("accuracy", y_true=np.array(["a", "b"]), y_pred=np.array(["a", "a"]))
        0.5
    """
    known = sorted([*METRICS, *GROUPED])
    if name not in known:
        raise SpecError(
            f"unknown metric '{name}'", field="gate.metric", hint=f"use one of: {', '.join(known)}"
        )
    if name in LABEL_METRICS:
        y, p = np.asarray(y_true), np.asarray(y_pred)
    else:
        y = np.asarray(y_true, dtype="float64")
        p = np.asarray(y_pred, dtype="float64")
    if y.shape != p.shape:
        raise ValueError(f"y_true shape {y.shape} != y_pred shape {p.shape}")
    if name in GROUPED:
        if groups is None:
            raise SpecError(
                f"metric '{name}' needs query groups",
                field="group_column",
                hint="set group_column in the model spec",
            )
        return ndcg_at_k(y, p, np.asarray(groups), k=int(name.rsplit("_", 1)[1]))
    return METRICS[name](y, p)
