"""Feature view ``store_sales_lags``: weekly store revenue, 1-4 weeks ahead.

The view is declared in ``raycore/features/declarations/store_sales_lags.yaml``;
this module holds its feature table and the functions the declaration names.

Feature table ``store_weekly_stats`` (entity ``store_id``, event time
``origin_week``): for every store and week, the latest four weekly revenues,
the 13-week mean, the promotion weeks among those 13, and the revenue of the
weeks one year before the next four (``rev_ly_h`` = revenue of week
``origin_week + h - 52``). A week's revenue is known once the week is over
(``week_start + 7 days``) or when the row arrived, if later; a feature row is
available once every week it was computed from is.

The same rows carry a seasonal regression fitted on all weeks up to the
origin (``fit_*``): log revenue = store level + store trend + store promotion
uplift + the region's yearly cycle (two harmonics) and holiday weeks, with the
cycle pooled over the stores of a region (``region_id`` of the source; each
store is its own region when the source has no such column). Its forecast of
the target week, relative to the 13-week mean, is the model's main feature:
a year of one store's weekly revenue is too noisy to read its season from,
a region's stores over every year seen are not.

A request names the store, the target week and whether a promotion is
planned; the view looks up the store's latest row and derives the horizon
(weeks from ``origin_week`` to ``week_start``, 1 to 4). The label is
normalised by the 13-week mean (``scale_column``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF

__all__ = ["MAX_HORIZON", "STORE_WEEKLY_STATS"]

MAX_HORIZON = 4
WINDOW = 13
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)
NEW_YEAR_WEEK = 1
WEEK = pd.Timedelta(days=7)
YEAR_WEEKS = 52.18  # the period of the yearly cycle, in weeks
MIN_FIT_WEEKS = 52  # weeks of a store's history before its seasonal fit is used
FIT_RIDGE = 1e-6  # keeps the normal equations solvable when a regressor never varied (no promotion yet)
# Regressors of the region's yearly cycle: two harmonics, the holiday peak and the new-year dip.
SEASON_TERMS = ("sin", "cos", "sin2", "cos2", "holiday", "new_year")


def _week_matrix(sales: pd.DataFrame, column: str, weeks: pd.DatetimeIndex) -> pd.DataFrame:
    return sales.pivot_table(index="week_start", columns="store_id", values=column, aggfunc="last").reindex(weeks)


def _season_design(woy: np.ndarray) -> np.ndarray:
    """Regressors of the yearly cycle (``SEASON_TERMS``) for ISO weeks ``woy``; shape ``(*woy.shape, 6)``."""
    angle = 2.0 * np.pi * np.asarray(woy, dtype="float64") / YEAR_WEEKS
    return np.stack(
        [
            np.sin(angle),
            np.cos(angle),
            np.sin(2.0 * angle),
            np.cos(2.0 * angle),
            np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64"),
            (np.asarray(woy) == NEW_YEAR_WEEK).astype("float64"),
        ],
        axis=-1,
    )


def _store_regions(sales: pd.DataFrame, stores: pd.Index) -> np.ndarray:
    """Region of each store (the latest one sent); a store without one is a region of its own."""
    if "region_id" not in sales.columns:
        return -stores.to_numpy(dtype="int64")
    region = sales.dropna(subset=["region_id"]).groupby("store_id")["region_id"].last().reindex(stores)
    return np.where(region.isna(), -stores.to_numpy(dtype="int64"), region.fillna(0)).astype("int64")


def _seasonal_fit(
    rev: pd.DataFrame, promo: pd.DataFrame, known: pd.DataFrame, regions: np.ndarray
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Per origin week and store, the seasonal regression of log revenue on every week up to the origin.

    ``log rev_st = a_s + b_s t + f_s promo_st + theta_r . season(woy_t) + e_st``, store terms per store and the
    cycle ``theta_r`` shared by the stores of region ``r``. Solved in closed form for all origins at once:
    cumulative sums of the cross products give each origin's normal equations; the store terms are
    projected out of the cycle's (Frisch-Waugh), whose equations are then summed over the region.
    Returns the fitted terms as week x store frames (the level ``fit_log_base`` at the origin week,
    NaN before ``MIN_FIT_WEEKS`` weeks) and when each origin's fit could first be known (the latest
    arrival among the region's weeks up to it).
    """
    n_weeks, n_stores = rev.shape
    woy = rev.index.isocalendar().week.to_numpy().astype("int64")
    t = np.arange(n_weeks, dtype="float64") / 52.0
    values = rev.to_numpy(dtype="float64")
    ok = np.isfinite(values) & (values > 0)
    y = np.log(np.where(ok, values, 1.0)) * ok
    promo_x = promo.fillna(0).to_numpy(dtype="float64")
    store_raw = np.stack(
        [np.ones((n_weeks, n_stores)), np.broadcast_to(t[:, None], (n_weeks, n_stores)), promo_x], axis=2
    )
    store_x = store_raw * ok[:, :, None]
    season_x = np.broadcast_to(_season_design(woy)[:, None, :], (n_weeks, n_stores, len(SEASON_TERMS))) * ok[:, :, None]
    xx = np.cumsum(np.einsum("tsi,tsj->tsij", store_x, store_x), axis=0) + FIT_RIDGE * np.eye(3)
    xh = np.cumsum(np.einsum("tsi,tsj->tsij", store_x, season_x), axis=0)
    hh = np.cumsum(np.einsum("tsi,tsj->tsij", season_x, season_x), axis=0)
    xy = np.cumsum(store_x * y[:, :, None], axis=0)
    hy = np.cumsum(season_x * y[:, :, None], axis=0)
    n_obs = np.cumsum(ok, axis=0)
    xx_inv = np.linalg.inv(xx)
    within_hh = hh - np.einsum("tsji,tsjk,tskl->tsil", xh, xx_inv, xh)
    within_hy = hy - np.einsum("tsji,tsjk,tsk->tsi", xh, xx_inv, xy)
    theta = np.zeros((n_weeks, n_stores, len(SEASON_TERMS)))
    fit_known = np.zeros((n_weeks, n_stores))
    # Unknown weeks count as known at the start; a row whose own weeks are missing is dropped by the caller.
    known_max = np.fmax.accumulate(np.nan_to_num(known.to_numpy(dtype="float64"), nan=-np.inf), axis=0)
    for region in np.unique(regions):
        members = regions == region
        lhs = within_hh[:, members].sum(axis=1) + FIT_RIDGE * np.eye(len(SEASON_TERMS))
        theta[:, members] = np.linalg.solve(lhs, within_hy[:, members].sum(axis=1)[..., None])[:, None, :, 0]
        fit_known[:, members] = known_max[:, members].max(axis=1)[:, None]
    beta = np.einsum("tsij,tsj->tsi", xx_inv, xy - np.einsum("tsij,tsj->tsi", xh, theta))
    # In-sample log residuals of the last four weeks under the origin's fit: the recent local level.
    residuals = []
    for lag in range(4):
        at = np.arange(n_weeks) - lag
        valid = at >= 0
        at = np.maximum(at, 0)
        fitted = np.einsum("tsi,tsi->ts", beta, store_raw[at]) + np.einsum("tsi,ti->ts", theta, _season_design(woy[at]))
        residuals.append(np.where(valid[:, None] & ok[at], y[at] - fitted, np.nan))
    with np.errstate(all="ignore"):
        resid = np.nanmean(np.stack(residuals), axis=0)
    usable = (n_obs >= MIN_FIT_WEEKS) & np.isfinite(resid)
    base = beta[:, :, 0] + beta[:, :, 1] * t[:, None]
    cols = {
        "fit_log_base": base,
        "fit_trend_52": beta[:, :, 1],
        "fit_promo": beta[:, :, 2],
        **{f"fit_season_{name}": theta[:, :, i] for i, name in enumerate(SEASON_TERMS)},
        "fit_resid_4": resid,
    }
    frames = {
        k: pd.DataFrame(np.where(usable, v, np.nan), index=rev.index, columns=rev.columns) for k, v in cols.items()
    }
    known_at = pd.DataFrame(np.where(np.isfinite(fit_known), fit_known, np.nan), index=rev.index, columns=rev.columns)
    return frames, known_at


