"""Label-free performance estimates for binary classifiers, until the labels arrive.

A calibrated binary model says, with each probability ``p``, how likely the
row is positive. Taken as expected labels, the probabilities of a window give
the metric the model should reach on it — confidence-based performance
estimation (CBPE): expected confusion counts at the decision threshold, and
the expected ROC AUC as the chance that an expected positive ranks above an
expected negative (pairs weighted ``p_i (1 - p_j)``, O(n log n) by sorting).

No model is perfectly calibrated, so the monitor does not compare the live
estimate with the holdout's *measured* metric: it applies the same estimator
to the holdout predictions stored in the reference profile and reports the
relative change between the two estimates (``estimated_drop``). A shift of the
inputs that moves the model into regions where it is less sure shows up as a
drop before any label comes back; a change of the concept (same inputs,
other outcomes) cannot be seen without labels — by any method.

Example:
    >>> p = np.array([0.9, 0.8, 0.2, 0.1])
    >>> round(expected_metric("roc_auc", p), 3)
    0.929
    >>> round(expected_metric("accuracy", p), 3)
    0.85
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["ESTIMABLE", "PerformanceEstimate", "estimate_performance", "expected_metric"]

ESTIMABLE = ("roc_auc", "accuracy", "precision", "recall", "f1")
MIN_ROWS = 50  # fewer answers give an estimate too noisy to report


def _expected_auc(p: np.ndarray) -> float:
    """Sum over pairs i != j of p_i (1 - p_j) [s_i > s_j] (+ half on ties), over the pairs' weight."""
    s = np.sort(p, kind="stable")  # the score is the probability itself
    start = np.unique(s, return_index=True)[1]
    ends = np.append(start[1:], s.size)
    neg_cum = np.concatenate([[0.0], np.cumsum(1.0 - s)])
    below = neg_cum[start]  # expected negatives with a strictly lower score, per distinct score
    tied_neg = neg_cum[ends] - below
    pos = np.add.reduceat(s, start)  # expected positives per distinct score
    self_pairs = float(np.sum(s * (1.0 - s)))  # a row is never paired with itself
    numerator = float(np.sum(pos * (below + 0.5 * tied_neg))) - 0.5 * self_pairs
    denominator = float(s.sum() * (1.0 - s).sum()) - self_pairs
    return numerator / denominator if denominator > 0 else float("nan")


def expected_metric(metric: str, proba: np.ndarray, *, threshold: float = 0.5) -> float:
    """The metric a calibrated model is expected to reach on rows with these P(class 1)."""
    p = np.clip(np.asarray(proba, dtype="float64"), 0.0, 1.0)
    if metric not in ESTIMABLE:
        raise ValueError(
            f"cannot estimate {metric!r} without labels; estimable: {', '.join(ESTIMABLE)}"
        )
    if p.size == 0:
        return float("nan")
    if metric == "roc_auc":
        return _expected_auc(p)
    flagged = p >= threshold
    tp = float(p[flagged].sum())
    fp = float((1.0 - p[flagged]).sum())
    fn = float(p[~flagged].sum())
    tn = float((1.0 - p[~flagged]).sum())
    if metric == "accuracy":
        return (tp + tn) / p.size
    if metric == "precision":
        return tp / (tp + fp) if tp + fp > 0 else float("nan")
    if metric == "recall":
        return tp / (tp + fn) if tp + fn > 0 else float("nan")
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else float("nan")


@dataclass(frozen=True)
class PerformanceEstimate:
    """The label-free estimate of one window against the same estimate on the holdout."""

    metric: str
    threshold: float
    rows: int
    estimated: float
    reference: float
    estimated_drop: float  # relative; positive = worse than on the holdout

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_performance(
    *,
    metric: str,
    higher_is_better: bool,
    live_proba: np.ndarray,
    reference_proba: np.ndarray,
    threshold: float = 0.5,
) -> PerformanceEstimate | None:
    """The window's estimate and its drop against the holdout's; None when it cannot be estimated.

    None for a metric that needs labels (e.g. rmse, ks) or for fewer than
    ``MIN_ROWS`` answers on either side.
    """
    if metric not in ESTIMABLE or len(live_proba) < MIN_ROWS or len(reference_proba) < MIN_ROWS:
        return None
    live = expected_metric(metric, live_proba, threshold=threshold)
    ref = expected_metric(metric, reference_proba, threshold=threshold)
    if not (np.isfinite(live) and np.isfinite(ref)) or ref == 0:
        return None
    change = (ref - live) / abs(ref)
    return PerformanceEstimate(
        metric=metric,
        threshold=threshold,
        rows=len(live_proba),
        estimated=round(live, 6),
        reference=round(ref, 6),
        estimated_drop=round(change if higher_is_better else -change, 6),
    )
