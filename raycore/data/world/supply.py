"""Suppliers, purchase orders, production lines and batches, and delivery runs.

Suppliers (category c, country with distance d_km, latent quarterly risk tier r_q in {0,1,2}):

    r_0 ~ Categorical(TIER_START);  r_q+1 | r_q ~ TIER_TRANSITION[r_q]           (Markov, quarterly)
    financial_score_q = 72 - 14 r_q + N(0, 14);  days_payable_q = 38 + 11 r_q + N(0, 14)
    assessed risk_tier_q = r_q, or another tier w.p. AUDITOR_ERROR                 (the label)

Purchase orders (one per product every PO_INTERVAL_WEEKS weeks, from the product's supplier):

    delay_mean = TIER_DELAY[r_q] + o_s + PEAK_DELAY * [ISO week >= 47]
                 + QTY_COEF * ln(qty / median qty) + DIST_COEF * d_km / 1000,   o_s ~ N(0, 0.5)
    delay_days = round(delay_mean + N(0, DELAY_NOISE));  lead = 5 + round(d_km / 400) days
    (oracle: expected_delay_days = delay_mean, MAE-optimal prediction round(delay_mean))

Production line l, week t (maintenance ~ Bernoulli(MAINTENANCE_RATE), m_lt = weeks since):

    ln rate_lt = b_l + AGE_COEF * age_years + HUMIDITY_COEF * (h_t - 55) / 10
                 + MAINT_COEF * min(m_lt, 20) / 10 + SUPPLIER_COEF * mean tier of suppliers + z_lt
    z_lt = LINE_AR z_l,t-1 + e_lt, e_lt ~ N(0, LINE_NOISE);  units_lt = capacity_l * U(0.85, 1.05) * (1 - downtime / 80),  capacity ~ U(4000, 10000), b_l ~ N(ln 4, LINE_BASE_SIGMA)
    defects_lt ~ Poisson(units_lt * rate_lt / 1000 * Gamma(DEFECT_K, 1 / DEFECT_K))   per 1,000 units
    (truth: defect_rate_per_1000 = rate_lt, in hindsight; expected_defect_rate_per_1000_ex_ante =
     exp(ln rate_lt - e_lt + LINE_NOISE**2 / 2) = E[rate_lt | z_l,t-1 and week t's covariates], the
     Poisson-deviance-optimal estimate before the week's report: see oracles.py)

Batches (BATCHES_PER_LINE_WEEK per line-week):

    logit p = BATCH_INTERCEPT + 0.9 (ln rate_lt - mean) + 1.5 ((temp - 72) / 4)**2 + 1.6 [speed > 1.1]
              + 0.6 [night] - 0.3 experience_years / 2 + 0.6 tier(material supplier)
              + 2.0 max(moisture - 12, 0) + N(0, BATCH_NOISE);   defective ~ Bernoulli(p)

Delivery runs (depots, runs, stops) are drawn from this domain's stream by ``logistics.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.logistics import RUNS_MESS, STOPS_MESS, delivery_tables
from raycore.data.world.mess import MessRates, make_messy
from raycore.data.world.oracles import ex_ante_defect_rate
from raycore.data.world.products import CATEGORIES

__all__ = [
    "BATCHES_MESS",
    "LINE_WEEKLY_MESS",
    "PURCHASE_ORDERS_MESS",
    "SUPPLIERS_MESS",
    "TIERS",
    "generate_supply",
]

TIERS = ("low", "medium", "high")
TIER_START = np.array([0.5, 0.3, 0.2])
TIER_TRANSITION = np.array([[0.90, 0.08, 0.02], [0.10, 0.80, 0.10], [0.03, 0.12, 0.85]])
AUDITOR_ERROR = 0.07
COUNTRIES = ("DE", "PL", "IT", "TR", "CN", "VN", "MX", "US")
COUNTRY_KM = np.array([300.0, 900.0, 1100.0, 2500.0, 8500.0, 9500.0, 9000.0, 7000.0])
TIER_DELAY = np.array([0.2, 1.6, 4.0])
PEAK_DELAY, QTY_COEF, DIST_COEF, DELAY_NOISE = 1.0, 0.5, 0.15, 0.95
PO_INTERVAL_WEEKS = 2
DC_STORES = 400  # stores one distribution centre (and one purchase order) serves
PLANTS = ("plant_north", "plant_south", "plant_east")
LINE_TYPES = ("assembly", "filling", "packaging", "moulding")
AGE_COEF, HUMIDITY_COEF, MAINT_COEF, SUPPLIER_COEF, LINE_NOISE, LINE_BASE_SIGMA = (
    0.04,
    0.25,
    0.35,
    0.25,
    0.12,
    0.15,
)
LINE_AR = 0.6  # week-to-week persistence of a line's defect-rate deviation z
MAINTENANCE_RATE, DEFECT_K = 0.1, 10.0
BATCHES_PER_LINE_WEEK, BATCH_INTERCEPT, BATCH_NOISE = 5, -4.4, 0.3

SUPPLIERS_MESS = MessRates(missing=0.01, unknown_category=0.01, late=0.01, duplicate=0.005)
PURCHASE_ORDERS_MESS = MessRates(
    missing=0.01, outlier=0.003, malformed=0.002, late=0.02, duplicate=0.01
)
LINE_WEEKLY_MESS = MessRates(missing=0.01, malformed=0.003, late=0.02, duplicate=0.005)
BATCHES_MESS = MessRates(
    missing=0.015, malformed=0.002, unknown_category=0.005, late=0.02, duplicate=0.01
)

_DAY_NS = 86400 * 10**9


def _quarterly_tiers(rng: np.random.Generator, n: int, n_quarters: int) -> np.ndarray:
    u = rng.random((n_quarters, n))
    tiers = np.zeros((n_quarters, n), dtype=np.int64)
    tiers[0] = (u[0, :, None] > np.cumsum(TIER_START)[None, :2]).sum(axis=1)
    cum = np.cumsum(TIER_TRANSITION, axis=1)
    for q in range(1, n_quarters):  # Markov chain: loop over quarters, vectorised over suppliers
        tiers[q] = (u[q, :, None] > cum[tiers[q - 1], :2]).sum(axis=1)
    return tiers


@dataclass
class _Suppliers:
    frame: pd.DataFrame
    financials: pd.DataFrame
    assessments: pd.DataFrame
    truth: pd.DataFrame
    tiers: np.ndarray  # (quarter, supplier) true tier
    category: np.ndarray
    offset: np.ndarray
    distance: np.ndarray


def _suppliers(config: WorldConfig, rng: np.random.Generator) -> _Suppliers:
    n, n_weeks = config.size("n_suppliers"), config.size("n_weeks")
    n_quarters = -(-n_weeks // 13)
    tiers = _quarterly_tiers(rng, n, n_quarters)
    category = rng.integers(0, len(CATEGORIES), n)
    country = rng.integers(0, len(COUNTRIES), n)
    offset = rng.normal(0.0, 0.5, n)
    quarters = pd.Timestamp(config.start) + pd.to_timedelta(np.arange(n_quarters) * 91, unit="D")
    sid = np.arange(1, n + 1, dtype="int64")
    suppliers = pd.DataFrame(
        {
            "supplier_id": sid,
            "supplier_name": [f"supplier_{i:04d}" for i in sid],
            "category": np.asarray(CATEGORIES, dtype=object)[category],
            "country": np.asarray(COUNTRIES, dtype=object)[country],
            "distance_km": np.round(COUNTRY_KM[country] * rng.uniform(0.8, 1.2, n), 0),
            "certified": (rng.random(n) < 0.7).astype("int8"),
            "onboarded_at": pd.Timestamp(config.start)
            - pd.to_timedelta(rng.integers(30, 3000, n), unit="D"),
        }
    )
    qi, si = np.meshgrid(np.arange(n_quarters), np.arange(n), indexing="ij")
    z = rng.normal(size=(3, n_quarters, n))
    wrong = rng.random((n_quarters, n)) < AUDITOR_ERROR
    assessed = np.where(wrong, (tiers + rng.integers(1, 3, (n_quarters, n))) % 3, tiers)
    financials = pd.DataFrame(
        {
            "supplier_id": sid[si.ravel()],
            "reported_at": (quarters[qi.ravel()] + pd.Timedelta(days=30)).to_numpy(),
            "financial_score": np.clip(np.round(72 - 14 * tiers + 14 * z[0], 1), 0, 100).ravel(),
            "days_payable": np.round(38 + 11 * tiers + 14 * z[1], 0).ravel(),
        }
    )
    assessments = pd.DataFrame(
        {
            "supplier_id": sid[si.ravel()],
            "assessed_at": (quarters[qi.ravel()] + pd.Timedelta(days=90)).to_numpy(),
            "risk_tier": np.asarray(TIERS, dtype=object)[assessed.ravel()],
        }
    )
    tiers_truth = pd.DataFrame(
        {
            "supplier_id": sid[si.ravel()],
            "quarter_start": quarters[qi.ravel()].to_numpy(),
            "true_tier": np.asarray(TIERS, dtype=object)[tiers.ravel()],
            "expected_delay_base": (TIER_DELAY[tiers] + offset[None, :]).ravel(),
        }
    )
    return _Suppliers(
        suppliers,
        financials,
        assessments,
        tiers_truth,
        tiers,
        category,
        offset,
        suppliers["distance_km"].to_numpy(),
    )


def _purchase_orders(
    config: WorldConfig, world: World, sup: _Suppliers, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    products = world.truth["products_truth"].merge(
        world.tables["products"].drop_duplicates("product_id"), on="product_id"
    )
    n_weeks = config.size("n_weeks")
    cat_of_product = pd.Categorical(products["category"], categories=list(CATEGORIES)).codes
    cat_of_product = np.where(cat_of_product < 0, 0, cat_of_product)
    # each product is bought from one supplier of its category (any supplier if the category has none)
    pick = rng.random(len(products))
    by_cat = np.argsort(sup.category, kind="stable")
    counts = np.bincount(sup.category, minlength=len(CATEGORIES))
    first = np.cumsum(counts) - counts
    k = counts[cat_of_product]
    supplier_idx = np.where(
        k > 0,
        by_cat[np.minimum(first[cat_of_product] + (pick * k).astype(np.int64), len(by_cat) - 1)],
        (pick * len(sup.category)).astype(np.int64),
    )
    mapping = pd.DataFrame(
        {
            "supplier_id": supplier_idx.astype("int64") + 1,
            "product_id": products["product_id"].to_numpy(),
        }
    )
    phase = rng.integers(0, PO_INTERVAL_WEEKS, len(products))
    launch_week = ((products["launch_date"] - pd.Timestamp(config.start)).dt.days // 7).to_numpy()
    weeks_grid = np.arange(n_weeks)
    due = ((weeks_grid[None, :] - phase[:, None]) % PO_INTERVAL_WEEKS == 0) & (
        weeks_grid[None, :] >= launch_week[:, None]
    )
    t_idx, p_idx = np.nonzero(due.T)
    m = len(t_idx)
    s_idx = supplier_idx[p_idx]
    tiers = sup.tiers[t_idx // 13, s_idx]
    woy = config.weeks().isocalendar().week.to_numpy().astype(np.int64)[t_idx]
    # One order stocks one distribution centre: at most DC_STORES stores' demand. (With every
    # store of the large chain behind one order, honest quantities passed the schema's 200,000
    # bound that catches broken exports, and a quarter of a batch went to quarantine.)
    served = min(config.size("n_stores"), DC_STORES)
    weekly_units = products["base_demand_per_store"].to_numpy()[p_idx] * served
    u = rng.random((m, 3))
    qty = np.round(weekly_units * PO_INTERVAL_WEEKS * np.exp(0.35 * rng.normal(size=m)))
    qty_med = np.median(qty)
    distance = sup.distance[s_idx]
    delay_mean = (
        TIER_DELAY[tiers]
        + sup.offset[s_idx]
        + PEAK_DELAY * (woy >= 47)
        + QTY_COEF * np.log(np.maximum(qty, 1) / qty_med)
        + DIST_COEF * distance / 1000
    )
    delay = np.round(delay_mean + DELAY_NOISE * rng.normal(size=m))
    week_ns = config.weeks().to_numpy().astype("datetime64[ns]").astype(np.int64)
    ordered = week_ns[t_idx] + (u[:, 0] * 5 * 86400).astype(np.int64) * 10**9
    lead = 5 + np.round(distance / 400)
    promised = ordered + (lead * _DAY_NS).astype(np.int64)
    delivered = promised + (delay * _DAY_NS).astype(np.int64)
    end_ns = week_ns[-1] + 7 * _DAY_NS
    po_id = np.arange(1, m + 1, dtype="int64")
    pos = pd.DataFrame(
        {
            "po_id": po_id,
            "supplier_id": s_idx.astype("int64") + 1,
            "product_id": products["product_id"].to_numpy()[p_idx],
            "ordered_at": ordered.astype("datetime64[ns]"),
            "quantity": qty,
            "promised_at": promised.astype("datetime64[ns]"),
            "delivered_at": np.where(delivered < end_ns, delivered, np.iinfo(np.int64).min).astype(
                "datetime64[ns]"
            ),
        }
    )
    truth = pd.DataFrame(
        {
            "po_id": po_id,
            "risk_tier": np.asarray(TIERS, dtype=object)[tiers],
            "expected_delay_days": delay_mean,
            "delay_days": delay,
        }
    )
    return pos, truth, mapping


def _production(
    config: WorldConfig, sup: _Suppliers, rng: np.random.Generator
) -> tuple[pd.DataFrame, ...]:
    n_lines, n_weeks = config.size("n_lines"), config.size("n_weeks")
    weeks = config.weeks()
    woy = weeks.isocalendar().week.to_numpy().astype(np.int64)
    age0 = rng.uniform(0.5, 15.0, n_lines)
    base = rng.normal(np.log(4.0), LINE_BASE_SIGMA, n_lines)
    capacity = rng.uniform(4_000, 10_000, n_lines)
    tiers = sup.tiers
    line_suppliers = rng.integers(0, tiers.shape[1], (n_lines, 3))
    sup_tier = tiers[np.arange(n_weeks)[:, None, None] // 13, line_suppliers[None]].mean(
        axis=2
    )  # (T, L)
    humidity = (
        55
        + 15 * np.sin(2 * np.pi * woy / 52.18 - 1.2)[:, None]
        + rng.normal(0, 4, (n_weeks, n_lines))
    )
    maint = rng.random((n_weeks, n_lines)) < MAINTENANCE_RATE
    since = np.zeros((n_weeks, n_lines))
    z = np.zeros((n_weeks, n_lines))
    eps = rng.normal(0.0, LINE_NOISE, (n_weeks, n_lines))
    for t in range(n_weeks):  # loop over weeks, vectorised over lines
        since[t] = 0 if t == 0 else np.where(maint[t - 1], 0, since[t - 1] + 1)
        z[t] = (LINE_AR * z[t - 1] if t else 0.0) + eps[t]
    age = age0[None, :] + np.arange(n_weeks)[:, None] / 52
    log_rate = (
        base[None, :]
        + AGE_COEF * age
        + HUMIDITY_COEF * (humidity - 55) / 10
        + MAINT_COEF * np.minimum(since, 20) / 10
        + SUPPLIER_COEF * sup_tier
        + z
    )
    downtime = np.round(rng.gamma(1.5, 3.0, (n_weeks, n_lines)), 1)
    units = np.round(
        capacity[None, :]
        * rng.uniform(0.85, 1.05, (n_weeks, n_lines))
        * (1 - np.minimum(downtime, 60) / 80)
    )
    mean_defects = units * np.exp(log_rate) / 1000
    defects = rng.poisson(mean_defects * rng.gamma(DEFECT_K, 1 / DEFECT_K, (n_weeks, n_lines)))
    lid = np.arange(1, n_lines + 1, dtype="int64")
    t_idx, l_idx = np.divmod(np.arange(n_weeks * n_lines), n_lines)
    week_col = weeks.to_numpy()[t_idx]
    lines = pd.DataFrame(
        {
            "line_id": lid,
            "plant": np.asarray(PLANTS, dtype=object)[rng.integers(0, len(PLANTS), n_lines)],
            "line_type": np.asarray(LINE_TYPES, dtype=object)[
                rng.integers(0, len(LINE_TYPES), n_lines)
            ],
            "installed_at": pd.Timestamp(config.start)
            - pd.to_timedelta(np.round(age0 * 365.25), unit="D"),
        }
    )
    weekly = pd.DataFrame(
        {
            "line_id": lid[l_idx],
            "week_start": week_col,
            "units_produced": units.ravel(),
            "defects": defects.ravel().astype("int64"),
            "downtime_hours": downtime.ravel(),
            "avg_humidity": np.round(humidity.ravel(), 1),
            "maintenance_done": maint.ravel().astype("int8"),
        }
    )
    weekly_truth = pd.DataFrame(
        {
            "line_id": weekly["line_id"],
            "week_start": week_col,
            "defect_rate_per_1000": np.exp(log_rate).ravel(),
            "expected_defects": mean_defects.ravel(),
            "expected_defect_rate_per_1000_ex_ante": ex_ante_defect_rate(
                log_rate=log_rate, innovation=eps, noise_sd=LINE_NOISE
            ).ravel(),
        }
    )
    # batches
    nb = n_weeks * n_lines * BATCHES_PER_LINE_WEEK
    cell = np.arange(nb) // BATCHES_PER_LINE_WEEK  # time-major: cell = t * n_lines + l
    bt, bl = np.divmod(cell, n_lines)
    temp = 72 + rng.normal(0, 3.5, nb)
    speed = rng.uniform(0.8, 1.3, nb)
    night = rng.random(nb) < 0.35
    experience = rng.gamma(2.0, 2.0, nb)
    moisture = rng.normal(10.5, 1.5, nb)
    msup = line_suppliers[bl, rng.integers(0, 3, nb)]
    mtier = tiers[bt // 13, msup]
    dev = log_rate[bt, bl] - log_rate.mean()
    logit = (
        BATCH_INTERCEPT
        + 0.9 * dev
        + 1.5 * ((temp - 72) / 4) ** 2
        + 1.6 * (speed > 1.1)
        + 0.6 * night
        - 0.3 * experience / 2
        + 0.6 * mtier
        + 2.0 * np.maximum(moisture - 12, 0)
        + rng.normal(0, BATCH_NOISE, nb)
    )
    p = expit(logit)
    defective = rng.random(nb) < p
    started = (
        weeks.to_numpy().astype("datetime64[ns]").astype(np.int64)[bt]
        + (rng.random(nb) * 7 * 86400).astype(np.int64) * 10**9
    )
    order = np.argsort(started, kind="stable")
    bid = np.arange(1, nb + 1, dtype="int64")
    batches = pd.DataFrame(
        {
            "batch_id": bid,
            "line_id": lid[bl[order]],
            "supplier_id": msup[order].astype("int64") + 1,
            "started_at": started[order].astype("datetime64[ns]"),
            "units": np.round(units[bt, bl][order] / BATCHES_PER_LINE_WEEK),
            "temperature_c": np.round(temp[order], 2),
            "humidity_pct": np.round(humidity[bt, bl][order] + rng.normal(0, 2, nb), 1),
            "line_speed": np.round(speed[order], 3),
            "shift": np.where(night[order], "night", "day").astype(object),
            "operator_experience_years": np.round(experience[order], 1),
            "material_moisture_pct": np.round(moisture[order], 2),
            "defective": defective[order].astype("int8"),
        }
    )
    batches_truth = pd.DataFrame(
        {
            "batch_id": bid,
            "defect_probability": p[order],
            "material_supplier_tier": np.asarray(TIERS, dtype=object)[mtier[order]],
        }
    )
    links = pd.DataFrame(
        {"line_id": np.repeat(lid, 3), "supplier_id": line_suppliers.ravel().astype("int64") + 1}
    )
    return (
        lines,
        links.drop_duplicates(ignore_index=True),
        weekly,
        weekly_truth,
        batches,
        batches_truth,
    )


def generate_supply(config: WorldConfig, world: World) -> None:
    """Add suppliers, purchase orders, production and delivery tables (+ truth) to ``world``.

    Example:
        >>> generate_supply(WorldConfig(), world)  # doctest: +SKIP  (after retail and products)
    """
    rng = domain_rng(config, "supply")
    sup = _suppliers(config, rng)
    pos, pos_truth, mapping = _purchase_orders(config, world, sup, rng)
    lines, line_suppliers, weekly, weekly_truth, batches, batches_truth = _production(
        config, sup, rng
    )
    depots, runs, stops, runs_truth, stops_truth = delivery_tables(config, world, rng)
    t = world.tables
    t["suppliers"] = make_messy(
        sup.frame,
        config=config,
        table="suppliers",
        rates=SUPPLIERS_MESS,
        event_column="onboarded_at",
        base_lag=pd.Timedelta(days=1),
        missing=["distance_km"],
        unknown=["country"],
    )
    t["supplier_products"] = mapping
    t["supplier_financials"] = make_messy(
        sup.financials,
        config=config,
        table="supplier_financials",
        rates=SUPPLIERS_MESS,
        event_column="reported_at",
        missing=["financial_score"],
    )
    t["supplier_assessments"] = make_messy(
        sup.assessments,
        config=config,
        table="supplier_assessments",
        rates=MessRates(late=0.02, duplicate=0.005),
        event_column="assessed_at",
        base_lag=pd.Timedelta(days=3),
    )
    t["purchase_orders"] = make_messy(
        pos,
        config=config,
        table="purchase_orders",
        rates=PURCHASE_ORDERS_MESS,
        event_column="ordered_at",
        missing=["quantity"],
        outlier=["quantity"],
        malformed=["quantity"],
    )
    t["production_lines"] = lines
    t["line_suppliers"] = line_suppliers
    t["production_line_weekly"] = make_messy(
        weekly,
        config=config,
        table="production_line_weekly",
        rates=LINE_WEEKLY_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=7),
        missing=["avg_humidity"],
        malformed=["defects"],
    )
    t["production_batches"] = make_messy(
        batches,
        config=config,
        table="production_batches",
        rates=BATCHES_MESS,
        event_column="started_at",
        base_lag=pd.Timedelta(hours=12),
        missing=["temperature_c", "material_moisture_pct"],
        malformed=["temperature_c"],
        unknown=["shift"],
    )
    t["depots"] = depots
    t["delivery_runs"] = make_messy(
        runs,
        config=config,
        table="delivery_runs",
        rates=RUNS_MESS,
        event_column="departed_at",
        missing=["weather"],
        unknown=["vehicle_type"],
    )
    t["delivery_stops"] = make_messy(
        stops,
        config=config,
        table="delivery_stops",
        rates=STOPS_MESS,
        event_column="arrived_at",
        missing=["travel_minutes"],
        outlier=["travel_minutes"],
    )
    world.truth["supplier_tiers_truth"] = sup.truth
    world.truth["purchase_orders_truth"] = pos_truth
    world.truth["production_line_weekly_truth"] = weekly_truth
    world.truth["production_batches_truth"] = batches_truth
    world.truth["delivery_runs_truth"] = runs_truth
    world.truth["delivery_stops_truth"] = stops_truth
