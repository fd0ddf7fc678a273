"""Feature views of the risk models: credit default, next-day market volatility, site incidents.

``credit_application_risk`` (mdl-027): everything comes with the application
(the request) and is scored at application time; the label is the 12-month
outcome of approved loans (``credit_outcomes``), known a year after the
decision (``applied_at`` stays on the rows for the time holdout; it is not an
input). Missing employment years or utilisation stay missing: the trees route
them.

``market_volatility`` (mdl-028): feature table ``instrument_vol_stats`` per
instrument and trading day: exponentially weighted realised volatility at
several half-lives, recent absolute returns, the 22-day mean realised
volatility (the label scale), volume relative to its recent level and the
cross-sectional market volatility. The label is the next trading day's
realised volatility.

``site_incident_risk`` (mdl-029): feature table ``site_ops_stats`` per site and
day: exponentially weighted means of the daily safety signals (alarms, near
misses, maintenance backlog, overtime, absence) at half-lives of 2 to 40 days.
The label is whether an incident occurs on any of the next seven days.

Late rows: both tables are streaming aggregates with an *allowed lateness*
(a watermark): the statistics of a day are closed ``*_LATENESS`` after it (the
source's usual publication lag), and a row that arrives later than that is left
out of every aggregate (otherwise one late row would hold back every later
feature row until it arrived). A feature row is available once its day is
closed: when the day's row arrived, or at the watermark if it did not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView

__all__ = [
    "CREDIT_APPLICATION_RISK",
    "CREDIT_MONOTONE",
    "INSTRUMENT_VOL_STATS",
    "MARKET_VOLATILITY",
    "SITE_INCIDENT_RISK",
    "SITE_OPS_STATS",
]

DAY = pd.Timedelta(days=1)


def _known_at(frame: pd.DataFrame, event: pd.Series, usual_lag: pd.Timedelta) -> pd.Series:
    """When each row was known: its ``available_at``, or event + usual lag where the source sends none."""
    fallback = event + usual_lag
    if AVAILABLE_AT not in frame.columns:
        return fallback
    arrived = pd.to_datetime(frame[AVAILABLE_AT])
    return arrived.where(arrived.notna(), fallback)


def _closed_at(known: pd.DataFrame, lateness: pd.Timedelta) -> pd.DataFrame:
    """When each day's statistics are final: the day's row arrived, or the watermark passed without it.

    ``known`` holds, per day (rows) and entity (columns), the arrival time (ns) of the
    on-time rows, NaN where no row came in time; the result never decreases over days.
    """
    watermark = (known.index + lateness).to_numpy().astype("int64").astype("float64")
    closed = known.where(
        known.notna(),
        pd.DataFrame(
            np.repeat(watermark[:, None], known.shape[1], 1),
            index=known.index,
            columns=known.columns,
        ),
    )
    return closed.cummax()


def _origin_check(
    request_col: str, origin_col: str, what: str
) -> Callable[[pd.DataFrame], pd.Series]:
    """A view check: the table row looked up must be of the request's own day."""

    def check(raw: pd.DataFrame) -> pd.Series:
        ok = (raw[request_col] == raw[origin_col]).to_numpy()
        reason = [
            ""
            if good
            else f"{request_col} {r:%Y-%m-%d} has no {what}: the latest known is {o:%Y-%m-%d}"
            for good, r, o in zip(ok, raw[request_col], raw[origin_col], strict=True)
        ]
        return pd.Series(reason, index=raw.index, dtype=object)

    return check


# --------------------------------------------------------------------------- credit (mdl-027)

PURPOSES = ("debt_consolidation", "home_improvement", "car", "business", "medical", "other")
HOME_OWNERSHIP = ("rent", "mortgage", "own")
# Model features and the sign of their effect on default risk (XGBoost monotone constraints).
CREDIT_FEATURES: tuple[tuple[str, int], ...] = (
    ("log_income", -1),
    ("employment_years", -1),
    ("debt_to_income", 1),
    ("credit_history_years", -1),
    ("n_delinquencies_2y", 1),
    ("revolving_utilization", 1),
    ("log_loan_to_income", 1),
    ("log_loan_amount", 0),
    ("term_60", 1),
    *((f"purpose_{p}", 0) for p in PURPOSES),
    *((f"home_{h}", 0) for h in HOME_OWNERSHIP),
)
CREDIT_MONOTONE = "(" + ",".join(str(sign) for _, sign in CREDIT_FEATURES) + ")"


