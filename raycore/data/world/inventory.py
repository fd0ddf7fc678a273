"""Store inventory: product x store x week demand, replenishment, stock-outs and turnover.

The tracked assortment is the first ``n_inventory_products`` products launched before the
world starts, in the first ``n_inventory_stores`` stores. Store demand follows the
national product demand of ``products.py`` (same weekly shock), split by store size:

    w_s      = base_revenue_s * FORMAT_FACTOR_s / sum over all stores      (retail truth)
    mu_pst   = expected_units_pt * shock_pt * w_s * exp(xi_ps),   xi_ps ~ N(0, AFFINITY_SIGMA)
    D_pst    ~ NegBin(mean mu_pst, dispersion NB_K)   = Poisson(mu * Gamma(NB_K, 1 / NB_K))

Weekly order-up-to policy (loop over weeks, vectorised over product x store):

    on_hand_start_t = on_hand_end_t-1 + received_t
    sold_t = min(D_t, on_hand_start_t);  stockout_t = [D_t > on_hand_start_t]   (lost sales)
    f_t = 0.75 f_t-1 + 0.25 sold_t                                   (planner's smoothed forecast)
    order_t = max(0, ceil(f_t * 2 * cover_ps) - on_hand_end_t - on_order_t),  cover_ps ~ U(0.9, 1.7)
    arrives at t + 1, or t + 2 when the product's purchase order of week t is >= 3 days late (supply.py)

Truth per row: mu (expected demand), the uncensored demand, the stock-out probability given
the state at the end of week t-1, (1 - q) P(D_t > I + order_t-1) + q P(D_t > I), with I the stock
without last week's order and q = P(that week's purchase order is >= 3 days late), and the 95% demand quantile (the stock for a 95% service level), and
E[min(D_t, on_hand_start_t)] (expected units sold). Per product x quarter (13 weeks):

    expected_turnover          sum of expected units sold / mean on-hand at week start, all stores
                               (hindsight: it knows the quarter's demand shocks and stock path)
    expected_turnover_ex_ante  the MAPE-optimal forecast of the turnover label from the quarter's
                               start: the 1 / label-weighted median of ORACLE_PATHS simulated
                               quarters (fresh shocks, store demand and late orders through the
                               same policy) from the realised stock, forecast and pipeline then;
                               drawn from its own stream "inventory/oracle" (see oracles.py)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import nbinom, norm

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.mess import MessRates, make_messy
from raycore.data.world.oracles import (
    OrderUpToPolicy,
    QuarterStart,
    mape_optimal_point,
    turnover_paths,
)
from raycore.data.world.products import DEMAND_NOISE_SIGMA
from raycore.data.world.retail import FORMAT_FACTOR
from raycore.data.world.supply import DELAY_NOISE

__all__ = ["INVENTORY_MESS", "NB_K", "generate_inventory"]

NB_K = 6.0
AFFINITY_SIGMA = 0.3
COVER_RANGE = (0.9, 1.7)
LATE_PO_DAYS = 3
QUARTER_WEEKS = 13
ORACLE_PATHS = 48  # Monte Carlo paths of the ex-ante turnover oracle
ORACLE_CHUNK = 2_000_000  # most cells (path x quarter x product x store) simulated at once
INVENTORY_MESS = MessRates(missing=0.01, malformed=0.002, late=0.02, duplicate=0.005)


def _expected_sold(mu: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """E[min(D, a)] for D ~ NegBin(mu, NB_K), exactly: mu * P(D' <= a - 2) + a * P(D >= a).

    Uses k * NB(k; r, p) = mu * NB(k - 1; r + 1, p), so E[D 1{D < a}] = mu * P(D_{r+1} <= a - 2).
    """
    p = NB_K / (NB_K + mu)
    return np.asarray(
        mu * nbinom.cdf(stock - 2, NB_K + 1, p) + stock * nbinom.sf(stock - 1, NB_K, p)
    )


def _turnover_ex_ante(
    config: WorldConfig,
    *,
    policy: OrderUpToPolicy,
    state: QuarterStart,
    expected_units: np.ndarray,
    store_weight: np.ndarray,
    affinity: np.ndarray,
    q_late: np.ndarray,
) -> np.ndarray:
    """MAPE-optimal turnover (Q, P) of each quarter from its start, by Monte Carlo on its own stream."""
    n_weeks, n_p = expected_units.shape
    n_q = -(-n_weeks // QUARTER_WEEKS)
    pad = n_q * QUARTER_WEEKS - n_weeks

    def by_quarter(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, np.zeros((pad, n_p))]).reshape(n_q, QUARTER_WEEKS, n_p)

    units, late_p = by_quarter(expected_units), by_quarter(q_late)
    week_valid = (np.arange(n_q * QUARTER_WEEKS) < n_weeks).reshape(n_q, QUARTER_WEEKS)
    rng = domain_rng(config, "inventory/oracle")
    # products in chunks of at most ORACLE_CHUNK path x quarter x product x store cells (memory)
    step = max(1, ORACLE_CHUNK // (ORACLE_PATHS * n_q * affinity.shape[1]))
    points = []
    for lo in range(0, n_p, step):
        sl = slice(lo, lo + step)
        labels = turnover_paths(
            policy=OrderUpToPolicy(cover=policy.cover[sl]),
            state=QuarterStart(*(a[:, sl] for a in vars(state).values())),
            expected_units=units[:, :, sl],
            store_weight=store_weight,
            affinity=affinity[sl],
            q_late=late_p[:, :, sl],
            week_valid=week_valid,
            shock_sigma=DEMAND_NOISE_SIGMA,
            nb_k=NB_K,
            n_paths=ORACLE_PATHS,
            rng=rng,
        )
        points.append(mape_optimal_point(labels))
    return np.concatenate(points, axis=1)


def generate_inventory(config: WorldConfig, world: World) -> None:
    """Add store_inventory_weekly (+ truth and turnover truth) to ``world``.

    Example:
        >>> generate_inventory(WorldConfig(), world)  # doctest: +SKIP  (after retail, products, supply)
    """
    rng = domain_rng(config, "inventory")
    n_weeks = config.size("n_weeks")
    products = world.truth["products_truth"]
    core = products.loc[~products["is_new_launch"], "product_id"].to_numpy()[
        : config.size("n_inventory_products")
    ]
    stores = world.truth["stores_truth"]
    size = stores["base_revenue"].to_numpy() * stores["store_format"].map(FORMAT_FACTOR).to_numpy()
    n_s = min(config.size("n_inventory_stores"), len(stores))
    weight = (size / size.sum())[:n_s]
    store_ids = stores["store_id"].to_numpy()[:n_s]
    n_p = len(core)
    dem = world.truth["product_demand_weekly_truth"]
    dem = dem[dem["product_id"].isin(core)]
    pivot = (dem["expected_units"] * dem["demand_shock"]).to_numpy()
    national = np.zeros((n_weeks, n_p))
    t_of = ((dem["week_start"] - pd.Timestamp(config.start)).dt.days // 7).to_numpy()
    p_of = np.searchsorted(core, dem["product_id"].to_numpy())
    national[t_of, p_of] = pivot
    expected_units = np.zeros((n_weeks, n_p))
    expected_units[t_of, p_of] = dem["expected_units"].to_numpy()
    affinity = np.exp(rng.normal(0.0, AFFINITY_SIGMA, (n_p, n_s)))
    mu = national[:, :, None] * weight[None, None, :] * affinity[None]  # (T, P, S)
    demand = rng.poisson(mu * rng.gamma(NB_K, 1 / NB_K, mu.shape))
    cover = rng.uniform(*COVER_RANGE, (n_p, n_s))

    pos = world.truth["purchase_orders_truth"].merge(
        world.tables["purchase_orders"].drop_duplicates("po_id")[
            ["po_id", "product_id", "ordered_at"]
        ],
        on="po_id",
    )
    pos = pos[pos["product_id"].isin(core)]
    po_week = ((pos["ordered_at"] - pd.Timestamp(config.start)).dt.days // 7).to_numpy()
    po_product = np.searchsorted(core, pos["product_id"].to_numpy())
    late = np.zeros((n_weeks, n_p), dtype=bool)
    late[
        po_week[pos["delay_days"].to_numpy() >= LATE_PO_DAYS],
        po_product[pos["delay_days"].to_numpy() >= LATE_PO_DAYS],
    ] = True
    q_late = np.zeros(
        (n_weeks, n_p)
    )  # P(this week's purchase order is late), known to the supplier's truth only
    q_late[po_week, po_product] = norm.sf(
        (LATE_PO_DAYS - 0.5 - pos["expected_delay_days"].to_numpy()) / DELAY_NOISE
    )

    shape = (n_p, n_s)
    policy = OrderUpToPolicy(cover=cover)
    on_hand_end = np.ceil(mu[0] * 2 * cover)
    forecast = mu[0].copy()
    arriving, arriving_next = np.zeros(shape), np.zeros(shape)
    quarter_starts: list[tuple[np.ndarray, ...]] = []
    cols = {k: np.zeros((n_weeks, *shape)) for k in ("start", "received", "sold", "ordered")}
    for t in range(n_weeks):  # loop over weeks, vectorised over product x store
        if t % QUARTER_WEEKS == 0:
            quarter_starts.append((on_hand_end, forecast, arriving, arriving_next))
        cols["received"][t] = arriving
        start, sold, order, on_hand_end, forecast, arriving, arriving_next = policy.step(
            on_hand_end=on_hand_end,
            forecast=forecast,
            arriving=arriving,
            arriving_next=arriving_next,
            demand=demand[t],
            late=late[t][:, None],
        )
        cols["start"][t], cols["sold"][t], cols["ordered"][t] = start, sold, order

    p_nb = NB_K / (NB_K + mu)
    # P(stock-out in week t | state at the end of week t-1): the order of week t-1 arrives on time or not
    prev_order = np.concatenate([np.zeros((1, *shape)), cols["ordered"][:-1]])
    prev_late = np.concatenate([np.zeros((1, n_p), dtype=bool), late[:-1]])[:, :, None]
    q = np.concatenate([np.zeros((1, n_p)), q_late[:-1]])[:, :, None]
    on_time_stock = np.where(prev_late, cols["start"] + prev_order, cols["start"])
    late_stock = on_time_stock - prev_order
    stockout_p = (1 - q) * nbinom.sf(on_time_stock, NB_K, p_nb) + q * nbinom.sf(
        late_stock, NB_K, p_nb
    )
    q95 = nbinom.ppf(0.95, NB_K, p_nb)
    exp_sold = _expected_sold(mu.ravel(), cols["start"].ravel()).reshape(mu.shape)
    weeks = config.weeks().to_numpy()
    t_idx, p_idx, s_idx = (
        a.ravel()
        for a in np.meshgrid(np.arange(n_weeks), np.arange(n_p), np.arange(n_s), indexing="ij")
    )
    frame = pd.DataFrame(
        {
            "product_id": core[p_idx].astype("int64"),
            "store_id": store_ids[s_idx].astype("int64"),
            "week_start": weeks[t_idx],
            "on_hand_start": cols["start"].ravel().astype("int64"),
            "received_units": cols["received"].ravel().astype("int64"),
            "units_sold": cols["sold"].ravel().astype("int64"),
            "stockout": (demand > cols["start"]).ravel().astype("int8"),
            "units_ordered": cols["ordered"].ravel().astype("int64"),
        }
    )
    truth = pd.DataFrame(
        {
            "product_id": frame["product_id"],
            "store_id": frame["store_id"],
            "week_start": frame["week_start"],
            "expected_demand": mu.ravel(),
            "demand": demand.ravel().astype("int64"),
            "stockout_probability": stockout_p.ravel(),
            "stock_for_95_service": q95.ravel(),
            "expected_units_sold": exp_sold.ravel(),
        }
    )
    quarter = t_idx // 13
    turnover = (
        pd.DataFrame(
            {
                "product_id": frame["product_id"],
                "quarter": quarter,
                "exp_sold": exp_sold.ravel(),
                "start": cols["start"].ravel(),
            }
        )
        .groupby(["product_id", "quarter"])
        .agg(exp_sold=("exp_sold", "sum"), start=("start", "sum"), n=("start", "size"))
        .reset_index()
    )
    ex_ante = _turnover_ex_ante(
        config,
        policy=policy,
        state=QuarterStart(*(np.stack(a) for a in zip(*quarter_starts, strict=True))),
        expected_units=expected_units,
        store_weight=weight,
        affinity=affinity,
        q_late=q_late,
    )
    turnover_truth = pd.DataFrame(
        {
            "product_id": turnover["product_id"].astype("int64"),
            "quarter_start": pd.Timestamp(config.start)
            + pd.to_timedelta(turnover["quarter"] * 91, unit="D"),
            "expected_turnover": turnover["exp_sold"]
            / np.maximum(turnover["start"] / turnover["n"] * n_s, 1e-9),
            "expected_turnover_ex_ante": ex_ante[
                turnover["quarter"].to_numpy(),
                np.searchsorted(core, turnover["product_id"].to_numpy()),
            ],
        }
    )
    world.tables["store_inventory_weekly"] = make_messy(
        frame,
        config=config,
        table="store_inventory_weekly",
        rates=INVENTORY_MESS,
        event_column="week_start",
        base_lag=pd.Timedelta(days=7),
        missing=["on_hand_start"],
        malformed=["on_hand_start"],
    )
    world.truth["store_inventory_weekly_truth"] = truth
    world.truth["inventory_turnover_truth"] = turnover_truth
