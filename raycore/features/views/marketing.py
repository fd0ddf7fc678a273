"""Feature views of the marketing models: journey attribution, campaign performance, media mix.

``journey_touches`` (mdl-013): feature table ``journey_touch_counts`` (source
``touchpoints``) holds, after every touch of a journey, the journey's touches
so far per channel, available once every one of those touches has arrived. A
journey is attributed four weeks after it ended (when even late touches are in); the label is
whether it converted. The attribution evaluator removes channels from these
counts to compute each channel's Shapley value.

``campaign_plan`` (mdl-015): everything is in the campaign plan (the request):
channel, region, dates, budget, audience, offer, target segment and the
creative pre-test score. The label is the campaign's conversions, normalised
by its audience (``scale_column``): the model learns a conversion rate.

``media_mix_weekly`` (mdl-014, mdl-030): one row per region and week with the
region's spend per channel in that week and the ``SPEND_LAGS`` weeks before
(the spend plan and its history: what a planner has in hand), plus the
calendar. Adstock and saturation are fitted by the estimator
(``raycore.models.custom.marketing``), not here: their parameters are learnt.
Spend rows with a missing or broken amount (a few are exports many times too
large) are repaired from their impressions at the median cost per impression
of the other rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView

__all__ = [
    "CAMPAIGN_PLAN",
    "CHANNELS",
    "JOURNEY_TOUCHES",
    "JOURNEY_TOUCH_COUNTS",
    "MEDIA_MIX_WEEKLY",
    "SPEND_LAGS",
    "spend_column",
    "touch_column",
]

CHANNELS = ("search", "social", "display", "email", "video", "affiliate")
DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)
WEEKS_PER_YEAR = 52.18
EPOCH = pd.Timestamp("2000-01-03")  # a Monday: the origin of the trend


# Journeys are attributed four weeks after they end: touches arrive up to three weeks late.
ATTRIBUTION_DELAY = pd.Timedelta(days=28)


def touch_column(channel: str) -> str:
    return f"touches_{channel}"


def spend_column(channel: str, lag: int) -> str:
    return f"spend_{channel}_lag_{lag}"


def _calendar(weeks: pd.Series) -> dict[str, np.ndarray]:
    woy = weeks.dt.isocalendar().week.to_numpy().astype("float64")
    angle = 2.0 * np.pi * woy / WEEKS_PER_YEAR
    return {
        "season_sin": np.sin(angle),
        "season_cos": np.cos(angle),
        "holiday_peak": np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64"),
        "trend_years": ((weeks - EPOCH).dt.days.to_numpy() / 7.0 / WEEKS_PER_YEAR).astype(
            "float64"
        ),
    }


# --------------------------------------------------------------------------- journeys (mdl-013)


def _journey_touch_counts(touches: pd.DataFrame) -> pd.DataFrame:
    t = touches.drop_duplicates("touchpoint_id")
    t = t[t["channel"].isin(CHANNELS)].assign(touched_at=pd.to_datetime(t["touched_at"]))
    t = t.sort_values(["journey_id", "touched_at", "touchpoint_id"], kind="stable").reset_index(
        drop=True
    )
    onehot = pd.DataFrame({touch_column(c): (t["channel"] == c).astype("int64") for c in CHANNELS})
    counts = onehot.groupby(t["journey_id"]).cumsum()
    if AVAILABLE_AT in t.columns:
        arrived = pd.to_datetime(t[AVAILABLE_AT]).fillna(t["touched_at"])
    else:
        arrived = t["touched_at"]
    out = counts.assign(
        journey_id=t["journey_id"].astype("int64"),
        last_touch_at=t["touched_at"],
        # the counts after a touch are known once it and every earlier touch have arrived
        **{AVAILABLE_AT: arrived.groupby(t["journey_id"]).cummax()},
    )
    return out


JOURNEY_TOUCH_COUNTS = FeatureTable(
    name="journey_touch_counts",
    version=1,
    entity=("journey_id",),
    event_time="last_touch_at",
    source="touchpoints",
    description="Touches of a journey so far, per channel, after each of its touches.",
    fields=(
        FeatureField("last_touch_at", "date", "Time of the journey's latest touch in the counts."),
        *(FeatureField(touch_column(c), "int", f"Touches by {c} so far.", ge=0) for c in CHANNELS),
    ),
    compute=_journey_touch_counts,
)


def _journey_transform(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {touch_column(c): raw[touch_column(c)].astype("float64") for c in CHANNELS}, index=raw.index
    )


def _journey_label_rows(journeys: pd.DataFrame) -> pd.DataFrame:
    """One row per ended journey, attributed ``ATTRIBUTION_DELAY`` after its end, when its touches are in."""
    rows = journeys[["journey_id", "ended_at", "converted"]].drop_duplicates("journey_id")
    rows = rows.assign(
        journey_id=rows["journey_id"].astype("int64"),
        ended_at=pd.to_datetime(rows["ended_at"]),
        converted=rows["converted"].astype("int64"),
    )
    rows[AS_OF] = rows["ended_at"] + ATTRIBUTION_DELAY
    return rows.sort_values("ended_at", kind="stable").reset_index(drop=True)


JOURNEY_TOUCHES = FeatureView(
    name="journey_touches",
    version=1,
    description="Touches per marketing channel of a customer journey; predicts its conversion.",
    entity=(FeatureField("journey_id", "int", "Journey id.", ge=1),),
    request=(),
    tables=(JOURNEY_TOUCH_COUNTS,),
    feature_names=tuple(touch_column(c) for c in CHANNELS),
    transform=_journey_transform,
    label_rows=_journey_label_rows,
)


# --------------------------------------------------------------------------- campaigns (mdl-015)

OFFERS = ("none", "percent_off", "free_shipping", "bundle")
SEGMENTS = ("value_seeker", "loyal_regular", "premium", "occasional")
CAMPAIGN_FEATURES = (
    "log_budget_per_reach",
    "log_budget",
    "log_audience",
    "duration_weeks",
    "season_sin",
    "season_cos",
    "holiday_season",
    "creative_score",
    *(f"channel_{c}" for c in CHANNELS),
    *(f"offer_{o}" for o in OFFERS),
    *(f"segment_{s}" for s in SEGMENTS),
)


def _campaign_transform(raw: pd.DataFrame) -> pd.DataFrame:
    budget = np.maximum(raw["budget"].to_numpy(), 0.01)
    audience = np.maximum(raw["audience_size"].to_numpy(dtype="float64"), 1.0)
    start = raw["start_date"]
    woy = start.dt.isocalendar().week.to_numpy().astype("float64")
    angle = 2.0 * np.pi * woy / WEEKS_PER_YEAR
    out = pd.DataFrame(index=raw.index)
    out["log_budget_per_reach"] = np.log(budget / audience)
    out["log_budget"] = np.log(budget)
    out["log_audience"] = np.log(audience)
    out["duration_weeks"] = ((raw["end_date"] - start).dt.days.to_numpy() + 1) / 7.0
    out["season_sin"] = np.sin(angle)
    out["season_cos"] = np.cos(angle)
    out["holiday_season"] = np.isin(woy, (47, *HOLIDAY_PEAK_WEEKS)).astype("float64")
    out["creative_score"] = raw["creative_score"].to_numpy()  # NaN when the creative was not scored
    for name, column, values in (
        ("channel", "channel", CHANNELS),
        ("offer", "offer_type", OFFERS),
        ("segment", "target_segment", SEGMENTS),
    ):
        col = raw[column].to_numpy()
        for v in values:
            out[f"{name}_{v}"] = (col == v).astype("float64")
    return out


def _campaign_check(raw: pd.DataFrame) -> pd.Series:
    ok = (raw["end_date"] >= raw["start_date"]).to_numpy() & (raw["audience_size"].to_numpy() >= 1)
    reason = [
        "" if good else "end_date must not be before start_date and audience_size must be >= 1"
        for good in ok
    ]
    return pd.Series(reason, index=raw.index, dtype=object)


def _campaign_label_rows(campaigns: pd.DataFrame) -> pd.DataFrame:
    """One row per campaign, predicted when it is planned (its start)."""
    keep = ["campaign_id", *(f.name for f in _CAMPAIGN_REQUEST), "conversions"]
    rows = campaigns.drop_duplicates("campaign_id")[keep].copy()
    rows["start_date"] = pd.to_datetime(rows["start_date"])
    rows["end_date"] = pd.to_datetime(rows["end_date"])
    rows[AS_OF] = rows["start_date"]
    rows["conversions"] = rows["conversions"].astype("float64")
    return rows.sort_values(["start_date", "campaign_id"], kind="stable").reset_index(drop=True)


_CAMPAIGN_REQUEST = (
    FeatureField("channel", "str", "Media channel."),
    FeatureField("region_id", "int", "Region targeted.", ge=1),
    FeatureField("start_date", "date", "First day (a Monday)."),
    FeatureField("end_date", "date", "Last day."),
    FeatureField("budget", "float", "Budget in currency units.", ge=0),
    FeatureField("audience_size", "int", "People the campaign can reach.", ge=1),
    FeatureField("offer_type", "str", "none, percent_off, free_shipping or bundle."),
    FeatureField("target_segment", "str", "Customer segment targeted."),
    FeatureField(
        "creative_score", "float", "Creative pre-test score 0-10 (may be missing).", ge=0, le=10
    ),
)

CAMPAIGN_PLAN = FeatureView(
    name="campaign_plan",
    version=1,
    description="A campaign's plan (channel, budget, audience, offer, segment, creative); predicts conversions.",
    entity=(FeatureField("campaign_id", "int", "Campaign id.", ge=1),),
    request=_CAMPAIGN_REQUEST,
    tables=(),
    feature_names=CAMPAIGN_FEATURES,
    transform=_campaign_transform,
    check=_campaign_check,
    label_rows=_campaign_label_rows,
    scale_column="audience_size",
)


# --------------------------------------------------------------------------- media mix (mdl-014, mdl-030)

SPEND_LAGS = 12  # weeks of spend history before the week itself (adstock carry-over)
SPEND_COLUMNS = tuple(spend_column(c, lag) for c in CHANNELS for lag in range(SPEND_LAGS + 1))
MEDIA_CALENDAR = ("season_sin", "season_cos", "holiday_peak", "trend_years")
# A spend amount this many times what its impressions were bought for is a broken export.
SPEND_OUTLIER_FACTOR = 3.0


def _media_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(_calendar(raw["week_start"]), index=raw.index)
    out.insert(0, "region_id", raw["region_id"].astype("float64"))
    for name in SPEND_COLUMNS:
        out[name] = raw[name].astype("float64")
    return out


def _clean_spend(spend: pd.DataFrame) -> pd.DataFrame:
    """Spend per row, repaired from impressions where it is missing or far above what they cost."""
    s = spend.drop_duplicates(["region_id", "channel", "week_start"])
    s = s[s["channel"].isin(CHANNELS)]
    amount = s["spend"].to_numpy(dtype="float64")
    impressions = s["impressions"].to_numpy(dtype="float64")
    priced = (amount > 0) & (impressions > 0)
    cost_per_impression = (
        float(np.median(amount[priced] / impressions[priced])) if priced.any() else 0.0
    )
    implied = impressions * cost_per_impression
    broken = np.isnan(amount) | (amount > SPEND_OUTLIER_FACTOR * implied + 1.0)
    return s.assign(
        spend=np.where(broken, implied, amount), week_start=pd.to_datetime(s["week_start"])
    )


def _media_label_rows(sales: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per region and week with sales, conversions and the spend of that week and the weeks before."""
    spend = _clean_spend(extras["marketing_spend_weekly"])
    weeks = pd.date_range(spend["week_start"].min(), spend["week_start"].max(), freq="7D")
    wide = spend.pivot_table(
        index="week_start", columns=["channel", "region_id"], values="spend", aggfunc="last"
    )
    lagged = {}
    for c in CHANNELS:
        frame = (
            wide[c].reindex(weeks)
            if c in wide.columns.get_level_values(0)
            else pd.DataFrame(index=weeks)
        )
        for lag in range(SPEND_LAGS + 1):
            lagged[spend_column(c, lag)] = frame.shift(lag).stack(future_stack=True)
    history = pd.DataFrame(lagged).rename_axis(["week_start", "region_id"]).reset_index()
    rows = sales[["region_id", "week_start", "sales", "conversions"]].drop_duplicates(
        ["region_id", "week_start"]
    )
    rows = rows.assign(
        week_start=pd.to_datetime(rows["week_start"]), region_id=rows["region_id"].astype("int64")
    )
    rows = rows.merge(
        history.assign(region_id=history["region_id"].astype("int64")),
        on=["region_id", "week_start"],
    )
    # Weeks whose full spend history is unknown (the first SPEND_LAGS weeks) or without sales are left out.
    rows = rows.dropna(subset=["sales", *SPEND_COLUMNS])
    rows["conversions"] = rows["conversions"].astype("float64")
    rows[AS_OF] = rows["week_start"] + WEEK
    return rows.sort_values(["week_start", "region_id"], kind="stable").reset_index(drop=True)


MEDIA_MIX_WEEKLY = FeatureView(
    name="media_mix_weekly",
    version=1,
    description="A region's weekly media spend per channel with its recent history, and the calendar.",
    entity=(FeatureField("region_id", "int", "Region id.", ge=1),),
    request=(
        FeatureField("week_start", "date", "Monday of the week."),
        *(
            FeatureField(
                spend_column(c, lag),
                "float",
                f"Spend on {c} {lag} week(s) before week_start (0: that week).",
                ge=0,
            )
            for c in CHANNELS
            for lag in range(SPEND_LAGS + 1)
        ),
    ),
    tables=(),
    feature_names=("region_id", *MEDIA_CALENDAR, *SPEND_COLUMNS),
    transform=_media_transform,
    label_rows=_media_label_rows,
    label_sources=("marketing_spend_weekly",),
)
