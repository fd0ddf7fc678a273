"""Marketing: weekly media spend with adstock and saturation, campaigns, customer journeys.

Channels c in CHANNELS, regions r (weight w_r = share of store base revenue, retail truth), week t.

Spend (flighting: a channel is on in a week w.p. ON_SHARE[c], independently per region):

    spend_crt = BUDGET[c] * n_regions * w_r * on_crt * exp(N(0, SPEND_SIGMA))

Media mix (adstock, Hill saturation with shape 1, additive contributions):

    A_crt     = spend_crt + DECAY[c] * A_cr,t-1
    contrib   = BETA[c] * w_r * A_crt / (A_crt + HALF_SAT[c] * w_r)
    sales_rt  = BASE_SALES * w_r * season_t * (1.002)**t + sum_c contrib_crt
                + BASE_SALES * w_r * (COMMON_NOISE * z_t + SALES_NOISE * z_rt),  z ~ N(0, 1)
    season_t  = 1 + 0.12 sin(2 pi woy / 52.18) + 0.25 [ISO weeks 48-51]
    conversions_rt ~ Poisson(sales_rt / AVG_ORDER_VALUE)
    ROI_c = sum contrib_c / sum spend_c  (truth; the same curves are the response curves of channel
    optimisation: steady-state weekly response to a spend x is BETA w x/(1-DECAY) / (x/(1-DECAY) + HALF_SAT w))

Campaigns (channel, region, 1-6 weeks, offer, target segment; true creative quality q ~ N(0, 0.3)):

    mu = audience * BASE_RATE[c] * OFFER_MULT[offer] * SEGMENT_MULT[segment] * season
         * (1 - exp(-budget / (audience * COST_PER_REACH[c]))) * exp(q)
    conversions ~ Poisson(mu * Gamma(CAMPAIGN_K, 1 / CAMPAIGN_K));  creative_score = 5.5 + 5 (q + N(0, 0.12))

Journeys (customer, start, touches k_c ~ Poisson(TOUCH_RATE[c]), at least one):

    P(convert) = 1 - (1 - JOURNEY_BASE) * prod_c (1 - EFFECT[c]) ** k_c
    The true channel effect of a journey is the exact Shapley value of the channels in
    P(convert | channels S) - JOURNEY_BASE (64 subsets); ``channel_effects_truth.true_share``
    = sum over journeys of each channel's Shapley value / sum over all channels.
"""

from __future__ import annotations

from math import factorial

import numpy as np
import pandas as pd

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.customers import SEGMENTS
from raycore.data.world.mess import MessRates, make_messy

__all__ = [
    "CAMPAIGNS_MESS",
    "CHANNELS",
    "JOURNEYS_MESS",
    "MEDIA_SALES_MESS",
    "SPEND_MESS",
    "TOUCHPOINTS_MESS",
    "generate_marketing",
]

CHANNELS = ("search", "social", "display", "email", "video", "affiliate")
BUDGET = np.array(
    [4000.0, 7000.0, 12000.0, 3000.0, 12000.0, 4000.0]
)  # mean weekly spend when on, per average region
ON_SHARE = np.array([0.7, 0.6, 0.5, 0.7, 0.35, 0.55])
DECAY = np.array([0.25, 0.45, 0.55, 0.15, 0.70, 0.30])
HALF_SAT = np.array([14000.0, 12000.0, 15000.0, 2500.0, 30000.0, 5000.0])
BETA = np.array([60000.0, 30000.0, 14000.0, 9000.0, 45000.0, 12000.0])
BASE_SALES, SALES_NOISE, COMMON_NOISE, AVG_ORDER_VALUE, SPEND_SIGMA = (
    250_000.0,
    0.025,
    0.03,
    60.0,
    0.5,
)
OFFERS = ("none", "percent_off", "free_shipping", "bundle")
OFFER_MULT = np.array([1.0, 1.5, 1.25, 1.15])
SEGMENT_MULT = np.array([1.3, 1.1, 0.8, 0.6])
BASE_RATE = np.array([0.020, 0.008, 0.004, 0.015, 0.006, 0.010])
COST_PER_REACH = np.array([0.08, 0.05, 0.03, 0.01, 0.10, 0.04])
CAMPAIGN_K, CREATIVE_SIGMA, AUDIENCE_SIGMA = 15.0, 0.3, 0.5
TOUCH_RATE = np.array([0.9, 0.7, 1.0, 0.6, 0.4, 0.3])
EFFECT = np.array([0.060, 0.030, 0.012, 0.045, 0.035, 0.050])
JOURNEY_BASE = 0.01