def _weekly_stats(sales: pd.DataFrame) -> pd.DataFrame:
    sales = sales.assign(week_start=pd.to_datetime(sales["week_start"]))
    known = sales["week_start"] + WEEK
    if AVAILABLE_AT in sales.columns:
        arrived = pd.to_datetime(sales[AVAILABLE_AT])
        known = known.where(arrived.isna() | (arrived <= known), arrived)
    sales = sales.assign(_known=known.astype("int64").astype("float64"))
    weeks = pd.date_range(sales["week_start"].min(), sales["week_start"].max(), freq="7D")
    rev = _week_matrix(sales, "revenue", weeks)
    promo = _week_matrix(sales, "on_promo", weeks)
    known_m = _week_matrix(sales, "_known", weeks)

    fit, fit_known = _seasonal_fit(rev, promo, known_m, _store_regions(sales, rev.columns))

    cols: dict[str, pd.DataFrame] = {f"rev_lag_{k}": rev.shift(k - 1) for k in range(1, 5)}
    cols["rev_mean_13"] = rev.rolling(WINDOW).mean()
    cols["promo_weeks_13"] = promo.rolling(WINDOW).sum()
    available = known_m.rolling(WINDOW).max()  # NaN when any week of the window is missing
    for h in range(1, MAX_HORIZON + 1):
        cols[f"rev_ly_{h}"] = rev.shift(52 - h)
        available = np.fmax(available, known_m.shift(52 - h)).where(known_m.shift(52 - h).notna())
    cols.update(fit)
    available = np.fmax(available, fit_known).where(available.notna())

    long = {name: frame.stack(future_stack=True) for name, frame in cols.items()}
    out = pd.DataFrame(long)
    out[AVAILABLE_AT] = available.stack(future_stack=True)
    out = out.dropna().reset_index(names=["origin_week", "store_id"])
    out[AVAILABLE_AT] = pd.to_datetime(out[AVAILABLE_AT].astype("int64"))
    out["store_id"] = out["store_id"].astype("int64")
    out["promo_weeks_13"] = out["promo_weeks_13"].astype("int64")
    return out


