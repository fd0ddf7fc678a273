"""Conformity scores and the finite-sample conformal quantile (pure numpy, vectorised).

Regression: the absolute residual ``|y - y_hat|``, optionally divided by a
per-row scale ``sigma(x)`` (normalised scores). Classification: LAC,
``1 - p_true``, and APS, the mass of the classes ranked at or above the
true one (optionally randomised by a uniform ``u`` per row, which removes the
over-coverage of the discrete version).

The quantile of ``n`` calibration scores at coverage level ``1 - alpha`` is the
``ceil((n + 1)(1 - alpha))``-th smallest score; when that rank exceeds ``n`` the
quantile is ``+inf`` (the interval is unbounded, the set holds every class).
With exchangeable data this gives ``P(y in C(x)) >= 1 - alpha``.

Example:
    >>> conformal_quantile(np.arange(1.0, 20.0), level=0.9)   # rank ceil(20 * 0.9) = 18
    18.0
    >>> lac_sets(np.array([[0.7, 0.2, 0.1]]), threshold=0.85).tolist()
    [[True, True, False]]
"""

from __future__ import annotations

import math

import numpy as np

from raycore.errors import RaycoreError

__all__ = [
    "ConformalError",
    "aps_scores",
    "aps_sets",
    "check_level",
    "conformal_quantile",
    "lac_scores",
    "lac_sets",
]


class ConformalError(RaycoreError):
    """A conformal calibration cannot be built or used (bad level, shapes, too few rows)."""


def check_level(level: float, *, available: list[float] | None = None) -> float:
    """``level`` as a float strictly inside (0, 1), and one of ``available`` when given."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ConformalError(
            f"coverage level {level!r} is not a number", hint="pass e.g. level=0.9 for 90% coverage"
        ) from None
    if not 0.0 < value < 1.0 or not math.isfinite(value):
        raise ConformalError(
            f"coverage level {level!r} must lie strictly between 0 and 1",
            hint="pass a fraction: 0.9 for 90%, 0.95 for 95%",
        )
    if available is not None:
        match = [a for a in available if abs(a - value) < 1e-9]
        if not match:
            raise ConformalError(
                f"coverage level {value} was not calibrated for this model (calibrated: {available})",
                hint="ask for one of the calibrated levels, or add it to the model's conformal.levels and re-train",
            )
        return match[0]
    return value


def conformal_quantile(scores: np.ndarray, *, level: float) -> float:
    """The finite-sample conformal quantile of ``scores`` at coverage ``level`` (``+inf`` if too few)."""
    level = check_level(level)
    values = np.asarray(scores, dtype="float64").ravel()
    if values.size == 0:
        raise ConformalError(
            "no calibration scores",
            hint="the calibration split is empty; give the model more training rows",
        )
    if not np.isfinite(values).all():
        raise ConformalError(
            f"{int((~np.isfinite(values)).sum())} calibration score(s) are NaN or infinite",
            hint="the model predicted NaN/inf or the labels are missing on the calibration rows",
        )
    n = values.size
    # The tiny slack keeps float error in (n + 1) * level (e.g. 9.000000000000002) from adding a rank.
    rank = math.ceil((n + 1) * level - 1e-9)
    if rank > n:
        return math.inf
    return float(np.partition(values, rank - 1)[rank - 1])


def _as_proba(proba: np.ndarray) -> np.ndarray:
    out = np.asarray(proba, dtype="float64")
    if out.ndim != 2 or out.shape[1] < 2:
        raise ConformalError(
            f"class probabilities must be an (n, n_classes >= 2) matrix, got shape {out.shape}",
            hint="binary models: pass np.column_stack([1 - p, p])",
        )
    return out


def _as_labels(labels: np.ndarray, n_rows: int, n_classes: int) -> np.ndarray:
    idx = np.asarray(labels)
    if idx.shape != (n_rows,):
        raise ConformalError(
            f"expected {n_rows} class indices, got shape {idx.shape}",
            hint="one true class index per row",
        )
    idx = idx.astype("int64")
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise ConformalError(
            f"class indices must lie in 0..{n_classes - 1}, got {idx.min()}..{idx.max()}",
            hint="encode labels by their position in the model's class list",
        )
    return idx


def lac_scores(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LAC scores ``1 - p(true class)`` of each row."""
    p = _as_proba(proba)
    idx = _as_labels(labels, p.shape[0], p.shape[1])
    return 1.0 - p[np.arange(p.shape[0]), idx]


def lac_sets(proba: np.ndarray, *, threshold: float, keep_top: bool = True) -> np.ndarray:
    """Boolean (n, n_classes) membership: classes with ``1 - p <= threshold`` (+ the argmax with ``keep_top``)."""
    p = _as_proba(proba)
    sets = (1.0 - p) <= threshold
    if keep_top:
        sets[np.arange(p.shape[0]), np.argmax(p, axis=1)] = True
    return sets


def _aps_ranked(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order of classes by decreasing p, their sorted p, cumulative sums)."""
    order = np.argsort(-p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    return order, sorted_p, np.cumsum(sorted_p, axis=1)


def aps_scores(proba: np.ndarray, labels: np.ndarray, *, u: np.ndarray | None = None) -> np.ndarray:
    """APS scores: mass of the classes ranked above the true one plus ``u`` * p(true) (``u=None``: all of it)."""
    p = _as_proba(proba)
    idx = _as_labels(labels, p.shape[0], p.shape[1])
    order, sorted_p, cum = _aps_ranked(p)
    rank = np.argmax(order == idx[:, None], axis=1)
    rows = np.arange(p.shape[0])
    weight = np.ones(p.shape[0]) if u is None else np.asarray(u, dtype="float64")
    return cum[rows, rank] - (1.0 - weight) * sorted_p[rows, rank]


def aps_sets(
    proba: np.ndarray, *, threshold: float, u: np.ndarray | None = None, keep_top: bool = True
) -> np.ndarray:
    """Boolean (n, n_classes) APS membership at ``threshold`` (+ the top class with ``keep_top``)."""
    p = _as_proba(proba)
    order, sorted_p, cum = _aps_ranked(p)
    weight = np.ones(p.shape[0]) if u is None else np.asarray(u, dtype="float64")
    # A class is in the set when its own score (mass above it + u * its p) is within the threshold.
    scores_sorted = cum - (1.0 - weight[:, None]) * sorted_p
    # The slack absorbs float error in the cumulative sums (the full mass may sum to 1 + 1e-16).
    keep_sorted = scores_sorted <= threshold + 1e-12
    if keep_top:
        keep_sorted[:, 0] = True
    sets = np.zeros_like(keep_sorted)
    np.put_along_axis(sets, order, keep_sorted, axis=1)
    return sets