SPEND_MESS = MessRates(missing=0.01, outlier=0.003, late=0.02, duplicate=0.005)
MEDIA_SALES_MESS = MessRates(missing=0.005, late=0.01, duplicate=0.005)
CAMPAIGNS_MESS = MessRates(missing=0.02, unknown_category=0.01, late=0.02, duplicate=0.005)
JOURNEYS_MESS = MessRates(missing=0.01, late=0.01, duplicate=0.005)
TOUCHPOINTS_MESS = MessRates(unknown_category=0.005, late=0.02, duplicate=0.01)


def _region_weights(world: World) -> tuple[np.ndarray, np.ndarray]:
    regions = world.tables["regions"]["region_id"].to_numpy()
    stores = world.truth["stores_truth"]
    revenue = (
        stores.groupby("region_id")["base_revenue"]
        .sum()
        .reindex(regions, fill_value=0.0)
        .to_numpy()
        + 1.0
    )
    return regions, revenue / revenue.sum()


def _media(config: WorldConfig, world: World, rng: np.random.Generator) -> tuple[pd.DataFrame, ...]:
    regions, w = _region_weights(world)
    n_r, n_c, weeks = len(regions), len(CHANNELS), config.weeks()
    n_t = len(weeks)
    woy = weeks.isocalendar().week.to_numpy().astype(np.int64)
    on = rng.random((n_t, n_c, n_r)) < ON_SHARE[None, :, None]
    spend = (
        BUDGET[None, :, None]
        * n_r
        * w[None, None, :]
        * on
        * np.exp(rng.normal(0, SPEND_SIGMA, (n_t, n_c, n_r)))
    )
    adstock = np.zeros_like(spend)
    for t in range(n_t):  # adstock recursion: loop over weeks, vectorised over channel x region
        adstock[t] = spend[t] + (DECAY[:, None] * adstock[t - 1] if t else 0.0)
    contrib = (
        BETA[None, :, None]
        * w[None, None, :]
        * adstock
        / (adstock + HALF_SAT[None, :, None] * w[None, None, :])
    )
    season = 1 + 0.12 * np.sin(2 * np.pi * woy / 52.18) + 0.25 * np.isin(woy, (48, 49, 50, 51))
    base = BASE_SALES * w[None, :] * season[:, None] * 1.002 ** np.arange(n_t)[:, None]
    expected = base + contrib.sum(axis=1)
    shock = COMMON_NOISE * rng.normal(0.0, 1.0, (n_t, 1)) + SALES_NOISE * rng.normal(
        0.0, 1.0, (n_t, n_r)
    )
    sales = expected + shock * BASE_SALES * w[None, :]
    conversions = rng.poisson(np.maximum(sales, 0) / AVG_ORDER_VALUE)
    t_idx, c_idx, r_idx = (
        a.ravel()
        for a in np.meshgrid(np.arange(n_t), np.arange(n_c), np.arange(n_r), indexing="ij")
    )
    wk = weeks.to_numpy()
    spend_frame = pd.DataFrame(
        {
            "region_id": regions[r_idx].astype("int64"),
            "channel": np.asarray(CHANNELS, dtype=object)[c_idx],
            "week_start": wk[t_idx],
            "spend": np.round(spend.ravel(), 2),
            "impressions": rng.poisson(spend.ravel() * 120).astype("int64"),
        }
    )
    spend_truth = spend_frame[["region_id", "channel", "week_start"]].assign(
        adstock=adstock.ravel(), contribution=contrib.ravel()
    )
    st_idx, sr_idx = (a.ravel() for a in np.meshgrid(np.arange(n_t), np.arange(n_r), indexing="ij"))
    sales_frame = pd.DataFrame(
        {
            "region_id": regions[sr_idx].astype("int64"),
            "week_start": wk[st_idx],
            "sales": np.round(sales.ravel(), 2),
            "conversions": conversions.ravel().astype("int64"),
        }
    )
    sales_truth = sales_frame[["region_id", "week_start"]].assign(
        expected_sales=expected.ravel(), baseline_sales=base.ravel()
    )
    roi = contrib.sum(axis=(0, 2)) / spend.sum(axis=(0, 2))
    channels = pd.DataFrame(
        {
            "channel": np.asarray(CHANNELS, dtype=object),
            "adstock_decay": DECAY,
            "half_saturation_per_region_weight": HALF_SAT,
            "beta_per_region_weight": BETA,
            "roi": roi,
        }
    )
    return spend_frame, spend_truth, sales_frame, sales_truth, channels


