"""Live evidence: how versions really did on answered requests once their labels arrived.

Two measurements, both on labelled live traffic only:

- ``shadow_comparison``: the champion's answer and the shadow's answer to the
  SAME requests (the shadow comparison records), each scored against the
  label that came back — the fairest live A/B there is: same inputs, same time.
- ``live_metric``: one version's metric over the prediction log since a time
  (for the rollback window after a promotion).

Labels are joined by request id (``record_labels``; one label per predicted
row: ``row`` is the row's position in its request, 0 for single-row requests).
Rows with no label yet are left out, so ``n`` says how much evidence there is.

Example:
    >>> cmp = shadow_comparison(spec, home=home)                # doctest: +SKIP
    >>> cmp.n, cmp.primary, cmp.shadow                          # doctest: +SKIP
    (250, 0.871, 0.884)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raycore.feedback import join_labels, read_labels
from raycore.specs import ModelSpec
from raycore.training.metrics import compute_metric

__all__ = ["LiveComparison", "LiveMetric", "live_metric", "relative_change", "shadow_comparison"]


@dataclass(frozen=True)
class LiveComparison:
    """Primary vs shadow on the same labelled requests (``nan`` when ``n`` is 0)."""

    n: int
    primary: float
    shadow: float
    metric: str


@dataclass(frozen=True)
class LiveMetric:
    n: int
    value: float
    metric: str


def relative_change(*, op: str, before: float, after: float) -> float:
    """Signed relative change, + is better (``op`` is the gate's: ``>=`` higher is better)."""
    if not (math.isfinite(before) and math.isfinite(after)) or abs(before) < 1e-12:
        return math.nan
    delta = (after - before) if op == ">=" else (before - after)
    return delta / abs(before)


def _values(answer: Any) -> list[Any] | None:
    if isinstance(answer, dict):
        answer = answer.get("predictions")
    if isinstance(answer, list):
        return answer
    return None


def _score(spec: ModelSpec, y: np.ndarray, pred: np.ndarray) -> float:
    if len(y) == 0:
        return math.nan
    try:
        return float(compute_metric(spec.gate.metric, y_true=y, y_pred=pred))
    except (ValueError, ZeroDivisionError):  # e.g. one class only in a small window
        return math.nan


def shadow_comparison(spec: ModelSpec, *, home: Path, since: str | None = None) -> LiveComparison:
    """Score the primary's and the shadow's answers to the same labelled requests."""
    from raycore.serving.traffic import ShadowLog

    records = ShadowLog(home=Path(home), model=spec.name).records()
    rows = []
    for rec in records:
        if rec.get("primary_error") or rec.get("shadow_error") or not rec.get("request_id"):
            continue
        if since is not None and str(rec.get("at", "")) < since:
            continue
        primary, shadow = _values(rec.get("primary")), _values(rec.get("shadow"))
        if primary is None or shadow is None or len(primary) != len(shadow):
            continue
        for i, (p, s) in enumerate(zip(primary, shadow, strict=True)):
            rows.append((str(rec["request_id"]), i, p, s))
    metric = spec.gate.metric
    if not rows:
        return LiveComparison(0, math.nan, math.nan, metric)
    answers = pd.DataFrame(rows, columns=["request_id", "row", "primary", "shadow"]).astype(
        {"request_id": "string", "row": "int64"}
    )
    joined = answers.merge(
        read_labels(home=Path(home), model=spec.name), on=["request_id", "row"], how="inner"
    )
    y = joined["label"].to_numpy()
    return LiveComparison(
        n=len(joined),
        primary=_score(spec, y, joined["primary"].to_numpy()),
        shadow=_score(spec, y, joined["shadow"].to_numpy()),
        metric=metric,
    )


def live_metric(
    spec: ModelSpec, *, home: Path, version: str | None = None, since: str | None = None
) -> LiveMetric:
    """The gate metric of ``version`` (every version if None) on labelled logged predictions since ``since``."""
    from raycore.serving.prediction_log import read_prediction_log

    log = read_prediction_log(home=home, model=spec.name, since=since)
    if version is not None and not log.empty:
        log = log[log["version"].astype(str) == str(version)]
    metric = spec.gate.metric
    if log.empty:
        return LiveMetric(0, math.nan, metric)
    joined = join_labels(log, read_labels(home=Path(home), model=spec.name))
    return LiveMetric(
        n=len(joined),
        value=_score(spec, joined["label"].to_numpy(), joined["out_prediction"].to_numpy()),
        metric=metric,
    )