def _credit_transform(raw: pd.DataFrame) -> pd.DataFrame:
    income = raw["annual_income"].to_numpy()
    loan = raw["loan_amount"].to_numpy()
    out = pd.DataFrame(index=raw.index)
    out["log_income"] = np.log(np.maximum(income, 1.0))
    out["employment_years"] = raw["employment_years"].to_numpy()  # NaN when not declared
    out["debt_to_income"] = raw["debt_to_income"].to_numpy()
    out["credit_history_years"] = raw["credit_history_years"].to_numpy()
    out["n_delinquencies_2y"] = raw["n_delinquencies_2y"].to_numpy(dtype="float64")
    out["revolving_utilization"] = raw["revolving_utilization"].to_numpy()  # NaN when not reported
    out["log_loan_to_income"] = np.log(np.maximum(loan, 1.0) / np.maximum(income, 1.0))
    out["log_loan_amount"] = np.log(np.maximum(loan, 1.0))
    out["term_60"] = (raw["loan_term_months"].to_numpy() == 60).astype("float64")
    purpose = raw["loan_purpose"].to_numpy()
    for p in PURPOSES:
        out[f"purpose_{p}"] = (purpose == p).astype("float64")
    home = raw["home_ownership"].to_numpy()
    for h in HOME_OWNERSHIP:
        out[f"home_{h}"] = (home == h).astype("float64")
    return out