def _campaigns(
    config: WorldConfig, world: World, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    regions, w = _region_weights(world)
    n, n_weeks = config.size("n_campaigns"), config.size("n_weeks")
    ch = rng.integers(0, len(CHANNELS), n)
    offer = rng.choice(len(OFFERS), n, p=[0.3, 0.3, 0.2, 0.2])
    seg = rng.integers(0, len(SEGMENTS), n)
    reg = rng.integers(0, len(regions), n)
    start_week = np.sort(rng.integers(0, n_weeks - 6, n))
    duration = rng.integers(1, 7, n)
    audience = np.round(
        np.exp(rng.normal(np.log(60_000), AUDIENCE_SIGMA, n)) * w[reg] * len(regions)
    )
    budget = np.round(
        audience * COST_PER_REACH[ch] * np.exp(rng.normal(0, 0.6, n)) * duration / 3, 2
    )
    quality = rng.normal(0.0, CREATIVE_SIGMA, n)
    score = np.round(np.clip(5.5 + 5 * (quality + rng.normal(0, 0.12, n)), 0, 10), 1)
    woy = config.weeks().isocalendar().week.to_numpy()[start_week]
    season = 1 + 0.25 * np.isin(woy, (47, 48, 49, 50, 51))
    mu = (
        audience
        * BASE_RATE[ch]
        * OFFER_MULT[offer]
        * SEGMENT_MULT[seg]
        * season
        * (1 - np.exp(-budget / (audience * COST_PER_REACH[ch])))
        * np.exp(quality)
    )
    conversions = rng.poisson(mu * rng.gamma(CAMPAIGN_K, 1 / CAMPAIGN_K, n))
    start = config.weeks().to_numpy()[start_week]
    cid = np.arange(1, n + 1, dtype="int64")
    frame = pd.DataFrame(
        {
            "campaign_id": cid,
            "channel": np.asarray(CHANNELS, dtype=object)[ch],
            "region_id": regions[reg].astype("int64"),
            "start_date": start,
            "end_date": start + (duration * 7 - 1).astype("timedelta64[D]"),
            "budget": budget,
            "audience_size": audience.astype("int64"),
            "offer_type": np.asarray(OFFERS, dtype=object)[offer],
            "target_segment": np.asarray(SEGMENTS, dtype=object)[seg],
            "creative_score": score,
            "conversions": conversions.astype("int64"),
        }
    )
    truth = pd.DataFrame(
        {"campaign_id": cid, "expected_conversions": mu, "creative_quality": quality}
    )
    return frame, truth


def _shapley_weights(n: int) -> np.ndarray:
    return np.array([factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)])


