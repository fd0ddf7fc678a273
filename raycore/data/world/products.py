"""Products, daily prices, promotions, competitor prices and product / region demand.

Per product p (category c, brand tier k, pack size z, launch week L_p):

    R0_p  = CAT_PRICE[c] * TIER_PRICE[k] * z**0.85 * exp(N(0, PRICE_DISPERSION))   launch list price
    b_p   = BASE_DEMAND_MEDIAN * CAT_DEMAND[c] * TIER_DEMAND[k] * z**-0.4
            * (R0_p / attribute price)**-0.5 * exp(a_p),  a_p ~ N(0, APPEAL_SIGMA)  units / store / week
    eps_p = -CAT_ELASTICITY[c] * exp(N(0, ELASTICITY_SPREAD))     own-price elasticity (truth)
    gam_p ~ U(0.3, 0.9)   cross elasticity to the competitor price index
    u_p   ~ U(0.15, 0.45) display uplift of a promotion; x PROMO_TYPE_UPLIFT[type]
    kap_p ~ U(0.8, 1.2)   season sensitivity;  g_p ~ N(0.02, 0.03) annual growth

Prices, day d (week t): the list price R_pd moves by exp(N(0.005, 0.08)) on days drawn with
rate PRICE_CHANGE_RATE; in promotion weeks (Bernoulli PROMO_RATE, PROMO_RATE_HOLIDAY in
ISO weeks 47-52) the price is R_pd * (1 - depth), depth in PROMO_DEPTHS.
Competitor j, week t (AR(1) deviation a, permanent jumps J, own promotions):

    log C_jpt = ln R0_p + COMP_FOLLOW * (ln Rbar_p,t-1 - ln R0_p) + delta_jp + J_jpt + a_jpt - promo_jpt * depth_jpt
    a_jpt = COMP_AR * a_jp,t-1 + N(0, COMP_SIGMA);  J jumps N(0, 0.05) w.p. 0.02 / week
    promo_jpt ~ Bernoulli(COMP_PROMO_RATE + COMP_PROMO_REACT * own promo_p,t-1 + 0.05 * holiday_t)

Demand (daily expected units, summed to weeks; n_stores = stores in the world):

    season_pt = (1 + A_c sin(2 pi woy / 52.18 + phi_c) + H_c * holiday(woy)) ** kap_p   (true seasonal index)
    mu_pd = n_stores * b_p * ramp(t - L_p) * season_pt * (1 + g_p)**(t / 52) * dow_d
            * (P_pd / R0_p)**eps_p * (1 + u_p * type_uplift * promo_pt) * (Cidx_pt / Cref_p)**gam_p
    ramp(a) = 1 - exp(-(a + 1) / RAMP_WEEKS);  units_pt ~ Poisson(sum_d mu_pd * exp(eta - s^2/2)),
    eta ~ N(0, DEMAND_NOISE_SIGMA)

Regional split: share_rpt = softmax_r(ln W_r + ln(1 + A_r sin(2 pi woy/52.18 + phi_r)) + omega_rp + nu_rpt),
W_r = base revenue of the region's stores (retail truth), omega ~ N(0, REGION_AFFINITY_SIGMA),
nu ~ N(0, REGION_SHARE_NOISE); units_rpt ~ Multinomial(units_pt, share_rpt).
Truth: expected units (with and without the promotion), the seasonal index, the
noise-free regional share, the daily base demand at the reference price, the
competitor's next-week conditional median price, and per product the elasticity
and the expected first-8-week units (given all latents, and given attributes only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.drift import NEW_CATEGORY, DriftSpec, active, record_drift
from raycore.data.world.mess import MessRates, make_messy

__all__ = [
    "CATEGORIES",
    "COMPETITOR_PRICES_MESS",
    "DEMAND_MESS",
    "PRICES_MESS",
    "PRODUCTS_MESS",
    "PROMOTIONS_MESS",
    "REGIONAL_MESS",
    "generate_products",
]

CATEGORIES = ("grocery", "home", "electronics", "apparel", "beauty", "toys")
_ALL_CATEGORIES = (
    *CATEGORIES,
    NEW_CATEGORY[("products", "category")],
)  # the last only through drift
CAT_PRICE = np.array([6.0, 35.0, 180.0, 40.0, 18.0, 25.0, 80.0])
CAT_DEMAND = np.array([1.6, 0.9, 0.5, 0.8, 1.0, 0.8, 0.7])
CAT_ELASTICITY = np.array([1.0, 1.6, 2.2, 1.8, 1.4, 1.7, 2.0])
CAT_SEASON_AMP = np.array([0.05, 0.15, 0.10, 0.25, 0.10, 0.10, 0.0])
CAT_SEASON_PHASE = np.array([0.0, 1.5, 3.0, 4.5, 2.0, 5.0, 0.0])
CAT_HOLIDAY = np.array([0.15, 0.25, 0.55, 0.30, 0.35, 0.90, 0.20])
CAT_SHARE = np.array([0.25, 0.18, 0.12, 0.18, 0.14, 0.13])
TIERS = ("value", "standard", "premium")
TIER_PRICE, TIER_DEMAND, TIER_SHARE = (
    np.array([0.7, 1.0, 1.6]),
    np.array([1.3, 1.0, 0.6]),
    np.array([0.3, 0.5, 0.2]),
)
PACK_SIZES, PACK_SHARE = np.array([1, 2, 4, 6, 12]), np.array([0.45, 0.2, 0.15, 0.1, 0.1])
BASE_DEMAND_MEDIAN, APPEAL_SIGMA, PRICE_DISPERSION, ELASTICITY_SPREAD = 12.0, 0.20, 0.15, 0.25
PRICE_CHANGE_RATE, PRICE_CHANGE_MU, PRICE_CHANGE_SIGMA = 1 / 45, 0.005, 0.08
PROMO_RATE, PROMO_RATE_HOLIDAY = 0.08, 0.18
PROMO_DEPTHS = np.array([0.10, 0.15, 0.20, 0.25, 0.30])
PROMO_TYPES, PROMO_TYPE_UPLIFT = ("tpr", "display", "feature"), np.array([0.0, 1.0, 1.6])
COMPETITORS = ("comp_a", "comp_b")
COMP_OFFSET_SIGMA, COMP_AR, COMP_SIGMA, COMP_JUMP_RATE, COMP_JUMP_SIGMA, COMP_FOLLOW = (
    0.06,
    0.85,
    0.02,
    0.02,
    0.05,
    0.5,
)
COMP_PROMO_RATE, COMP_PROMO_REACT, COMP_PROMO_DEPTH = 0.05, 0.15, (0.10, 0.25)
DEMAND_NOISE_SIGMA, RAMP_WEEKS = 0.14, 3.0
REGION_AFFINITY_SIGMA, REGION_SHARE_NOISE = 0.30, 0.06
DOW = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.25, 1.05]) / 1.0
PRELAUNCHED_SHARE = 0.35

PRODUCTS_MESS = MessRates(missing=0.01, unknown_category=0.005, late=0.01, duplicate=0.005)
PRICES_MESS = MessRates(missing=0.005, malformed=0.002, late=0.01, duplicate=0.005)
PROMOTIONS_MESS = MessRates(missing=0.01, unknown_category=0.01, late=0.02, duplicate=0.01)
COMPETITOR_PRICES_MESS = MessRates(missing=0.02, outlier=0.003, late=0.02, duplicate=0.01)
DEMAND_MESS = MessRates(missing=0.005, malformed=0.002, late=0.02, duplicate=0.005)
REGIONAL_MESS = MessRates(missing=0.005, late=0.01, duplicate=0.005)

_DAY_NS = 86400 * 10**9


def _stream(config: WorldConfig, name: str) -> np.random.Generator:
    return domain_rng(config, f"products/{name}")


def _catalog(
    config: WorldConfig, rng: np.random.Generator, drift: DriftSpec | None
) -> dict[str, np.ndarray]:
    """Product attributes and latent parameters (fixed-size draws only)."""
    n, n_weeks = config.size("n_products"), config.size("n_weeks")
    cat = rng.choice(len(CATEGORIES), n, p=CAT_SHARE)
    tier = rng.choice(len(TIERS), n, p=TIER_SHARE)
    pack = PACK_SIZES[rng.choice(len(PACK_SIZES), n, p=PACK_SHARE)]
    pre = rng.random(n) < PRELAUNCHED_SHARE
    launch_week = np.where(pre, -rng.integers(8, 156, n), rng.integers(4, max(n_weeks - 9, 5), n))
    u_new, z_price, z_appeal, z_el = (
        rng.random(n),
        rng.normal(size=n),
        rng.normal(size=n),
        rng.normal(size=n),
    )
    if d := active(drift, "products", "category"):
        launch_ns = pd.Timestamp(config.start).value + launch_week * 7 * _DAY_NS
        hit = d.after(launch_ns.astype("datetime64[ns]")) & (u_new < d.magnitude)
        cat = np.where(hit, len(CATEGORIES), cat)
    attr_price = CAT_PRICE[cat] * TIER_PRICE[tier] * pack**0.85
    price0 = attr_price * np.exp(PRICE_DISPERSION * z_price)
    attr_demand = (
        BASE_DEMAND_MEDIAN
        * CAT_DEMAND[cat]
        * TIER_DEMAND[tier]
        * pack**-0.4
        * (price0 / attr_price) ** -0.5
    )
    return {
        "category": cat,
        "tier": tier,
        "pack": pack,
        "launch_week": launch_week,
        "price0": price0,
        "unit_cost": price0 * rng.uniform(0.45, 0.7, n),
        "appeal": APPEAL_SIGMA * z_appeal,
        "attr_demand": attr_demand,
        "base": attr_demand * np.exp(APPEAL_SIGMA * z_appeal),
        "elasticity": -CAT_ELASTICITY[cat] * np.exp(ELASTICITY_SPREAD * z_el),
        "cross": rng.uniform(0.3, 0.9, n),
        "uplift": rng.uniform(0.15, 0.45, n),
        "kappa": rng.uniform(0.8, 1.2, n),
        "growth": rng.normal(0.02, 0.03, n),
        "comp_offset": rng.normal(0.0, COMP_OFFSET_SIGMA, (len(COMPETITORS), n)),
        "new_category": np.asarray(cat == len(CATEGORIES)),
    }


def _prices(
    config: WorldConfig,
    cat: dict[str, np.ndarray],
    rng: np.random.Generator,
    drift: DriftSpec | None,
) -> dict[str, np.ndarray]:
    n, n_weeks = len(cat["price0"]), config.size("n_weeks")
    n_days = n_weeks * 7
    days = pd.date_range(config.start, periods=n_days, freq="D")
    woy = config.weeks().isocalendar().week.to_numpy().astype(np.int64)
    change = rng.random((n, n_days)) < PRICE_CHANGE_RATE
    after_launch = (
        np.arange(n_days)[None, :] > cat["launch_week"][:, None] * 7
    )  # the list price starts at R0 on launch day
    step = rng.normal(PRICE_CHANGE_MU, PRICE_CHANGE_SIGMA, (n, n_days)) * change * after_launch
    list_price = cat["price0"][:, None] * np.exp(np.cumsum(step, axis=1))
    promo_p = np.where(woy >= 47, PROMO_RATE_HOLIDAY, PROMO_RATE)
    promo_w = rng.random((n, n_weeks)) < promo_p[None, :]
    depth_w = PROMO_DEPTHS[rng.integers(0, len(PROMO_DEPTHS), (n, n_weeks))] * promo_w
    ptype_w = rng.choice(len(PROMO_TYPES), (n, n_weeks), p=[0.4, 0.4, 0.2])
    drifted = np.zeros(n_days, dtype=bool)
    if d := active(drift, "product_prices_daily"):
        drifted = d.after(days)
        list_price = list_price * np.where(drifted, 1 + d.magnitude, 1.0)[None, :]
    list_price = np.where(list_price >= 2, np.floor(list_price) + 0.99, np.round(list_price, 2))
    price = np.round(list_price * (1 - np.repeat(depth_w, 7, axis=1)), 2)
    return {
        "list": list_price,
        "price": price,
        "promo": promo_w,
        "depth": depth_w,
        "ptype": ptype_w,
        "drifted": drifted,
    }


def _competitors(
    config: WorldConfig,
    cat: dict[str, np.ndarray],
    pr: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    n_comp, n = cat["comp_offset"].shape
    n_weeks = config.size("n_weeks")
    woy = config.weeks().isocalendar().week.to_numpy().astype(np.int64)
    holiday = (woy >= 47).astype(float)
    rbar = pr["list"].reshape(n, n_weeks, 7).mean(axis=2)
    rbar_prev = np.concatenate([rbar[:, :1], rbar[:, :-1]], axis=1)
    own_prev = np.concatenate([np.zeros((n, 1), dtype=bool), pr["promo"][:, :-1]], axis=1)
    ar = lfilter([1.0], [1.0, -COMP_AR], rng.normal(0.0, COMP_SIGMA, (n_comp, n, n_weeks)), axis=2)
    jumps = np.cumsum(
        rng.normal(0.0, COMP_JUMP_SIGMA, (n_comp, n, n_weeks))
        * (rng.random((n_comp, n, n_weeks)) < COMP_JUMP_RATE),
        axis=2,
    )
    p_promo = COMP_PROMO_RATE + COMP_PROMO_REACT * own_prev + 0.05 * holiday[None, :]
    promo = rng.random((n_comp, n, n_weeks)) < p_promo[None]
    depth = rng.uniform(*COMP_PROMO_DEPTH, (n_comp, n, n_weeks)) * promo
    anchor = np.log(cat["price0"])[:, None]
    level = (
        (anchor + COMP_FOLLOW * (np.log(rbar_prev) - anchor))[None]
        + cat["comp_offset"][:, :, None]
        + jumps
    )
    price = np.round(np.exp(level + ar) * (1 - depth), 2)
    # MAPE-oriented oracle for next week: the conditional median given everything known at t.
    p_next = (
        COMP_PROMO_RATE
        + COMP_PROMO_REACT * pr["promo"]
        + 0.05 * np.concatenate([holiday[1:], holiday[-1:]])[None, :]
    )
    median_next = np.exp(
        (anchor + COMP_FOLLOW * (np.log(rbar) - anchor))[None]
        + cat["comp_offset"][:, :, None]
        + jumps
        + COMP_AR * ar
    )
    oracle = np.where(
        p_next[None] > 0.5, median_next * (1 - np.mean(COMP_PROMO_DEPTH)), median_next
    )
    index = np.exp(np.log(price).mean(axis=0))
    ref = np.exp(np.log(cat["price0"]) + cat["comp_offset"].mean(axis=0))
    return {"price": price, "oracle_next": oracle, "index": index, "ref": ref}


def _demand(
    config: WorldConfig,
    cat: dict[str, np.ndarray],
    pr: dict[str, np.ndarray],
    comp: dict[str, np.ndarray],
    rng: np.random.Generator,
    drift: DriftSpec | None,
) -> dict[str, np.ndarray]:
    n, n_weeks = len(cat["price0"]), config.size("n_weeks")
    weeks = config.weeks()
    woy = weeks.isocalendar().week.to_numpy().astype(np.int64)
    t = np.arange(n_weeks)
    c = cat["category"]
    holiday = np.isin(woy, (48, 49, 50, 51)).astype(float)
    season = (
        1
        + CAT_SEASON_AMP[c][:, None]
        * np.sin(2 * np.pi * woy[None, :] / 52.18 + CAT_SEASON_PHASE[c][:, None])
        + CAT_HOLIDAY[c][:, None] * holiday[None, :]
    ) ** cat["kappa"][:, None]
    age = t[None, :] - cat["launch_week"][:, None]
    ramp = np.where(age >= 0, 1 - np.exp(-(age + 1) / RAMP_WEEKS), 0.0)
    trend = (1 + cat["growth"][:, None]) ** (t[None, :] / 52.0)
    weekly_base = config.size("n_stores") * cat["base"][:, None] * ramp * season * trend
    weekly_base *= (comp["index"] / comp["ref"][:, None]) ** cat["cross"][:, None]
    days = pd.date_range(config.start, periods=n_weeks * 7, freq="D")
    elasticity = np.repeat(cat["elasticity"][:, None], len(days), axis=1)
    drifted = np.zeros(len(days), dtype=bool)
    if d := active(drift, "product_demand_weekly"):
        drifted = d.after(days)
        elasticity = np.where(drifted[None, :], elasticity * (1 + d.magnitude), elasticity)
    dow = DOW / DOW.sum()
    base_daily = np.repeat(weekly_base, 7, axis=1) * np.tile(dow, n_weeks)[None, :]
    uplift = 1 + cat["uplift"][:, None] * PROMO_TYPE_UPLIFT[pr["ptype"]] * pr["promo"]
    mu_daily = (
        base_daily
        * (pr["price"] / cat["price0"][:, None]) ** elasticity
        * np.repeat(uplift, 7, axis=1)
    )
    mu_np_daily = base_daily * (pr["list"] / cat["price0"][:, None]) ** elasticity
    mu = mu_daily.reshape(n, n_weeks, 7).sum(axis=2)
    mu_np = mu_np_daily.reshape(n, n_weeks, 7).sum(axis=2)
    shock = np.exp(rng.normal(0.0, DEMAND_NOISE_SIGMA, (n_weeks, n)).T - DEMAND_NOISE_SIGMA**2 / 2)
    units = (
        _stream(config, "demand/units").poisson((mu * shock).T).T
    )  # time-major draw: drift-stable
    return {
        "season": season,
        "mu": mu,
        "mu_np": mu_np,
        "shock": shock,
        "units": units,
        "launched": age >= 0,
        "base_daily": base_daily,
        "elasticity": elasticity,
        "drifted_days": drifted,
        "drifted_weeks": drifted.reshape(n_weeks, 7).any(axis=1),
    }


def _regional(
    config: WorldConfig, world: World, dem: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    regions = world.truth["regions_truth"]
    stores = world.truth["stores_truth"]
    region_ids = regions["region_id"].to_numpy()
    weight = (
        stores.groupby("region_id")["base_revenue"]
        .sum()
        .reindex(region_ids, fill_value=1.0)
        .to_numpy()
    )
    woy = config.weeks().isocalendar().week.to_numpy().astype(np.int64)
    season = 1 + regions["season_amplitude"].to_numpy()[None, :] * np.sin(
        2 * np.pi * woy[:, None] / 52.18 + regions["season_phase"].to_numpy()[None, :]
    )  # (T, R)
    n_products = dem["units"].shape[0]
    omega = rng.normal(0.0, REGION_AFFINITY_SIGMA, (len(region_ids), n_products))
    nu = rng.normal(0.0, REGION_SHARE_NOISE, (len(woy), len(region_ids), n_products))
    logits = np.log(weight)[None, :, None] + np.log(season)[:, :, None] + omega[None]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    share = expected * np.exp(nu)
    share /= share.sum(axis=1, keepdims=True)
    counts = _stream(config, "demand/regional").multinomial(
        dem["units"].T, np.moveaxis(share, 1, 2)
    )  # (T, P, R)
    return region_ids, np.moveaxis(expected, 1, 2), counts


def generate_products(config: WorldConfig, world: World, *, drift: DriftSpec | None = None) -> None:
    """Add products, prices, promotions, competitor prices and demand tables (+ truth) to ``world``.

    Example:
        >>> generate_products(WorldConfig(), world)  # doctest: +SKIP  (after generate_retail)
    """
    rng = domain_rng(config, "products")
    cat = _catalog(config, rng, drift)
    pr = _prices(config, cat, rng, drift)
    comp = _competitors(config, cat, pr, rng)
    dem = _demand(config, cat, pr, comp, rng, drift)
    region_ids, expected_share, regional_units = _regional(config, world, dem, rng)
    n, n_weeks = len(cat["price0"]), config.size("n_weeks")
    weeks = config.weeks().to_numpy().astype("datetime64[ns]")
    start_ns = pd.Timestamp(config.start).value
    pid = np.arange(1, n + 1, dtype="int64")
    t_idx, p_idx = np.nonzero(dem["launched"].T)  # launched product-weeks, time-major

    launch = (start_ns + cat["launch_week"] * 7 * _DAY_NS).astype("datetime64[ns]")
    products = pd.DataFrame(
        {
            "product_id": pid,
            "sku": [f"SKU-{i:06d}" for i in pid],
            "category": np.asarray(_ALL_CATEGORIES, dtype=object)[cat["category"]],
            "brand_tier": np.asarray(TIERS, dtype=object)[cat["tier"]],
            "pack_size": cat["pack"].astype("int64"),
            "launch_date": launch,
            "initial_list_price": np.round(cat["price0"], 2),
            "unit_cost": np.round(cat["unit_cost"], 2),
        }
    )
    first8 = np.zeros(n)
    new = cat["launch_week"] >= 0
    for a in range(8):  # eight launch weeks, vectorised over products
        w = np.clip(cat["launch_week"] + a, 0, n_weeks - 1)
        first8 += np.where(
            new & (cat["launch_week"] + a < n_weeks), dem["mu"][np.arange(n), w], 0.0
        )
    products_truth = pd.DataFrame(
        {
            "product_id": pid,
            "elasticity": cat["elasticity"],
            "cross_elasticity": cat["cross"],
            "promo_uplift": cat["uplift"],
            "base_demand_per_store": cat["base"],
            "appeal": cat["appeal"],
            "season_sensitivity": cat["kappa"],
            "annual_growth": cat["growth"],
            "is_new_launch": new,
            "expected_units_first_8w": np.where(new, first8, np.nan),
            "expected_units_first_8w_given_attributes": np.where(
                new, first8 * np.exp(-cat["appeal"] + APPEAL_SIGMA**2 / 2), np.nan
            ),
            "drifted": cat["new_category"],
        }
    )

    day_launched = np.repeat(dem["launched"], 7, axis=1)
    dt_idx, dp_idx = np.nonzero(day_launched.T)
    dates = (
        pd.date_range(config.start, periods=n_weeks * 7, freq="D")
        .to_numpy()
        .astype("datetime64[ns]")
    )
    prices = pd.DataFrame(
        {
            "product_id": pid[dp_idx],
            "date": dates[dt_idx],
            "list_price": pr["list"][dp_idx, dt_idx],
            "price": pr["price"][dp_idx, dt_idx],
        }
    )
    prices_truth = pd.DataFrame(
        {
            "product_id": prices["product_id"],
            "date": prices["date"],
            "base_demand_at_reference": dem["base_daily"][dp_idx, dt_idx],
            "reference_price": cat["price0"][dp_idx],
            "elasticity": dem["elasticity"][dp_idx, dt_idx],
            "drifted": pr["drifted"][dt_idx] | dem["drifted_days"][dt_idx],
        }
    )
    for table in ("product_prices_daily", "product_demand_weekly", "products"):
        if d := active(drift, table):
            column = {
                "product_prices_daily": "price",
                "product_demand_weekly": "units",
                "products": "category",
            }[table]
            rows = {
                "products": int(cat["new_category"].sum()),
                "product_prices_daily": int(pr["drifted"][dt_idx].sum()),
            }
            record_drift(
                world,
                d,
                table=table,
                column=column,
                rows_affected=rows.get(table, int(dem["drifted_weeks"][t_idx].sum())),
            )

    promo_t, promo_p = np.nonzero((pr["promo"] & dem["launched"]).T)
    promotions = pd.DataFrame(
        {
            "promotion_id": np.arange(1, len(promo_t) + 1, dtype="int64"),
            "product_id": pid[promo_p],
            "start_date": weeks[promo_t],
            "end_date": weeks[promo_t] + np.timedelta64(6, "D"),
            "discount_pct": np.round(100 * pr["depth"][promo_p, promo_t], 1),
            "promo_type": np.asarray(PROMO_TYPES, dtype=object)[pr["ptype"][promo_p, promo_t]],
        }
    )
    n_comp = len(COMPETITORS)
    comp_rows = {
        "product_id": np.tile(pid[p_idx], n_comp),
        "competitor": np.repeat(np.asarray(COMPETITORS, dtype=object), len(t_idx)),
        "week_start": np.tile(weeks[t_idx], n_comp),
    }
    order = np.argsort(np.tile(t_idx, n_comp), kind="stable")
    competitor = (
        pd.DataFrame({**comp_rows, "price": comp["price"][:, p_idx, t_idx].ravel()})
        .iloc[order]
        .reset_index(drop=True)
    )
    competitor_truth = (
        pd.DataFrame(
            {**comp_rows, "oracle_next_price": comp["oracle_next"][:, p_idx, t_idx].ravel()}
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    week_price = pr["price"].reshape(n, n_weeks, 7).mean(axis=2)
    demand = pd.DataFrame(
        {
            "product_id": pid[p_idx],
            "week_start": weeks[t_idx],
            "units": dem["units"][p_idx, t_idx].astype("int64"),
            "revenue": np.round(dem["units"][p_idx, t_idx] * week_price[p_idx, t_idx], 2),
        }
    )
    demand_truth = pd.DataFrame(
        {
            "product_id": demand["product_id"],
            "week_start": demand["week_start"],
            "expected_units": dem["mu"][p_idx, t_idx],
            "expected_units_no_promo": dem["mu_np"][p_idx, t_idx],
            "demand_shock": dem["shock"][p_idx, t_idx],
            "seasonal_index": dem["season"][p_idx, t_idx],
            "on_promo": pr["promo"][p_idx, t_idx],
            "drifted": dem["drifted_weeks"][t_idx]
            | np.asarray(pr["drifted"].reshape(n_weeks, 7).any(axis=1))[t_idx],
        }
    )
    n_reg = len(region_ids)
    regional = pd.DataFrame(
        {
            "region_id": np.tile(region_ids.astype("int64"), len(t_idx)),
            "product_id": np.repeat(pid[p_idx], n_reg),
            "week_start": np.repeat(weeks[t_idx], n_reg),
            "units": regional_units[t_idx, p_idx].ravel().astype("int64"),
        }
    )
    regional_truth = regional[["region_id", "product_id", "week_start"]].assign(
        expected_share=expected_share[t_idx, p_idx].ravel()
    )

    world.tables["products"] = make_messy(
        products,
        config=config,
        table="products",
        rates=PRODUCTS_MESS,
        event_column="launch_date",
        base_lag=pd.Timedelta(days=-28),
        missing=["pack_size"],
        unknown=["category"],
    )
    world.tables["product_prices_daily"] = make_messy(
        prices,
        config=config,
        table="product_prices_daily",
        rates=PRICES_MESS,
        event_column="date",
        base_lag=pd.Timedelta(days=-1),
        missing=["price"],
        malformed=["price"],
    )
    world.tables["promotions"] = make_messy(
        promotions,
        config=config,
        table="promotions",
        rates=PROMOTIONS_MESS,
        event_column="start_date",
        base_lag=pd.Timedelta(days=-21),
        missing=["discount_pct"],
        unknown=["promo_type"],
    )
    world.tables["competitor_prices"] = make_messy(
        competitor,
        config=config,
        table="competitor_prices",
        rates=COMPETITOR_PRICES_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=2),
        missing=["price"],
        outlier=["price"],
    )
    world.tables["product_demand_weekly"] = make_messy(
        demand,
        config=config,
        table="product_demand_weekly",
        rates=DEMAND_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=7),
        missing=["units"],
        malformed=["units"],
    )
    world.tables["regional_demand_weekly"] = make_messy(
        regional,
        config=config,
        table="regional_demand_weekly",
        rates=REGIONAL_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=8),
        missing=["units"],
    )
    world.truth["products_truth"] = products_truth
    world.truth["product_prices_daily_truth"] = prices_truth
    world.truth["product_demand_weekly_truth"] = demand_truth
    world.truth["competitor_prices_truth"] = competitor_truth
    world.truth["regional_demand_weekly_truth"] = regional_truth
