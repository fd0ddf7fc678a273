"""Feature view ``store_sales_lags``: weekly store revenue, 1-4 weeks ahead.

Raw inputs are what is known at the forecast origin (the last observed week):
the latest four weekly revenues, the 13-week mean, the number of promotion
weeks among those 13, the revenue of the target week one year earlier, plus
the target week itself, the horizon and whether a promotion is planned.

The label is normalised by the 13-week mean (``scale_column``): the model
learns the ratio of target revenue to the recent level, which transfers
across stores of very different size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.features.view import FeatureView, InputField

__all__ = ["STORE_SALES_LAGS", "build_store_sales_inputs"]

MAX_HORIZON = 4
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)


def _transform(raw: pd.DataFrame) -> pd.DataFrame:
    level = raw["rev_mean_13"].to_numpy()
    woy = raw["week_start"].dt.isocalendar().week.to_numpy().astype("float64")
    angle = 2.0 * np.pi * woy / 52.18
    out = pd.DataFrame(index=raw.index)
    out["horizon"] = raw["horizon"].astype("float64")
    out["on_promo"] = raw["on_promo"].astype("float64")
    out["promo_share_13"] = raw["promo_weeks_13"].to_numpy() / 13.0
    out["week_of_year"] = woy
    out["season_sin"] = np.sin(angle)
    out["season_cos"] = np.cos(angle)
    out["holiday_peak"] = np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64")
    for k in (1, 2, 3, 4):
        out[f"ratio_lag_{k}"] = raw[f"rev_lag_{k}"].to_numpy() / level
    out["ratio_last_year"] = raw["rev_lag_52"].to_numpy() / level
    out["log_level"] = np.log(level)
    return out


def build_store_sales_inputs(sales: pd.DataFrame, *, max_horizon: int = MAX_HORIZON) -> pd.DataFrame:
    """Raw inputs + label for every (store, target week, horizon) the history allows.

    Only values observed at the forecast origin (target week minus horizon) or
    earlier are used, so no row sees its future.
    """
    frames = []
    for _, g in sales.sort_values(["store_id", "week_start"]).groupby("store_id", sort=False):
        rev = g["revenue"].reset_index(drop=True)
        promo = g["on_promo"].reset_index(drop=True)
        weeks = g["week_start"].reset_index(drop=True)
        lags = {k: rev.shift(k - 1) for k in (1, 2, 3, 4)}
        mean13 = rev.rolling(13).mean()
        promo13 = promo.rolling(13).sum()
        for h in range(1, max_horizon + 1):
            # Row i describes origin week i; the target is week i + h.
            target = pd.DataFrame(
                {
                    "store_id": g["store_id"].iloc[0],
                    "week_start": weeks.shift(-h),
                    "horizon": h,
                    "on_promo": promo.shift(-h),
                    "rev_lag_1": lags[1],
                    "rev_lag_2": lags[2],
                    "rev_lag_3": lags[3],
                    "rev_lag_4": lags[4],
                    "rev_mean_13": mean13,
                    "promo_weeks_13": promo13,
                    "rev_lag_52": rev.shift(52 - h),
                    "revenue": rev.shift(-h),
                }
            )
            frames.append(target.dropna())
    rows = pd.concat(frames, ignore_index=True)
    for col in ("horizon", "on_promo", "promo_weeks_13", "store_id"):
        rows[col] = rows[col].astype("int64")
    return rows.sort_values(["week_start", "store_id", "horizon"], ignore_index=True)


STORE_SALES_LAGS = FeatureView(
    name="store_sales_lags",
    version=1,
    entity=("store_id",),
    time_column="week_start",
    description="Recent revenue lags, seasonality and promotions per store and target week.",
    inputs=(
        InputField("store_id", "int", "Store id.", ge=1),
        InputField("week_start", "date", "Monday of the target week."),
        InputField("horizon", "int", "Weeks from the last observed week to the target week.", ge=1, le=MAX_HORIZON),
        InputField("on_promo", "int", "1 if a promotion is planned in the target week.", ge=0, le=1),
        InputField("rev_lag_1", "float", "Revenue of the last observed week.", ge=0),
        InputField("rev_lag_2", "float", "Revenue one week before that.", ge=0),
        InputField("rev_lag_3", "float", "Revenue two weeks before that.", ge=0),
        InputField("rev_lag_4", "float", "Revenue three weeks before that.", ge=0),
        InputField("rev_mean_13", "float", "Mean revenue of the last 13 observed weeks.", ge=0.01),
        InputField("promo_weeks_13", "int", "Promotion weeks among the last 13.", ge=0, le=13),
        InputField("rev_lag_52", "float", "Revenue of the target week one year earlier.", ge=0),
    ),
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
    scale_column="rev_mean_13",
    training_rows=build_store_sales_inputs,
)

