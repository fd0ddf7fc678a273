"""Evaluators of the marketing models: attribution shares, budget allocation, media-mix fit and ROI.

``channel_attribution`` (mdl-013): each holdout journey's conversion probability
is split over its channels by exact Shapley values of the fitted conversion
model (the value of a channel subset: the predicted probability with the other
channels' touches removed, minus the probability with none). Predicted channel
shares (sum over journeys) are compared with the true shares of the same
journeys (``journeys_truth``): ``share_error`` is the largest absolute
difference over channels.

``budget_allocation`` (mdl-014): the fitted response curves split the holdout's
mean weekly budget over channels and regions; the split is scored on the TRUE
steady-state response (``channel_effects_truth``: decay, half saturation and
ceiling per unit of region weight; region weights from ``stores_truth`` as
``raycore.data.world.marketing`` defines them). ``oracle_conversion_share`` is
the incremental conversions of the model's split over those of the optimal split
under the true curves (conversions are proportional to sales, so the ratio is
the same in either unit).

``media_mix`` (mdl-030): ``r2`` of national weekly sales (regions summed) on the
holdout weeks, and ``roi_error``: the mean over channels of the relative error
of each channel's ROI (its fitted contribution over its spend, every week and
region) against the true ROI.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.training.evaluation import ORACLE_COLUMN, EvalContext, EvalResult, evaluator
from raycore.training.metrics import compute_metric

__all__ = ["budget_allocation", "channel_attribution", "media_mix", "true_response_curves"]

DEFAULT_CHANNELS = ("search", "social", "display", "email", "video", "affiliate")


def _fitted(ctx: EvalContext) -> Any:
    """The fitted custom estimator behind the bundle (the sklearn adapter keeps it as ``model``)."""
    est = ctx.bundle.estimator
    return getattr(est, "model", est)


def _channels(ctx: EvalContext) -> list[str]:
    return list(ctx.params.get("channels") or DEFAULT_CHANNELS)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- attribution (mdl-013)


@evaluator("channel_attribution")
def channel_attribution(ctx: EvalContext) -> EvalResult:
    """Shapley channel shares of the holdout journeys vs their true shares."""
    channels = _channels(ctx)
    column = str(ctx.params.get("touch_column", "touches_{channel}"))
    cols = [column.format(channel=c) for c in channels]
    rows = ctx.holdout_rows.reset_index(drop=True)
    n, n_c = len(rows), len(channels)
    masks = (np.arange(2**n_c)[:, None] >> np.arange(n_c)[None, :]) & 1
    # One prediction pass over every journey under every channel subset (the others' touches removed).
    stacked = pd.concat([rows] * len(masks), ignore_index=True)
    keep = np.repeat(masks, n, axis=0)
    for j, col in enumerate(cols):
        stacked[col] = stacked[col].to_numpy() * keep[:, j]
    prob = (
        np.asarray(ctx.predict(stacked), dtype="float64").reshape(len(masks), n).T
    )  # (journeys, subsets)
    from raycore.models.custom.marketing import shapley_values

    phi = shapley_values(prob - prob[:, [0]])
    share = phi.sum(axis=0) / phi.sum()

    truth = ctx.truth("journeys_truth")
    true_phi = rows[["journey_id"]].merge(truth, on="journey_id", how="left")[
        [f"shapley_{c}" for c in channels]
    ]
    if true_phi.isna().any().any():
        raise DataError(
            "holdout journeys without a truth row",
            hint="check journeys_truth against the journeys table",
        )
    true_share = true_phi.sum(axis=0).to_numpy() / true_phi.to_numpy().sum()
    world_share = (
        ctx.truth("channel_effects_truth")
        .set_index("channel")
        .reindex(channels)["true_share"]
        .to_numpy()
    )
    error = np.abs(share - true_share)
    metrics = {
        "share_error": float(error.max()),
        "share_mae": float(error.mean()),
        "share_error_vs_world": float(np.abs(share - world_share).max()),
        "roc_auc": compute_metric(
            "roc_auc", y_true=rows[ctx.spec.label].to_numpy(), y_pred=prob[:, -1]
        ),
    }
    oracle = {"share_error": 0.0, "share_mae": 0.0}
    if ORACLE_COLUMN in rows.columns:
        oracle["roc_auc"] = compute_metric(
            "roc_auc", y_true=rows[ctx.spec.label].to_numpy(), y_pred=rows[ORACLE_COLUMN].to_numpy()
        )
    shown = ", ".join(
        f"{c} {s:.3f} (true {t:.3f})" for c, s, t in zip(channels, share, true_share, strict=True)
    )
    return EvalResult(metrics, oracle, notes=f"{n} holdout journeys; shares: {shown}")


# --------------------------------------------------------------------------- budget allocation (mdl-014)


def true_response_curves(ctx: EvalContext, channels: list[str]) -> pd.DataFrame:
    """The world's steady-state response per channel and region: ``a x / (x + k)`` in sales units."""
    effects = ctx.truth("channel_effects_truth").set_index("channel").reindex(channels)
    regions = np.sort(ctx.table("regions")["region_id"].unique())
    stores = ctx.truth("stores_truth")
    revenue = (
        stores.groupby("region_id")["base_revenue"]
        .sum()
        .reindex(regions, fill_value=0.0)
        .to_numpy()
        + 1.0
    )
    weight = revenue / revenue.sum()
    rows = []
    for c in channels:
        decay, half, beta = (
            float(effects.loc[c, k])
            for k in (
                "adstock_decay",
                "half_saturation_per_region_weight",
                "beta_per_region_weight",
            )
        )
        for region, w in zip(regions, weight, strict=True):
            rows.append(
                {
                    "channel": c,
                    "region_id": float(region),
                    "a": beta * w,
                    "k": half * w * (1 - decay),
                }
            )
    return pd.DataFrame(rows)


