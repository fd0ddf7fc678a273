"""Drift statistics over many columns at once: one numpy array op per statistic.

Every function takes matrices with one row per column (bin counts, bin means,
moments), so the cost of a check is a handful of array operations whatever the
column count. Binned counts for the chi-square test carry a last "missing"
cell; cells empty in both samples drop out of its degrees of freedom.

Example:
    >>> import numpy as np
    >>> ref = np.array([[50, 50, 0]]); cur = np.array([[80, 20, 0]])
    >>> bool(chi_square(ref, cur)[2][0] < 1e-4)
    True
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "adjust_p_values",
    "bin_columns",
    "bin_means",
    "chi_square",
    "jensen_shannon",
    "mean_shift_test",
    "population_stability_index",
    "wasserstein_binned",
]

_PSI_FLOOR = 1e-4  # share given to an empty cell so PSI stays finite


def bin_columns(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine-bin counts and value sums of each column of ``values`` in its own sorted edges.

    ``values`` is (rows, columns) float with NaN for missing; ``edges`` is
    (columns, G+1), non-decreasing per row. Bin 0 holds values below the first
    edge, bin i (1..G) values in [edge[i-1], edge[i]), bin G+1 values at or
    above the last edge. Returns (counts (columns, G+2), sums (columns, G+2),
    missing (columns,)).
    """
    n_cols, n_edges = edges.shape
    counts = np.empty((n_cols, n_edges + 1), dtype=np.int64)
    sums = np.empty((n_cols, n_edges + 1), dtype=np.float64)
    missing = np.empty(n_cols, dtype=np.int64)
    for j in range(n_cols):
        column = values[:, j]
        finite = column[~np.isnan(column)]
        missing[j] = column.shape[0] - finite.shape[0]
        # searchsorted is one-dimensional; each column has its own reference edges.
        idx = np.searchsorted(edges[j], finite, side="right")
        counts[j] = np.bincount(idx, minlength=n_edges + 1)
        sums[j] = np.bincount(idx, weights=finite, minlength=n_edges + 1)
    return counts, sums, missing


def bin_means(counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Mean value per bin (0 where a bin is empty: an empty bin carries no mass)."""
    return _safe_div(sums, counts)


def wasserstein_binned(
    *, ref_counts: np.ndarray, ref_means: np.ndarray, cur_counts: np.ndarray, cur_means: np.ndarray
) -> np.ndarray:
    """W1 distance per row between two samples, each summarised as bin masses at their bin means.

    W1 = integral of |F - G| between these point masses, for all rows at once:
    sort the merged points, sum |cumulative F - G| times the gaps. Moving mass
    to its bin mean changes W1 by at most the within-bin spread, small on a
    fine quantile grid; an atom moved inside its bin (an integer feature
    shifted by 0.3) is still measured exactly.
    """
    points = np.concatenate([ref_means, cur_means], axis=1)
    weights = np.concatenate([_shares(ref_counts), -_shares(cur_counts)], axis=1)
    order = np.argsort(points, axis=1, kind="stable")
    points = np.take_along_axis(points, order, axis=1)
    gap_mass = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)[:, :-1]
    return np.sum(np.abs(gap_mass) * np.diff(points, axis=1), axis=1)


def mean_shift_test(
    *,
    ref_mean: np.ndarray,
    ref_var: np.ndarray,
    n_ref: np.ndarray,
    cur_mean: np.ndarray,
    cur_var: np.ndarray,
    n_cur: np.ndarray,
) -> np.ndarray:
    """Two-sided p-value of Welch's z-test for equal means per column (large-sample normal approximation)."""
    se = np.sqrt(_safe_div(ref_var, n_ref) + _safe_div(cur_var, n_cur))
    delta = np.abs(np.asarray(cur_mean, dtype=np.float64) - ref_mean)
    z = np.where(se > 0, _safe_div(delta, se), np.where(delta > 0, np.inf, 0.0))
    return np.where((n_ref > 1) & (n_cur > 1), 2.0 * stats.norm.sf(z), 1.0)


def chi_square(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sample chi-square test of homogeneity per row of two count matrices.

    Returns (statistic, degrees of freedom, p-value). A row with one
    non-empty cell has df 0 and p-value 1 (nothing can differ).
    """
    ref = ref.astype(np.float64)
    cur = cur.astype(np.float64)
    n_ref = ref.sum(axis=1, keepdims=True)
    n_cur = cur.sum(axis=1, keepdims=True)
    pooled = ref + cur
    total = n_ref + n_cur
    e_ref = _safe_div(n_ref * pooled, total)
    e_cur = _safe_div(n_cur * pooled, total)
    cells = np.where(
        pooled > 0, _safe_div((ref - e_ref) ** 2, e_ref) + _safe_div((cur - e_cur) ** 2, e_cur), 0.0
    )
    statistic = cells.sum(axis=1)
    df = np.maximum((pooled > 0).sum(axis=1) - 1, 0)
    p_value = np.where(df > 0, stats.chi2.sf(statistic, np.maximum(df, 1)), 1.0)
    return statistic, df, p_value


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log, as scipy and Evidently) per row of two count matrices."""
    p, q = _shares(ref), _shares(cur)
    m = 0.5 * (p + q)
    kl_p = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(p > 0, m, 1.0)), 0.0).sum(
        axis=1
    )
    kl_q = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / np.where(q > 0, m, 1.0)), 0.0).sum(
        axis=1
    )
    return np.sqrt(np.maximum(0.5 * (kl_p + kl_q), 0.0))


def population_stability_index(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """PSI = sum (q - p) ln(q / p) per row, empty cells floored at 1e-4."""
    p = np.maximum(_shares(ref), _PSI_FLOOR)
    q = np.maximum(_shares(cur), _PSI_FLOOR)
    return np.sum((q - p) * np.log(q / p), axis=1)


def adjust_p_values(p_values: np.ndarray, *, method: str) -> np.ndarray:
    """p-values adjusted across features: 'bh' (Benjamini-Hochberg), 'bonferroni' or 'none'.

    Example:
        >>> adjust_p_values(np.array([0.01, 0.04, 0.03]), method="bh").round(3).tolist()
        [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.shape[0]
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method != "bh":
        raise ValueError(f"unknown correction {method!r}: use 'bh', 'bonferroni' or 'none'")
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    # step-up: each adjusted value is the smallest ranked value at or above its rank
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    return adjusted


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return _safe_div(counts, counts.sum(axis=1, keepdims=True))


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b > 0)
