"""Confidence-aware automation: ``decide`` turns an interval or a prediction set into auto | review.

The per-model policy lives in the catalog (``conformal.policy``, a
``DecisionPolicySpec``). A prediction that is not high-risk is ``auto``; a
high-risk one is ``auto`` only when the model is confident about it: its
conformal interval is narrow (``max_width``, ``max_relative_width``) or its
prediction set small (``max_set_size``). Every threshold given must hold.
The function is pure and vectorised: arrays in, an array of decisions out.

Example:
    >>> from raycore.specs.conformal import DecisionPolicySpec
    >>> policy = DecisionPolicySpec(high_risk_above=100.0, max_width=20.0)
    >>> decide(prediction=np.array([50.0, 150.0, 150.0]), lower=np.array([0.0, 140.0, 100.0]),
    ...        upper=np.array([100.0, 160.0, 200.0]), policy=policy).tolist()
    ['auto', 'auto', 'review']
"""

from __future__ import annotations

import numpy as np

from raycore.conformal.scores import ConformalError
from raycore.specs.conformal import DecisionPolicySpec

__all__ = ["AUTO", "REVIEW", "decide"]

AUTO = "auto"
REVIEW = "review"


def decide(
    *,
    prediction: np.ndarray,
    policy: DecisionPolicySpec,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    set_size: np.ndarray | None = None,
) -> np.ndarray:
    """``'auto'`` or ``'review'`` per row under ``policy`` (intervals: ``lower``/``upper``; sets: ``set_size``).

    Binary classifiers pass P(class 1) as ``prediction`` (so ``high_risk_above``
    is a probability); multiclass models may pass any per-row risk score.
    A threshold the policy sets but the caller gives no data for is an error,
    never silently skipped.
    """
    pred = np.atleast_1d(np.asarray(prediction, dtype="float64"))
    needs_interval = policy.max_width is not None or policy.max_relative_width is not None
    if needs_interval and (lower is None or upper is None):
        raise ConformalError(
            "the policy judges interval width (max_width / max_relative_width) but no interval was given",
            hint="pass lower= and upper= from calibrator.interval(...), or drop those thresholds",
        )
    if policy.max_set_size is not None and set_size is None:
        raise ConformalError(
            "the policy judges set size (max_set_size) but no set_size was given",
            hint="pass set_size=calibrator.prediction_set(...).sum(axis=1), or drop max_set_size",
        )
    confident = np.isfinite(pred)  # a missing prediction is never confident
    if needs_interval:
        lo = np.atleast_1d(np.asarray(lower, dtype="float64"))
        hi = np.atleast_1d(np.asarray(upper, dtype="float64"))
        if lo.shape != pred.shape or hi.shape != pred.shape:
            raise ConformalError(
                f"shapes differ: prediction {pred.shape}, lower {lo.shape}, upper {hi.shape}",
                hint="pass one interval per prediction",
            )
        width = hi - lo
        if policy.max_width is not None:
            confident &= width <= policy.max_width
        if policy.max_relative_width is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = np.where(np.abs(pred) > 0, width / np.abs(pred), np.inf)
            confident &= relative <= policy.max_relative_width
    if policy.max_set_size is not None:
        size = np.atleast_1d(np.asarray(set_size))
        if size.shape != pred.shape:
            raise ConformalError(
                f"set_size has shape {size.shape}, prediction {pred.shape}",
                hint="one set size per prediction",
            )
        # An empty set means no class is typical enough for this row: never confident.
        confident &= (size >= 1) & (size <= policy.max_set_size)
    high_risk = np.ones(pred.shape, dtype=bool)
    if policy.high_risk_above is not None:
        high_risk = (pred >= policy.high_risk_above) | np.isnan(pred)
    # NaN widths and predictions are never confident (comparisons with NaN are False): they go to review.
    return np.where(high_risk & ~confident, REVIEW, AUTO)
