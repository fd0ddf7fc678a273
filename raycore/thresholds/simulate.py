"""What a decision threshold would do: precision, recall, alert volume and cost at T.

A binary classifier answers P(positive); operators act on ``score >= T``
(an alert, a review, a block). Moving T trades missed positives against false
alarms. ``simulate_threshold`` replays scored rows with their true labels at the
candidate T and at the current one, side by side, so the trade is visible
before it is made.

Expected cost is ``cost_fp * FP + cost_fn * FN`` over the replayed rows, also
given per 1,000 rows so windows of different sizes compare.

Example:
    >>> import numpy as np
    >>> sim = simulate_threshold(scores=np.array([0.1, 0.7, 0.9, 0.4]), labels=np.array([0, 1, 1, 0]),
    ...                          candidate=0.5, current=0.8)
    >>> sim.candidate.recall, sim.current.recall
    (1.0, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from raycore.errors import ThresholdError

__all__ = [
    "ThresholdOutcome",
    "ThresholdSimulation",
    "outcome_at",
    "simulate_threshold",
    "validate_threshold",
]


def validate_threshold(value: float) -> float:
    """A decision threshold is a probability strictly inside (0, 1)."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise ThresholdError(
            f"threshold must be a number, got {value!r}", hint="pass a probability such as 0.35"
        ) from None
    if not math.isfinite(threshold) or not 0.0 < threshold < 1.0:
        raise ThresholdError(
            f"threshold must lie strictly between 0 and 1, got {value!r}",
            hint="scores are probabilities: 0 would alert on every row and 1 on none",
        )
    return threshold


@dataclass(frozen=True)
class ThresholdOutcome:
    """Confusion counts and what they mean for one threshold."""

    threshold: float
    rows: int
    positives: int
    alerts: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float  # NaN when nothing is alerted
    recall: float  # NaN when there is no positive row
    alert_rate: float
    expected_cost: float
    cost_per_1000: float

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class ThresholdSimulation:
    """The candidate threshold next to the current one, on the same rows."""

    candidate: ThresholdOutcome
    current: ThresholdOutcome
    cost_fp: float
    cost_fn: float

    def deltas(self) -> dict[str, float]:
        """candidate minus current for the figures an operator weighs."""
        out = {}
        for key in ("precision", "recall", "alerts", "alert_rate", "expected_cost"):
            out[key] = float(getattr(self.candidate, key)) - float(getattr(self.current, key))
        return out

    def as_dict(self) -> dict[str, Any]:
        deltas = {k: (None if math.isnan(v) else v) for k, v in self.deltas().items()}
        return {
            "candidate": self.candidate.as_dict(),
            "current": self.current.as_dict(),
            "cost_fp": self.cost_fp,
            "cost_fn": self.cost_fn,
            "delta": deltas,
        }


def _clean(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype="float64").ravel()
    y_raw = np.asarray(labels).ravel()
    if s.size != y_raw.size:
        raise ThresholdError(
            f"{s.size} scores but {y_raw.size} labels",
            hint="replay the same rows: one label per scored row",
        )
    if s.size == 0:
        raise ThresholdError(
            "no labelled predictions to replay",
            hint="labels arrive after predictions; record them with `foundry labels add` or replay the holdout",
        )
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ThresholdError(
            "scores must be probabilities in [0, 1]", hint="replay a binary classifier's outputs"
        )
    try:
        y = y_raw.astype("float64")
    except (TypeError, ValueError):
        raise ThresholdError("labels must be 0/1", hint="a binary model's label column") from None
    if not np.isin(y, (0.0, 1.0)).all():
        bad = sorted({str(v) for v in y_raw[~np.isin(y, (0.0, 1.0))][:5]})
        raise ThresholdError(
            f"labels must be 0/1, found {', '.join(bad)}", hint="a binary model's label column"
        )
    return s, y.astype(bool)


def _outcome(
    s: np.ndarray, y: np.ndarray, threshold: float, cost_fp: float, cost_fn: float
) -> ThresholdOutcome:
    alert = s >= threshold
    tp = int(np.count_nonzero(alert & y))
    fp = int(np.count_nonzero(alert & ~y))
    fn = int(np.count_nonzero(~alert & y))
    tn = int(s.size - tp - fp - fn)
    alerts = tp + fp
    positives = tp + fn
    cost = cost_fp * fp + cost_fn * fn
    return ThresholdOutcome(
        threshold=threshold,
        rows=int(s.size),
        positives=positives,
        alerts=alerts,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        precision=tp / alerts if alerts else math.nan,
        recall=tp / positives if positives else math.nan,
        alert_rate=alerts / s.size,
        expected_cost=float(cost),
        cost_per_1000=float(cost) * 1000.0 / s.size,
    )


def _costs(cost_fp: float, cost_fn: float) -> tuple[float, float]:
    for name, value in (("cost_fp", cost_fp), ("cost_fn", cost_fn)):
        if not math.isfinite(value) or value < 0:
            raise ThresholdError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(cost_fp), float(cost_fn)


def outcome_at(
    *, scores: Any, labels: Any, threshold: float, cost_fp: float = 1.0, cost_fn: float = 1.0
) -> ThresholdOutcome:
    """Confusion counts, precision, recall, alert volume and cost of ``score >= threshold``."""
    s, y = _clean(scores, labels)
    fp_cost, fn_cost = _costs(cost_fp, cost_fn)
    return _outcome(s, y, validate_threshold(threshold), fp_cost, fn_cost)


def simulate_threshold(
    *,
    scores: Any,
    labels: Any,
    candidate: float,
    current: float,
    cost_fp: float = 1.0,
    cost_fn: float = 1.0,
) -> ThresholdSimulation:
    """Replay labelled scores at ``candidate`` and at ``current``."""
    s, y = _clean(scores, labels)
    fp_cost, fn_cost = _costs(cost_fp, cost_fn)
    return ThresholdSimulation(
        candidate=_outcome(s, y, validate_threshold(candidate), fp_cost, fn_cost),
        current=_outcome(s, y, validate_threshold(current), fp_cost, fn_cost),
        cost_fp=fp_cost,
        cost_fn=fn_cost,
    )
