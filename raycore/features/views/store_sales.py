"""Feature view ``store_sales_lags``: weekly store revenue, 1-4 weeks ahead.

Feature table ``store_weekly_stats`` (entity ``store_id``, event time
``origin_week``): for every store and week, the latest four weekly revenues,
the 13-week mean, the promotion weeks among those 13, and the revenue of the
weeks one year before the next four (``rev_ly_h`` = revenue of week
``origin_week + h - 52``). A week's revenue is known once the week is over
(``week_start + 7 days``) or when the row arrived, if later; a feature row is
available once every week it was computed from is.

A request names the store, the target week and whether a promotion is
planned; the view looks up the store's latest row and derives the horizon
(weeks from ``origin_week`` to ``week_start``, 1 to 4). The label is
normalised by the 13-week mean (``scale_column``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView

__all__ = ["MAX_HORIZON", "STORE_SALES_LAGS", "STORE_WEEKLY_STATS"]

MAX_HORIZON = 4
WINDOW = 13
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)
WEEK = pd.Timedelta(days=7)


def _week_matrix(sales: pd.DataFrame, column: str, weeks: pd.DatetimeIndex) -> pd.DataFrame:
    return sales.pivot_table(index="week_start", columns="store_id", values=column, aggfunc="last").reindex(weeks)


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

    cols: dict[str, pd.DataFrame] = {f"rev_lag_{k}": rev.shift(k - 1) for k in range(1, 5)}
    cols["rev_mean_13"] = rev.rolling(WINDOW).mean()
    cols["promo_weeks_13"] = promo.rolling(WINDOW).sum()
    available = known_m.rolling(WINDOW).max()  # NaN when any week of the window is missing
    for h in range(1, MAX_HORIZON + 1):
        cols[f"rev_ly_{h}"] = rev.shift(52 - h)
        available = np.fmax(available, known_m.shift(52 - h)).where(known_m.shift(52 - h).notna())

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
    description="Recent weekly revenue, its 13-week level, promotions, and last year's revenue per store.",
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


STORE_SALES_LAGS = FeatureView(
    name="store_sales_lags",
    version=2,
    description="Recent revenue lags, seasonality and promotions per store and target week.",
    entity=(FeatureField("store_id", "int", "Store id.", ge=1),),
    request=(
        FeatureField("week_start", "date", "Monday of the target week (1-4 weeks after origin_week)."),
        FeatureField("on_promo", "int", "1 if a promotion is planned in the target week.", ge=0, le=1),
    ),
    tables=(STORE_WEEKLY_STATS,),
    feature_names=(
        "horizon",
        "on_promo",
        "promo_share_13",
        "week_of_year",
        "season_sin",
        "season_cos",
        "holiday_peak",
        "ratio_lag_1",
        "ratio_lag_2",
        "ratio_lag_3",
        "ratio_lag_4",
        "ratio_last_year",
        "log_level",
    ),
    transform=_transform,
    check=_check,
    label_rows=_label_rows,
    scale_column="rev_mean_13",
)
