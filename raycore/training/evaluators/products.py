"""Evaluators of the product models whose gate is not "prediction vs label".

- ``truth_label`` (mdl-010): the label the model estimates is itself only known to
  the simulator (the seasonal index); predictions are scored against the oracle
  column (the spec's ``oracle``) with the gate's metric(s). The oracle scores 0.
- ``price_uplift`` (mdl-011): the price policy (:func:`recommend_price`) run on the
  fitted demand model for every holdout product-week, scored on the simulator's
  *true* demand ``base_d * (p / R0)^e_d`` of each day: revenue at the recommended
  price over revenue at the list price, minus 1. The oracle picks, per
  product-week, the best multiple of the same grid by true revenue.
- ``elasticity_mae`` (mdl-012): per product, the estimated elasticity against
  ``products_truth.elasticity``, over products with training weeks that are still
  selling in the holdout.
- ``promotion_uplift`` (mdl-016): per promoted holdout product-week, the predicted
  incremental units against the truth ``expected_units - expected_units_no_promo``;
  ``uplift_error`` is the relative error of the total, ``uplift_wape`` the row-level WAPE.

Truth tables are read only to score predictions, never to make them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.models.custom.products import recommend_price
from raycore.training.evaluation import (
    ORACLE_COLUMN,
    EvalContext,
    EvalResult,
    evaluator,
    gate_metric_names,
)
from raycore.training.metrics import compute_metric

__all__ = ["elasticity_mae", "price_uplift", "promotion_uplift", "true_revenue", "truth_label"]


@evaluator("truth_label")
def truth_label(ctx: EvalContext) -> EvalResult:
    """Gate metric(s) of the predictions against the oracle column (the true value of the estimand)."""
    rows = ctx.holdout_rows
    if ORACLE_COLUMN not in rows.columns:
        raise DataError(
            f"{ctx.spec.id}: evaluator 'truth_label' needs the spec's oracle (the true value to score against)",
            hint="add oracle: {table, column, keys} to the model spec",
        )
    truth = rows[ORACLE_COLUMN].to_numpy(dtype="float64")
    keep = np.isfinite(truth)
    pred = ctx.predict()[keep]
    truth = truth[keep]
    names = gate_metric_names(ctx.spec)
    metrics = {m: compute_metric(m, y_true=truth, y_pred=pred) for m in names}
    oracle = {m: compute_metric(m, y_true=truth, y_pred=truth) for m in names}
    return EvalResult(
        metrics, oracle, notes=f"{int(keep.sum())} holdout rows scored against the true value"
    )


def _true_days(rows: pd.DataFrame, *, truth: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """One row per product-day of each product-week row: row index, list price and the true demand curve."""
    n = len(rows)
    days = pd.DataFrame(
        {
            "product_id": np.repeat(rows["product_id"].to_numpy(), 7),
            "date": np.repeat(rows["week_start"].to_numpy(dtype="datetime64[ns]"), 7)
            + np.tile(np.arange(7), n).astype("timedelta64[D]"),
            "row": np.repeat(np.arange(n), 7),
        }
    )
    cols = ["product_id", "date", "base_demand_at_reference", "reference_price", "elasticity"]
    days = days.merge(
        truth[cols].drop_duplicates(["product_id", "date"]), on=["product_id", "date"], how="inner"
    )
    listed = prices[["product_id", "date", "list_price"]].drop_duplicates(["product_id", "date"])
    days = days.merge(listed, on=["product_id", "date"], how="left")
    fallback = rows["list_price"].to_numpy(dtype="float64")[days["row"].to_numpy()]
    days["list_price"] = np.where(days["list_price"].notna(), days["list_price"], fallback)
    return days


def _revenue(days: pd.DataFrame, multiples: np.ndarray, n: int) -> np.ndarray:
    row = days["row"].to_numpy()
    price = days["list_price"].to_numpy() * np.asarray(multiples, dtype="float64")[row]
    ref = days["reference_price"].to_numpy()
    revenue = (
        days["base_demand_at_reference"].to_numpy()
        * (price / ref) ** days["elasticity"].to_numpy()
        * price
    )
    return np.bincount(row, weights=revenue, minlength=n)


def true_revenue(
    rows: pd.DataFrame, multiples: np.ndarray, *, truth: pd.DataFrame, prices: pd.DataFrame
) -> np.ndarray:
    """True revenue of each product-week row when every day is priced at ``multiple x list price``.

    ``truth`` is ``product_prices_daily_truth`` (base demand at the reference
    price, reference price, elasticity per product-day); ``prices`` the daily list
    prices (a day without one takes the row's ``list_price``).

    Example:
        >>> rows = pd.DataFrame({"product_id": [1], "week_start": [pd.Timestamp("2025-01-06")], "list_price": [10.0]})
        >>> days = pd.date_range("2025-01-06", periods=7)
        >>> truth = pd.DataFrame({"product_id": 1, "date": days, "base_demand_at_reference": 1.0,
        ...                       "reference_price": 10.0, "elasticity": -2.0})
        >>> prices = pd.DataFrame({"product_id": 1, "date": days, "list_price": 10.0})
        >>> true_revenue(rows, np.array([1.0]), truth=truth, prices=prices).round(2).tolist()
        [70.0]
    """
    return _revenue(_true_days(rows, truth=truth, prices=prices), multiples, len(rows))


@evaluator("price_uplift")
def price_uplift(ctx: EvalContext) -> EvalResult:
    """Revenue uplift of the price policy over the list price, on the simulator's true demand."""
    lower = float(ctx.params.get("lower", 0.8))
    upper = float(ctx.params.get("upper", 1.2))
    grid = int(ctx.params.get("grid", 21))
    method = str(ctx.params.get("method", "curve"))
    rows = ctx.holdout_rows.reset_index(drop=True)
    chosen = recommend_price(
        ctx.bundle.predict, rows, lower=lower, upper=upper, grid=grid, method=method
    )
    days = _true_days(
        rows,
        truth=ctx.truth("product_prices_daily_truth"),
        prices=ctx.table("product_prices_daily"),
    )
    n = len(rows)
    base = _revenue(days, np.ones(n), n)
    got = _revenue(days, chosen, n)
    multiples = np.unique(np.r_[np.linspace(lower, upper, grid), 1.0])
    best = np.max([_revenue(days, np.full(n, m), n) for m in multiples], axis=0)
    total = float(base.sum())
    if total <= 0:
        raise DataError(
            f"{ctx.spec.id}: no true revenue for the holdout rows",
            hint="check product_prices_daily_truth",
        )
    uplift, oracle = float(got.sum()) / total - 1.0, float(best.sum()) / total - 1.0
    label = ctx.spec.label
    y = rows[label].to_numpy(dtype="float64")
    wape = compute_metric("wape", y_true=y, y_pred=ctx.predict(rows))
    metrics = {
        "revenue_uplift": uplift,
        "demand_wape": wape,
        "price_cut_share": float(np.mean(chosen < 1.0)),
    }
    notes = (
        f"{len(rows)} product-weeks, prices in [{lower}, {upper}] x list ({method}); "
        f"uplift {uplift:.4f} vs oracle {oracle:.4f}; price cut on {np.mean(chosen < 1.0):.0%}, "
        f"raise on {np.mean(chosen > 1.0):.0%}; demand model WAPE {wape:.4f}"
    )
    return EvalResult(metrics, {"revenue_uplift": oracle}, notes=notes)


@evaluator("elasticity_mae")
def elasticity_mae(ctx: EvalContext) -> EvalResult:
    """MAE of the per-product elasticity against the truth (products with training weeks still selling)."""
    rows = ctx.holdout_rows
    seen = rows["product_id"].isin(ctx.train_rows["product_id"])
    per_product = rows[seen].drop_duplicates("product_id").reset_index(drop=True)
    cold = rows[~seen].drop_duplicates("product_id").reset_index(drop=True)
    truth = (
        ctx.truth("products_truth")
        .drop_duplicates("product_id")
        .set_index("product_id")["elasticity"]
    )
    if per_product.empty:
        raise DataError(
            f"{ctx.spec.id}: no holdout product has training weeks", hint="check the holdout cut"
        )
    pred = ctx.predict(per_product)
    true = truth.reindex(per_product["product_id"]).to_numpy(dtype="float64")
    mae = float(np.mean(np.abs(pred - true)))
    notes = f"{len(per_product)} products with training weeks: MAE {mae:.4f}, bias {np.mean(pred - true):+.4f}"
    if not cold.empty:
        cold_true = truth.reindex(cold["product_id"]).to_numpy(dtype="float64")
        cold_mae = float(np.mean(np.abs(ctx.predict(cold) - cold_true)))
        notes += f"; {len(cold)} products launched in the holdout (category prior only): MAE {cold_mae:.4f}"
    return EvalResult({"mae": mae}, {"mae": 0.0}, notes=notes)


@evaluator("promotion_uplift")
def promotion_uplift(ctx: EvalContext) -> EvalResult:
    """Predicted incremental units of holdout promotions against the simulator's counterfactual."""
    treatment = str(ctx.params.get("treatment_column", "promo_type"))
    control = ctx.params.get("control_value", "none")
    rows = ctx.holdout_rows
    promoted = rows[rows[treatment] != control].reset_index(drop=True)
    if promoted.empty:
        raise DataError(
            f"{ctx.spec.id}: the holdout has no promoted rows", hint="lengthen the holdout"
        )
    truth = ctx.truth("product_demand_weekly_truth")
    truth = truth.assign(uplift=truth["expected_units"] - truth["expected_units_no_promo"])
    keys = ["product_id", "week_start"]
    true = promoted[keys].merge(
        truth[[*keys, "uplift"]].drop_duplicates(keys), on=keys, how="left"
    )["uplift"]
    keep = true.notna().to_numpy()
    pred = ctx.predict(promoted)[keep]
    true_v = true.to_numpy(dtype="float64")[keep]
    total_error = float(abs(pred.sum() - true_v.sum()) / max(abs(true_v.sum()), 1e-12))
    wape = float(np.abs(pred - true_v).sum() / max(np.abs(true_v).sum(), 1e-12))
    notes = (
        f"{int(keep.sum())} promoted product-weeks: predicted {pred.sum():,.0f} vs true {true_v.sum():,.0f} "
        f"incremental units (total error {total_error:.4f}); row-level WAPE {wape:.4f}"
    )
    return EvalResult(
        {"uplift_error": total_error, "uplift_wape": wape},
        {"uplift_error": 0.0, "uplift_wape": 0.0},
        notes,
    )