STORE_WEEKLY_STATS = FeatureTable(
    name="store_weekly_stats",
    version=1,
    entity=("store_id",),
    event_time="origin_week",
    source="store_sales_weekly",
    ttl=pd.Timedelta(days=35),
    description="Recent weekly revenue, its 13-week level, promotions, last year's revenue and a seasonal fit per store.",
    fields=(
        FeatureField("origin_week", "date", "The latest week whose revenue is known (the forecast origin)."),
        FeatureField("rev_lag_1", "float", "Revenue of origin_week.", ge=0),
        FeatureField("rev_lag_2", "float", "Revenue one week before origin_week.", ge=0),
        FeatureField("rev_lag_3", "float", "Revenue two weeks before origin_week.", ge=0),
        FeatureField("rev_lag_4", "float", "Revenue three weeks before origin_week.", ge=0),
        FeatureField("rev_mean_13", "float", "Mean revenue of the 13 weeks ending at origin_week.", ge=0.01),
        FeatureField("promo_weeks_13", "int", "Promotion weeks among those 13.", ge=0, le=WINDOW),
        FeatureField("rev_ly_1", "float", "Revenue 51 weeks before origin_week (a year before horizon 1).", ge=0),
        FeatureField("rev_ly_2", "float", "Revenue 50 weeks before origin_week.", ge=0),
        FeatureField("rev_ly_3", "float", "Revenue 49 weeks before origin_week.", ge=0),
        FeatureField("rev_ly_4", "float", "Revenue 48 weeks before origin_week.", ge=0),
        FeatureField("fit_log_base", "float", "Seasonal fit: log revenue of origin_week without season or promotion."),
        FeatureField("fit_trend_52", "float", "Seasonal fit: the store's log growth per 52 weeks."),
        FeatureField("fit_promo", "float", "Seasonal fit: the store's log revenue uplift in a promotion week."),
        *(
            FeatureField(f"fit_season_{name}", "float", f"Seasonal fit: the region's '{name}' term of log revenue.")
            for name in SEASON_TERMS
        ),
        FeatureField("fit_resid_4", "float", "Mean log residual of the fit over the last four weeks (local level)."),
    ),
    compute=_weekly_stats,
)