def _journeys(
    config: WorldConfig, world: World, rng: np.random.Generator
) -> tuple[pd.DataFrame, ...]:
    n, n_c = config.size("n_journeys"), len(CHANNELS)
    customers = world.truth["customers_truth"]["customer_id"].to_numpy()
    n_days = config.size("n_weeks") * 7
    touches = rng.poisson(TOUCH_RATE[None, :], (n, n_c))
    empty = touches.sum(axis=1) == 0
    touches[empty, rng.integers(0, n_c, int(empty.sum()))] = 1
    log_keep = touches @ np.log1p(-EFFECT)
    p = 1 - (1 - JOURNEY_BASE) * np.exp(log_keep)
    converted = rng.random(n) < p
    # exact Shapley values of P(convert | channel subset) - base, over all 2^6 subsets
    masks = (np.arange(2**n_c)[:, None] >> np.arange(n_c)[None, :]) & 1  # (64, C)
    value = 1 - (1 - JOURNEY_BASE) * np.exp((touches * np.log1p(-EFFECT)) @ masks.T)  # (n, 64)
    weights = _shapley_weights(n_c)
    shapley = np.zeros((n, n_c))
    size = masks.sum(axis=1)
    for c in range(n_c):  # loop over channels and subsets (64), vectorised over journeys
        without = np.flatnonzero(masks[:, c] == 0)
        with_c = without + 2**c
        shapley[:, c] = (value[:, with_c] - value[:, without]) @ weights[size[without]]
    start_day = np.sort(rng.uniform(0, n_days - 30, n))
    span = rng.uniform(1, 30, n)
    jid = np.arange(1, n + 1, dtype="int64")
    start_ns = pd.Timestamp(config.start).value + (start_day * 86400).astype(np.int64) * 10**9
    end_ns = start_ns + (span * 86400).astype(np.int64) * 10**9
    journeys = pd.DataFrame(
        {
            "journey_id": jid,
            "customer_id": customers[rng.integers(0, len(customers), n)].astype("int64"),
            "started_at": start_ns.astype("datetime64[ns]"),
            "ended_at": end_ns.astype("datetime64[ns]"),
            "converted": converted.astype("int8"),
            "conversion_value": np.where(
                converted, np.round(np.exp(rng.normal(np.log(70), 0.5, n)), 2), 0.0
            ),
        }
    )
    j_idx = np.repeat(np.arange(n), touches.sum(axis=1))
    t_ch = np.repeat(np.tile(np.arange(n_c), n), touches.ravel())
    touched_ns = (
        start_ns[j_idx] + (rng.random(len(j_idx)) * span[j_idx] * 86400).astype(np.int64) * 10**9
    )
    order = np.lexsort((touched_ns, j_idx))
    touchpoints = pd.DataFrame(
        {
            "touchpoint_id": np.arange(1, len(j_idx) + 1, dtype="int64"),
            "journey_id": jid[j_idx[order]],
            "channel": np.asarray(CHANNELS, dtype=object)[t_ch[order]],
            "touched_at": touched_ns[order].astype("datetime64[ns]"),
        }
    )
    journeys_truth = pd.DataFrame(
        {
            "journey_id": jid,
            "conversion_probability": p,
            **{f"shapley_{c}": shapley[:, k] for k, c in enumerate(CHANNELS)},
        }
    )
    share = shapley.sum(axis=0) / shapley.sum()
    effects = pd.DataFrame(
        {"channel": np.asarray(CHANNELS, dtype=object), "touch_effect": EFFECT, "true_share": share}
    )
    return journeys, touchpoints, journeys_truth, effects


def generate_marketing(config: WorldConfig, world: World) -> None:
    """Add media spend, media sales, campaigns, journeys and touchpoints (+ truth) to ``world``.

    Example:
        >>> generate_marketing(WorldConfig(), world)  # doctest: +SKIP  (after retail and customers)
    """
    rng = domain_rng(config, "marketing")
    spend, spend_truth, sales, sales_truth, channels = _media(config, world, rng)
    campaigns, campaigns_truth = _campaigns(config, world, rng)
    journeys, touchpoints, journeys_truth, effects = _journeys(config, world, rng)
    t = world.tables
    t["marketing_spend_weekly"] = make_messy(
        spend,
        config=config,
        table="marketing_spend_weekly",
        rates=SPEND_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=9),
        missing=["spend"],
        outlier=["spend"],
    )
    t["media_sales_weekly"] = make_messy(
        sales,
        config=config,
        table="media_sales_weekly",
        rates=MEDIA_SALES_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=8),
        missing=["sales"],
    )
    t["campaigns"] = make_messy(
        campaigns,
        config=config,
        table="campaigns",
        rates=CAMPAIGNS_MESS,
        event_column="end_date",
        base_lag=pd.Timedelta(days=3),
        missing=["creative_score"],
        unknown=["offer_type"],
    )
    t["journeys"] = make_messy(
        journeys,
        config=config,
        table="journeys",
        rates=JOURNEYS_MESS,
        event_column="ended_at",
        base_lag=pd.Timedelta(hours=2),
        missing=["conversion_value"],
    )
    t["touchpoints"] = make_messy(
        touchpoints,
        config=config,
        table="touchpoints",
        rates=TOUCHPOINTS_MESS,
        event_column="touched_at",
        base_lag=pd.Timedelta(minutes=30),
        unknown=["channel"],
    )
    world.truth["marketing_spend_weekly_truth"] = spend_truth
    world.truth["media_sales_weekly_truth"] = sales_truth
    world.truth["channel_effects_truth"] = channels.merge(effects, on="channel")
    world.truth["campaigns_truth"] = campaigns_truth
    world.truth["journeys_truth"] = journeys_truth