def _response(curves: pd.DataFrame, spend: np.ndarray) -> float:
    a, k = curves["a"].to_numpy(), curves["k"].to_numpy()
    return float(np.sum(a * spend / (spend + k)))


@evaluator("budget_allocation")
def budget_allocation(ctx: EvalContext) -> EvalResult:
    """The model's budget split scored on the true response curves, against the true optimum."""
    from raycore.models.custom.marketing import allocate_budget

    channels = _channels(ctx)
    column = str(ctx.params.get("spend_column", "spend_{channel}_lag_0"))
    model = _fitted(ctx)
    fitted = model.response_curves().set_index(["channel", "region_id"])
    truth = true_response_curves(ctx, channels).set_index(["channel", "region_id"])
    keys = truth.index.intersection(fitted.index)
    if len(keys) < len(truth):
        raise DataError(
            f"the model has response curves for {len(keys)} of {len(truth)} channel x region pairs",
            hint="train on every region",
        )
    fitted, truth = fitted.loc[keys], truth.loc[keys]

    hold = ctx.holdout_rows
    long = pd.concat(
        [
            pd.DataFrame(
                {
                    "channel": c,
                    "region_id": hold["region_id"].astype("float64"),
                    "week_start": hold["week_start"],
                    "spend": hold[column.format(channel=c)],
                }
            )
            for c in channels
        ]
    )
    weekly = long.groupby("week_start")["spend"].sum()
    historical = (
        long.groupby(["channel", "region_id"])["spend"]
        .sum()
        .reindex(keys, fill_value=0.0)
        .to_numpy()
    )
    results: dict[str, float] = {}
    notes = []
    for mult in ctx.params.get("budget_multipliers") or [1.0]:  # type: ignore[union-attr]
        budget = float(weekly.mean()) * float(mult)
        model_split = allocate_budget(fitted["a"].to_numpy(), fitted["k"].to_numpy(), budget=budget)
        best_split = allocate_budget(truth["a"].to_numpy(), truth["k"].to_numpy(), budget=budget)
        hist_split = historical / historical.sum() * budget
        best = _response(truth, best_split)
        results[f"share_at_{mult:g}x"] = _response(truth, model_split) / best
        results[f"historical_share_at_{mult:g}x"] = _response(truth, hist_split) / best
        by_channel = (
            pd.Series(model_split, index=keys).groupby(level="channel").sum().reindex(channels)
            / budget
        )
        true_by_channel = (
            pd.Series(best_split, index=keys).groupby(level="channel").sum().reindex(channels)
            / budget
        )
        notes.append(
            f"{mult:g}x budget {budget:,.0f}/week: "
            + ", ".join(
                f"{c} {m:.2f} (opt {t:.2f})"
                for c, m, t in zip(channels, by_channel, true_by_channel, strict=True)
            )
        )
    shares = [v for k, v in results.items() if k.startswith("share_at_")]
    metrics = {"oracle_conversion_share": float(min(shares)), **results}
    oracle = {"oracle_conversion_share": 1.0}
    return EvalResult(metrics, oracle, notes="; ".join(notes))


# --------------------------------------------------------------------------- media mix (mdl-030)


@evaluator("media_mix")
def media_mix(ctx: EvalContext) -> EvalResult:
    """National weekly R^2 on the holdout and ROI error per channel against the truth."""
    channels = _channels(ctx)
    column = str(ctx.params.get("spend_column", "spend_{channel}_lag_0"))
    label = ctx.spec.label
    hold = ctx.holdout_rows
    national = pd.DataFrame(
        {
            "week_start": hold["week_start"],
            "actual": hold[label].to_numpy(dtype="float64"),
            "pred": ctx.predict(),
        }
    )
    if ORACLE_COLUMN in hold.columns:
        national["oracle"] = hold[ORACLE_COLUMN].to_numpy(dtype="float64")
    national = national.groupby("week_start").sum()
    metrics = {
        "r2": compute_metric(
            "r2", y_true=national["actual"].to_numpy(), y_pred=national["pred"].to_numpy()
        )
    }
    oracle: dict[str, float] = {"roi_error": 0.0}
    if "oracle" in national.columns:
        oracle["r2"] = compute_metric(
            "r2", y_true=national["actual"].to_numpy(), y_pred=national["oracle"].to_numpy()
        )

    model = _fitted(ctx)
    rows = pd.concat([ctx.train_rows, hold], ignore_index=True)
    contrib = model.contributions(ctx.bundle.view.compute(rows))
    spend = np.array(
        [rows[column.format(channel=c)].to_numpy(dtype="float64").sum() for c in channels]
    )
    roi = contrib[channels].sum(axis=0).to_numpy() / spend
    true_roi = (
        ctx.truth("channel_effects_truth").set_index("channel").reindex(channels)["roi"].to_numpy()
    )
    rel = np.abs(roi - true_roi) / true_roi
    metrics["roi_error"] = float(rel.mean())
    metrics["roi_error_max"] = float(rel.max())
    shown = ", ".join(
        f"{c} {r:.2f} (true {t:.2f})" for c, r, t in zip(channels, roi, true_roi, strict=True)
    )
    return EvalResult(metrics, oracle, notes=f"ROI per channel: {shown}")