def _credit_label_rows(applications: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Approved applications whose 12-month outcome is known; the score is made at application time."""
    outcomes = extras["credit_outcomes"][["application_id", "defaulted_12m"]].drop_duplicates(
        "application_id"
    )
    apps = applications.drop_duplicates("application_id")
    apps = apps[apps["decision"] == "approved"]
    rows = apps.merge(outcomes, on="application_id", how="inner", validate="one_to_one")
    rows = rows.drop(
        columns=[c for c in rows.columns if c.startswith("_") or c in ("decision", AVAILABLE_AT)]
    )
    rows["applied_at"] = pd.to_datetime(rows["applied_at"])
    rows[AS_OF] = rows["applied_at"]
    rows["defaulted_12m"] = rows["defaulted_12m"].astype("int64")
    return rows.sort_values("applied_at", kind="stable").reset_index(drop=True)


CREDIT_APPLICATION_RISK = FeatureView(
    name="credit_application_risk",
    version=1,
    description="Applicant finances and the loan asked for, scored at application time.",
    entity=(FeatureField("application_id", "int", "Application id.", ge=1),),
    request=(
        FeatureField("annual_income", "float", "Declared annual income.", ge=0),
        FeatureField(
            "employment_years", "float", "Years in current employment (may be missing).", ge=0
        ),
        FeatureField("debt_to_income", "float", "Monthly debt payments over monthly income.", ge=0),
        FeatureField("credit_history_years", "float", "Years since the first credit line.", ge=0),
        FeatureField("n_delinquencies_2y", "int", "Delinquencies in the last two years.", ge=0),
        FeatureField(
            "revolving_utilization", "float", "Revolving balance over limit (may be missing).", ge=0
        ),
        FeatureField("loan_amount", "float", "Amount asked for.", ge=0),
        FeatureField("loan_term_months", "int", "Term of the loan: 36 or 60 months.", ge=36, le=60),
        FeatureField("loan_purpose", "str", "Purpose of the loan."),
        FeatureField("home_ownership", "str", "rent, mortgage or own."),
    ),
    tables=(),
    feature_names=tuple(name for name, _ in CREDIT_FEATURES),
    transform=_credit_transform,
    label_rows=_credit_label_rows,
    label_sources=("credit_outcomes",),
)


# --------------------------------------------------------------------------- market (mdl-028)

MARKET_LATENESS = pd.Timedelta(hours=24)  # a day's row is normally in 18-24 h after its date
VOL_HALF_LIVES = (1, 2, 5, 10, 21, 63)
RETURN_HALF_LIVES = (5, 21)
SCALE_WINDOW = 22


def _ewm_vol(values: pd.DataFrame, halflife: float) -> pd.DataFrame:
    """Square root of the exponentially weighted mean square (missing days decay, add nothing)."""
    return np.sqrt((values**2).ewm(halflife=halflife, min_periods=5).mean())


def _instrument_vol_stats(market: pd.DataFrame) -> pd.DataFrame:
    market = market.assign(trade_date=pd.to_datetime(market["trade_date"]).dt.normalize())
    known = _known_at(market, market["trade_date"], MARKET_LATENESS)
    market = market.assign(_known=known.astype("int64").astype("float64"))
    dates = pd.DatetimeIndex(np.sort(market["trade_date"].unique()))
    on_time = market[known <= market["trade_date"] + MARKET_LATENESS]

    def pivot(column: str) -> pd.DataFrame:
        return on_time.pivot_table(
            index="trade_date", columns="instrument_id", values=column, aggfunc="last"
        ).reindex(dates)

    rv, ret, volume, known_m = (
        pivot("realized_vol"),
        pivot("daily_return"),
        pivot("volume"),
        pivot("_known"),
    )
    cols: dict[str, pd.DataFrame] = {}
    for hl in VOL_HALF_LIVES:
        cols[f"rv_ewm_{hl}"] = _ewm_vol(rv, hl)
    cols["rv_last"] = rv.where(rv.notna(), cols["rv_ewm_1"])
    cols["abs_return_last"] = ret.abs()
    for hl in RETURN_HALF_LIVES:
        cols[f"return_vol_ewm_{hl}"] = _ewm_vol(ret, hl)
    cols["rv_mean_22"] = rv.rolling(SCALE_WINDOW, min_periods=SCALE_WINDOW // 2).mean()
    cols["volume_ratio"] = volume / volume.ewm(halflife=21, min_periods=5).mean()
    market_rv = rv.mean(axis=1)
    cols["market_rv_ratio"] = pd.DataFrame(
        np.repeat(
            (market_rv / market_rv.rolling(SCALE_WINDOW, min_periods=5).mean()).to_numpy()[:, None],
            rv.shape[1],
            1,
        ),
        index=rv.index,
        columns=rv.columns,
    )
    # the market-wide ratio reads every instrument's row of the day: known once the last one is in
    market_known = np.repeat(known_m.max(axis=1).to_numpy()[:, None], known_m.shape[1], 1)
    available = np.fmax(_closed_at(known_m, MARKET_LATENESS), market_known)
    long = {name: frame.stack(future_stack=True) for name, frame in cols.items()}
    out = pd.DataFrame(long)
    out[AVAILABLE_AT] = available.stack(future_stack=True)
    out = out.dropna().rename_axis(["origin_date", "instrument_id"]).reset_index()
    out[AVAILABLE_AT] = pd.to_datetime(out[AVAILABLE_AT].astype("int64"))
    out["instrument_id"] = out["instrument_id"].astype("int64")
    return out


INSTRUMENT_VOL_STATS = FeatureTable(
    name="instrument_vol_stats",
    version=1,
    entity=("instrument_id",),
    event_time="origin_date",
    source="market_daily",
    ttl=pd.Timedelta(days=7),
    description="Exponentially weighted realised volatility, returns and volume per instrument and trading day.",
    fields=(
        FeatureField(
            "origin_date",
            "date",
            "The trading day the statistics are computed at (its close is known).",
        ),
        *(
            FeatureField(
                f"rv_ewm_{hl}",
                "float",
                f"EW root-mean-square realised vol, half-life {hl} days.",
                ge=0,
            )
            for hl in VOL_HALF_LIVES
        ),
        FeatureField(
            "rv_last", "float", "Realised vol of origin_date (EW vol if the day is missing).", ge=0
        ),
        FeatureField("abs_return_last", "float", "Absolute return of origin_date.", ge=0),
        *(
            FeatureField(
                f"return_vol_ewm_{hl}",
                "float",
                f"EW root-mean-square daily return, half-life {hl} days.",
                ge=0,
            )
            for hl in RETURN_HALF_LIVES
        ),
        FeatureField(
            "rv_mean_22",
            "float",
            "Mean realised vol of the last 22 trading days (label scale).",
            ge=1e-9,
        ),
        FeatureField("volume_ratio", "float", "Volume over its EW mean (half-life 21 days).", ge=0),
        FeatureField(
            "market_rv_ratio",
            "float",
            "Mean realised vol across instruments over its 22-day mean.",
            ge=0,
        ),
    ),
    compute=_instrument_vol_stats,
)

_VOL_RATIOS = (
    *(f"rv_ewm_{hl}" for hl in VOL_HALF_LIVES),
    "rv_last",
    "abs_return_last",
    *(f"return_vol_ewm_{hl}" for hl in RETURN_HALF_LIVES),
)


def _market_transform(raw: pd.DataFrame) -> pd.DataFrame:
    level = raw["rv_mean_22"].to_numpy()
    out = pd.DataFrame(index=raw.index)
    for name in _VOL_RATIOS:
        out[f"{name}_ratio"] = raw[name].to_numpy() / level
    out["log_rv_mean_22"] = np.log(level)
    out["volume_ratio"] = raw["volume_ratio"].to_numpy()
    out["market_rv_ratio"] = raw["market_rv_ratio"].to_numpy()
    return out


def _market_label_rows(market: pd.DataFrame) -> pd.DataFrame:
    """One row per instrument and trading day: the next trading day's realised vol, predicted after the close."""
    m = market[["instrument_id", "trade_date", "realized_vol"]].drop_duplicates(
        ["instrument_id", "trade_date"]
    )
    m = m.assign(trade_date=pd.to_datetime(m["trade_date"]).dt.normalize())
    dates = np.sort(m["trade_date"].unique())
    following = pd.Series(np.r_[dates[1:], np.datetime64("NaT")], index=dates)
    nxt = m.rename(columns={"trade_date": "next_date", "realized_vol": "next_day_vol"})
    rows = m[["instrument_id", "trade_date"]].assign(
        next_date=following.reindex(m["trade_date"]).to_numpy()
    )
    rows = rows.merge(nxt, on=["instrument_id", "next_date"], how="inner").dropna(
        subset=["next_day_vol"]
    )
    rows[AS_OF] = (
        rows["trade_date"] + MARKET_LATENESS
    )  # after the close of trade_date, before the next session
    rows["instrument_id"] = rows["instrument_id"].astype("int64")
    return rows.sort_values(["trade_date", "instrument_id"], kind="stable").reset_index(drop=True)


MARKET_VOLATILITY = FeatureView(
    name="market_volatility",
    version=1,
    description="Recent realised volatility, returns and volume per instrument; predicts next-day realised vol.",
    entity=(FeatureField("instrument_id", "int", "Instrument id.", ge=1),),
    request=(
        FeatureField("trade_date", "date", "The trading day just closed (the forecast origin)."),
    ),
    tables=(INSTRUMENT_VOL_STATS,),
    feature_names=(
        *(f"{n}_ratio" for n in _VOL_RATIOS),
        "log_rv_mean_22",
        "volume_ratio",
        "market_rv_ratio",
    ),
    transform=_market_transform,
    check=_origin_check("trade_date", "origin_date", "volatility statistics yet"),
    label_rows=_market_label_rows,
    scale_column="rv_mean_22",
)


# --------------------------------------------------------------------------- site operations (mdl-029)

OPS_SIGNALS = ("alarms", "near_misses", "maintenance_backlog", "overtime_hours", "staff_absent")
OPS_HALF_LIVES = (2, 5, 10, 20, 40)
# A day's log is normally in by 06:00 the next morning (24-30 h after the day starts); the
# prediction is made then, and a log that comes later is left out of the statistics.
OPS_LATENESS = pd.Timedelta(hours=30)
OPS_MIN_DAYS = 7
INCIDENT_WINDOW_DAYS = 7


def _site_ops_stats(ops: pd.DataFrame) -> pd.DataFrame:
    ops = ops.assign(date=pd.to_datetime(ops["date"]).dt.normalize())
    known = _known_at(ops, ops["date"], OPS_LATENESS)
    ops = ops.assign(_known=known.astype("int64").astype("float64"))
    on_time = ops[known <= ops["date"] + OPS_LATENESS]
    days = pd.date_range(ops["date"].min(), ops["date"].max(), freq="D")

    def pivot(column: str) -> pd.DataFrame:
        return on_time.pivot_table(
            index="date", columns="store_id", values=column, aggfunc="last"
        ).reindex(days)

    cols: dict[str, pd.DataFrame] = {}
    for signal in OPS_SIGNALS:
        values = pivot(signal)
        for hl in OPS_HALF_LIVES:
            cols[f"{signal}_ewm_{hl}"] = values.ewm(halflife=hl, min_periods=OPS_MIN_DAYS).mean()
    available = _closed_at(pivot("_known"), OPS_LATENESS)
    out = pd.DataFrame({name: frame.stack(future_stack=True) for name, frame in cols.items()})
    out[AVAILABLE_AT] = available.stack(future_stack=True)
    out = out.dropna().rename_axis(["log_date", "store_id"]).reset_index()
    out[AVAILABLE_AT] = pd.to_datetime(out[AVAILABLE_AT].astype("int64"))
    out["store_id"] = out["store_id"].astype("int64")
    return out


SITE_OPS_STATS = FeatureTable(
    name="site_ops_stats",
    version=1,
    entity=("store_id",),
    event_time="log_date",
    source="site_daily_ops",
    ttl=pd.Timedelta(days=7),
    description="Exponentially weighted daily safety signals per site (half-lives 2-40 days).",
    fields=(
        FeatureField(
            "log_date", "date", "The latest day whose operations log is in the statistics."
        ),
        *(
            FeatureField(
                f"{s}_ewm_{hl}",
                "float",
                f"EW mean of daily {s.replace('_', ' ')}, half-life {hl} days.",
                ge=0,
            )
            for s in OPS_SIGNALS
            for hl in OPS_HALF_LIVES
        ),
    ),
    compute=_site_ops_stats,
)

OPS_FEATURES = tuple(f"{s}_ewm_{hl}" for s in OPS_SIGNALS for hl in OPS_HALF_LIVES)


def _ops_transform(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.loc[:, list(OPS_FEATURES)].astype("float64")


def _ops_label_rows(ops: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per site and day: does an incident occur on any of the next seven days?"""
    rows = ops[["store_id", "date"]].drop_duplicates()
    rows = rows.assign(
        date=pd.to_datetime(rows["date"]).dt.normalize(), store_id=rows["store_id"].astype("int64")
    )
    last_day = rows["date"].max()
    rows = rows[
        rows["date"] + INCIDENT_WINDOW_DAYS * DAY <= last_day
    ]  # the whole window is observed
    incidents = extras["incidents"].drop_duplicates("incident_id")
    days = pd.date_range(rows["date"].min(), last_day + DAY, freq="D")
    hit = (
        incidents.assign(day=pd.to_datetime(incidents["occurred_at"]).dt.normalize(), one=1.0)
        .pivot_table(index="day", columns="store_id", values="one", aggfunc="max")
        .reindex(index=days, columns=sorted(rows["store_id"].unique()))
        .fillna(0.0)
    )
    # any incident on days d+1 .. d+7: a forward-looking rolling max, shifted by one day
    ahead = hit[::-1].rolling(INCIDENT_WINDOW_DAYS, min_periods=1).max()[::-1].shift(-1)
    label = (
        ahead.stack(future_stack=True)
        .rename("incident_7d")
        .rename_axis(["date", "store_id"])
        .reset_index()
    )
    rows = rows.merge(label, on=["date", "store_id"], how="left")
    rows["incident_7d"] = rows["incident_7d"].fillna(0.0).astype("int64")
    rows[AS_OF] = rows["date"] + OPS_LATENESS
    return rows.sort_values(["date", "store_id"], kind="stable").reset_index(drop=True)


SITE_INCIDENT_RISK = FeatureView(
    name="site_incident_risk",
    version=1,
    description="Smoothed daily safety signals per site; predicts an incident within the next seven days.",
    entity=(FeatureField("store_id", "int", "Site (store) id.", ge=1),),
    request=(FeatureField("date", "date", "The day whose operations log was just closed."),),
    tables=(SITE_OPS_STATS,),
    feature_names=OPS_FEATURES,
    transform=_ops_transform,
    check=_origin_check("date", "log_date", "operations statistics yet"),
    label_rows=_ops_label_rows,
    label_sources=("incidents",),
)