def _horizon(raw: pd.DataFrame) -> np.ndarray:
    days = (raw["week_start"] - raw["origin_week"]).dt.days.to_numpy()
    return days / 7.0


def _check(raw: pd.DataFrame) -> pd.Series:
    h = _horizon(raw)
    ok = (h == np.round(h)) & (h >= 1) & (h <= MAX_HORIZON)
    reason = [
        ""
        if good
        else f"week_start {w:%Y-%m-%d} must be a Monday 1 to {MAX_HORIZON} weeks after origin_week {o:%Y-%m-%d}"
        for good, w, o in zip(ok, raw["week_start"], raw["origin_week"], strict=True)
    ]
    return pd.Series(reason, index=raw.index, dtype=object)


def _fit_log_revenue(raw: pd.DataFrame, horizon: np.ndarray, woy: np.ndarray) -> np.ndarray:
    """The seasonal fit's log revenue of the target week (trend carried ``horizon`` weeks on, planned promotion)."""
    theta = raw[[f"fit_season_{name}" for name in SEASON_TERMS]].to_numpy(dtype="float64")
    return (
        raw["fit_log_base"].to_numpy()
        + raw["fit_trend_52"].to_numpy() * horizon / 52.0
        + raw["fit_promo"].to_numpy() * raw["on_promo"].to_numpy(dtype="float64")
        + np.einsum("ni,ni->n", theta, _season_design(woy.astype("int64")))
    )


def _transform(raw: pd.DataFrame) -> pd.DataFrame:
    level = raw["rev_mean_13"].to_numpy()
    horizon = _horizon(raw).astype("int64")
    woy = raw["week_start"].dt.isocalendar().week.to_numpy().astype("float64")
    angle = 2.0 * np.pi * woy / 52.18
    last_year = np.choose(horizon - 1, [raw[f"rev_ly_{h}"].to_numpy() for h in range(1, MAX_HORIZON + 1)])
    out = pd.DataFrame(index=raw.index)
    out["horizon"] = horizon.astype("float64")
    out["on_promo"] = raw["on_promo"].astype("float64")
    out["promo_share_13"] = raw["promo_weeks_13"].to_numpy() / float(WINDOW)
    out["week_of_year"] = woy
    out["season_sin"] = np.sin(angle)
    out["season_cos"] = np.cos(angle)
    out["holiday_peak"] = np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64")
    for k in (1, 2, 3, 4):
        out[f"ratio_lag_{k}"] = raw[f"rev_lag_{k}"].to_numpy() / level
    out["ratio_last_year"] = last_year / level
    out["log_level"] = np.log(level)
    out["fit_ratio"] = np.exp(_fit_log_revenue(raw, horizon, woy) - np.log(level))
    out["fit_resid_4"] = raw["fit_resid_4"].to_numpy(dtype="float64")
    return out


def _label_rows(sales: pd.DataFrame) -> pd.DataFrame:
    """One row per (store, target week, horizon): predicted ``h`` weeks ahead of the target."""
    base = sales[["store_id", "week_start", "on_promo", "revenue"]].copy()
    base["week_start"] = pd.to_datetime(base["week_start"])
    frames = []
    for h in range(1, MAX_HORIZON + 1):
        # Forecast made when origin week (target - h) had just become known.
        frames.append(base.assign(**{AS_OF: base["week_start"] - (h - 1) * WEEK}))
    rows = pd.concat(frames, ignore_index=True)
    rows["store_id"] = rows["store_id"].astype("int64")
    rows["on_promo"] = rows["on_promo"].astype("int64")
    return rows


# The view itself is declared as data in raycore/features/declarations/store_sales_lags.yaml:
# its entity, request inputs, this module's store_weekly_stats table, the model features and the
# functions above (_transform, _check, _label_rows). Get it with get_feature_view("store_sales_lags").
