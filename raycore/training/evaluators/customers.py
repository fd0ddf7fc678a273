"""Evaluators of the customer and operations models whose truth is not a label column.

Each scores the bundle's holdout predictions against a truth table of the data world and
reports the oracle (the generating process' own best) on the same rows. Truth is read only
to score; predictions never see it.

- ``sentiment_accuracy`` (mdl-002): accuracy (and macro-F1) of the predicted class; oracle:
  the argmax of the exact text-only posterior ``feedback_truth.p_*``.
- ``anomaly_f1`` (mdl-003): F1 (precision, recall) of the 0/1 flags against the injected
  anomalies ``infra_metrics_truth.is_anomaly``; oracle: the best F1 over thresholds of the
  residual under the true generating function, ``|value - expected| / noise_scale``.
- ``segment_ari`` (mdl-008): adjusted Rand index of the cluster ids against the latent
  segments ``customers_truth.segment``; oracle: the Bayes MAP segment from the true traits.

Example:
    >>> from raycore.training.evaluation import get_evaluator
    >>> get_evaluator("segment_ari").__name__
    'segment_ari'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.training.evaluation import ORACLE_COLUMN, EvalContext, EvalResult, evaluator
from raycore.training.metrics import compute_metric

__all__ = ["anomaly_f1", "best_threshold_f1", "segment_ari", "sentiment_accuracy"]

SENTIMENT_CLASSES = ("negative", "neutral", "positive")


def _with_truth(
    rows: pd.DataFrame, truth: pd.DataFrame, keys: list[str], columns: list[str]
) -> pd.DataFrame:
    """``rows`` (in order) with truth ``columns`` joined by ``keys``; every row must match."""
    joined = rows[keys].merge(
        truth[[*keys, *columns]].drop_duplicates(keys), on=keys, how="left", validate="many_to_one"
    )
    missing = joined[columns].isna().any(axis=1)
    if missing.any():
        raise DataError(
            f"{int(missing.sum())} holdout row(s) have no truth on {', '.join(keys)}",
            hint="the holdout rows and the truth table must share the keys",
        )
    return joined


def best_threshold_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    """Highest F1 of ``scores > t`` over every threshold ``t`` (one pass over the sorted scores).

    Example:
        >>> best_threshold_f1(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        0.8
    """
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype="float64"), kind="stable")
    hits = np.cumsum(labels[order])
    flagged = np.arange(1, len(order) + 1)
    f1 = 2.0 * hits / (flagged + labels.sum())
    return float(f1.max()) if len(f1) else float("nan")


@evaluator("sentiment_accuracy")
def sentiment_accuracy(ctx: EvalContext) -> EvalResult:
    """Accuracy and macro-F1 of the predicted sentiment; oracle: argmax of the true text posterior."""
    rows = ctx.holdout_rows
    y = rows[ctx.spec.label].astype(str).to_numpy()
    pred = np.asarray(ctx.predict()).astype(str)
    probs = [f"p_{c}" for c in SENTIMENT_CLASSES]
    truth = _with_truth(
        rows, ctx.truth(str(ctx.params.get("truth", "feedback_truth"))), ["feedback_id"], probs
    )
    oracle_pred = np.asarray(SENTIMENT_CLASSES)[truth[probs].to_numpy().argmax(axis=1)]
    metrics = {m: compute_metric(m, y_true=y, y_pred=pred) for m in ("accuracy", "macro_f1")}
    oracle = {m: compute_metric(m, y_true=y, y_pred=oracle_pred) for m in ("accuracy", "macro_f1")}
    return EvalResult(
        metrics,
        oracle,
        notes=f"{len(rows)} holdout items; oracle = argmax of the exact text posterior",
    )


@evaluator("anomaly_f1")
def anomaly_f1(ctx: EvalContext) -> EvalResult:
    """F1 of the anomaly flags against the injected anomalies; oracle: best F1 of the true residual."""
    keys = ["host_id", "metric", "ts"]
    rows = ctx.holdout_rows
    truth = _with_truth(
        rows,
        ctx.truth(str(ctx.params.get("truth", "infra_metrics_truth"))),
        keys,
        ["is_anomaly", "expected_value", "noise_scale"],
    )
    y = truth["is_anomaly"].to_numpy().astype("int64")
    flags = np.asarray(ctx.predict()).astype("int64")
    metrics = {"f1": compute_metric("f1", y_true=y, y_pred=flags)}
    metrics["precision"] = float(flags[y == 1].sum() / max(flags.sum(), 1))
    metrics["recall"] = float(flags[y == 1].mean()) if (y == 1).any() else float("nan")
    residual = np.abs(
        rows["value"].to_numpy(dtype="float64") - truth["expected_value"].to_numpy()
    ) / truth["noise_scale"].to_numpy(dtype="float64")
    oracle = {"f1": best_threshold_f1(y, residual)}
    notes = (
        f"{len(rows)} holdout points, {int(y.sum())} anomalous; "
        "oracle = best-threshold F1 of |value - expected| / noise_scale under the true process"
    )
    return EvalResult(metrics, oracle, notes=notes)


@evaluator("segment_ari")
def segment_ari(ctx: EvalContext) -> EvalResult:
    """Adjusted Rand index of the clusters against the latent segments; oracle: MAP from true traits."""
    rows = ctx.holdout_rows
    truth = _with_truth(
        rows,
        ctx.truth(str(ctx.params.get("truth", "customers_truth"))),
        ["customer_id"],
        ["segment", "map_segment"],
    )
    segment = truth["segment"].astype(str).to_numpy()
    clusters = np.asarray(ctx.predict())
    best = (
        rows[ORACLE_COLUMN].astype(str).to_numpy()
        if ORACLE_COLUMN in rows.columns
        else truth["map_segment"]
    )
    metrics = {"adjusted_rand": compute_metric("adjusted_rand", y_true=segment, y_pred=clusters)}
    oracle = {
        "adjusted_rand": compute_metric(
            "adjusted_rand", y_true=segment, y_pred=np.asarray(best).astype(str)
        )
    }
    sizes = ", ".join(f"{k}: {v}" for k, v in sorted(pd.Series(clusters).value_counts().items()))
    return EvalResult(
        metrics, oracle, notes=f"{len(rows)} holdout customers; cluster sizes {sizes}"
    )
