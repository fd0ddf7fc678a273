"""Regions, stores and weekly store sales.

Generating equations (documented in the README's data-world section):

    season_rt  = 1 + A_r * sin(2*pi*woy_t/52.18 + phi_r) + holiday(woy_t)
    holiday(w) = +0.35 for ISO weeks 48-51, -0.12 for week 1, else 0
    trend_st   = (1 + g_s) ** (t / 52)
    z_st       = 0.7 * z_s,t-1 + N(0, 0.03)          (local level shock, AR(1))
    mu_st      = L_s * F_f(s) * season_rt * trend_st * exp(z_st) * (1 + u_s * promo_st)
    revenue_st = mu_st * exp(eps - 0.11**2 / 2),  eps ~ N(0, 0.11)

    L_s ~ LogNormal(ln 40_000, 0.45)   base weekly revenue
    F   = {mall: 1.25, street: 1.0, outlet: 0.8} by store format
    A_r ~ U(0.08, 0.20), phi_r ~ U(0, 2*pi)      regional seasonality
    g_s ~ N(0.04, 0.04)                          annual growth
    u_s ~ U(0.12, 0.30), promo_st ~ Bernoulli(0.12)   promotion uplift and calendar

``mu_st`` (the noise-free expected revenue) goes to the truth table
``store_sales_weekly_truth``: it is the oracle forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.data.world.config import World, WorldConfig, domain_rng

__all__ = ["REVENUE_NOISE_SIGMA", "generate_retail"]

REVENUE_NOISE_SIGMA = 0.11
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)
FORMAT_FACTOR = {"mall": 1.25, "street": 1.0, "outlet": 0.8}


def generate_retail(config: WorldConfig, world: World) -> None:
    """Add regions, stores and store_sales_weekly (+ truth) to ``world``."""
    rng = domain_rng(config, "retail")
    n_regions, n_stores = config.size("n_regions"), config.size("n_stores")
    weeks = config.weeks()
    n_weeks = len(weeks)

    regions = pd.DataFrame(
        {
            "region_id": np.arange(1, n_regions + 1, dtype="int64"),
            "region": [f"region_{i:02d}" for i in range(1, n_regions + 1)],
            "season_amplitude": rng.uniform(0.08, 0.20, n_regions),
            "season_phase": rng.uniform(0.0, 2 * np.pi, n_regions),
        }
    )
    formats = np.array(list(FORMAT_FACTOR))
    store_format = rng.choice(formats, n_stores, p=[0.3, 0.5, 0.2])
    stores = pd.DataFrame(
        {
            "store_id": np.arange(1, n_stores + 1, dtype="int64"),
            "region_id": rng.integers(1, n_regions + 1, n_stores),
            "store_format": store_format,
            "base_revenue": np.exp(rng.normal(np.log(40_000), 0.45, n_stores)),
            "annual_growth": rng.normal(0.04, 0.04, n_stores),
            "promo_uplift": rng.uniform(0.12, 0.30, n_stores),
            "opened_at": pd.Timestamp(config.start) - pd.to_timedelta(rng.integers(200, 4000, n_stores), unit="D"),
        }
    )

    woy = weeks.isocalendar().week.to_numpy().astype(np.int64)
    t = np.arange(n_weeks)
    holiday = np.where(np.isin(woy, HOLIDAY_PEAK_WEEKS), 0.35, 0.0) + np.where(woy == 1, -0.12, 0.0)
    reg = regions.set_index("region_id").loc[stores["region_id"]]
    season = (
        1
        + reg["season_amplitude"].to_numpy()[:, None]
        * np.sin(2 * np.pi * woy[None, :] / 52.18 + reg["season_phase"].to_numpy()[:, None])
        + holiday[None, :]
    )
    trend = (1 + stores["annual_growth"].to_numpy()[:, None]) ** (t[None, :] / 52.0)
    shocks = rng.normal(0.0, 0.03, (n_stores, n_weeks))
    z = np.zeros((n_stores, n_weeks))
    for k in range(n_weeks):
        z[:, k] = (0.7 * z[:, k - 1] if k else 0.0) + shocks[:, k]
    promo = rng.random((n_stores, n_weeks)) < 0.12
    level = stores["base_revenue"].to_numpy() * stores["store_format"].map(FORMAT_FACTOR).to_numpy()
    mu = level[:, None] * season * trend * np.exp(z) * (1 + stores["promo_uplift"].to_numpy()[:, None] * promo)
    eps = rng.normal(0.0, REVENUE_NOISE_SIGMA, (n_stores, n_weeks))
    revenue = mu * np.exp(eps - REVENUE_NOISE_SIGMA**2 / 2)

    store_ids = np.repeat(stores["store_id"].to_numpy(), n_weeks)
    week_col = np.tile(weeks.to_numpy(), n_stores)
    sales = pd.DataFrame(
        {
            "store_id": store_ids,
            "week_start": week_col,
            "on_promo": promo.ravel().astype("int8"),
            "revenue": np.round(revenue.ravel(), 2),
        }
    )
    truth = pd.DataFrame({"store_id": store_ids, "week_start": week_col, "expected_revenue": mu.ravel()})

    world.tables["regions"] = regions[["region_id", "region"]]
    world.tables["stores"] = stores[["store_id", "region_id", "store_format", "opened_at"]]
    world.tables["store_sales_weekly"] = sales
    world.truth["regions_truth"] = regions
    world.truth["stores_truth"] = stores
    world.truth["store_sales_weekly_truth"] = truth
