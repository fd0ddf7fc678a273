"""Customers with a latent segment, their weekly behaviour, orders, closures, feedback and CLV.

Latent per customer i (segment s_i ~ Categorical(SEGMENT_SHARE)):

    rate_i     ~ LogNormal(ln RATE_MEDIAN[s], TRAIT_SIGMA)        orders / week
    basket_i   ~ LogNormal(ln BASKET_MEDIAN[s], BASKET_SIGMA)     mean order amount
    online_i   ~ Beta(ONLINE_MEAN[s] * C, (1 - ONLINE_MEAN[s]) * C),      C = BETA_CONCENTRATION
    discount_i ~ Beta(DISCOUNT_MEAN[s] * C, (1 - DISCOUNT_MEAN[s]) * C)
    pref_i     ~ Dirichlet(CATEGORY_ALPHA[s])                    share of orders per category
    mu_i       ~ N(SATISFACTION_MEAN[s], SATISFACTION_SPREAD)    satisfaction level

Weekly state (t = week), vectorised over customers, loop over weeks:

    x_it   = SAT_RHO * x_i,t-1 + SAT_SIGMA * N(0,1) - LATE_SHOCK * min(late_i,t-1, 2)
    S_it   = mu_i + x_it                                          satisfaction
    n_it   ~ Poisson(rate_i * exp(RATE_SAT_COEF * x_it) * holiday_t * active_it)    orders
    on_it  ~ Binomial(n_it, online_i)                              online orders
    late_it ~ Binomial(on_it, P_LATE or P_LATE_PEAK in ISO weeks 47-52)   deliveries >= 3 days late

Churn (closure of the loyalty account), decided at every quarter snapshot
(weeks 13, 26, ...) for active customers, the closure falling U{1..90} days later:

    Sbar_it = (1 - SAT_EWMA) Sbar_i,t-1 + SAT_EWMA S_it                 (what churn reacts to)
    logit p_iq = CHURN_BASE[s] + CHURN_TENURE_COEF * ln(1 + tenure_years) + CHURN_SAT_COEF * Sbar_iq
                 + CHURN_LATE_COEF * min(late in last 13 weeks, 3)
                 + CHURN_NEG_COEF * min(negative feedback items in last 13 weeks, 3)
    so churned_90d ~ Bernoulli(p_iq) exactly: p_iq is the oracle churn probability.

Order and feedback rows (amounts, categories, discounts, delays, texts) are expanded from
these weekly counts by ``customer_events.py``.
Feedback (also in the weekly loop, since negative feedback drives churn):

    fb_it ~ Poisson((FEEDBACK_BASE + FEEDBACK_PER_ORDER * n_it + FEEDBACK_PER_LATE * late_it) * active_it)
    classes by ``feedback.sentiment_probabilities``: an ordered logit on
    a = SENTIMENT_SAT_COEF * S_it - SENTIMENT_LATE_COEF * late_it with cut points SENTIMENT_CUTS;
    texts from ``feedback.compose``.

CLV: at the cutoff (the quarter snapshot 52 weeks before the end) the oracle
``expected_spend_12m`` = E[sum of amounts over the next 52 weeks | state at cutoff],
computed by CLV_DRAWS Monte Carlo continuations of the same weekly process using
expected (not sampled) order counts. The segment oracle ``map_segment`` is the
Bayes MAP segment given the customer's true traits under the true mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln

from raycore.data.world import feedback
from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.customer_events import feedback_rows, order_rows
from raycore.data.world.drift import DriftSpec, active, record_drift
from raycore.data.world.mess import MessRates, make_messy
from raycore.data.world.products import CATEGORIES

__all__ = [
    "CLOSURES_MESS",
    "CUSTOMERS_MESS",
    "SEGMENTS",
    "generate_customers",
]

SEGMENTS = ("value_seeker", "loyal_regular", "premium", "occasional")
SEGMENT_SHARE = np.array([0.30, 0.25, 0.20, 0.25])
RATE_MEDIAN = np.array([0.90, 2.10, 0.75, 0.22])
BASKET_MEDIAN = np.array([22.0, 45.0, 200.0, 75.0])
TRAIT_SIGMA, BASKET_SIGMA = 0.35, 0.40
ONLINE_MEAN = np.array([0.25, 0.45, 0.75, 0.35])
DISCOUNT_MEAN = np.array([0.55, 0.20, 0.08, 0.30])
BETA_CONCENTRATION = 6.0
CATEGORY_ALPHA = np.array(  # grocery, home, electronics, apparel, beauty, toys
    [
        [6.0, 3.0, 0.6, 1.0, 1.0, 1.5],
        [5.0, 1.5, 1.0, 2.0, 3.0, 1.0],
        [1.0, 2.0, 4.0, 4.0, 2.0, 0.6],
        [1.5, 3.0, 1.5, 1.0, 0.6, 4.0],
    ]
)
SATISFACTION_MEAN = np.array([0.0, 0.5, 0.2, -0.3])
SATISFACTION_SPREAD = 0.35
SAT_RHO, SAT_SIGMA, LATE_SHOCK, RATE_SAT_COEF, SAT_EWMA = 0.95, 0.18, 0.35, 0.2, 0.12
P_LATE, P_LATE_PEAK = 0.05, 0.15
CHURN_BASE = np.array([-4.8, -6.0, -5.3, -4.2])
CHURN_TENURE_COEF, CHURN_SAT_COEF, CHURN_LATE_COEF, CHURN_NEG_COEF = -0.8, -1.6, 0.8, 1.2
FEEDBACK_BASE, FEEDBACK_PER_ORDER, FEEDBACK_PER_LATE = 0.06, 0.10, 0.40
QUARTER_WEEKS = 13
CLV_WEEKS, CLV_DRAWS = 52, 24
PREEXISTING_SHARE = 0.80
ACQUISITION = ("search", "social", "referral", "store", "email")
ACQUISITION_P = np.array(
    [
        [0.2, 0.35, 0.1, 0.15, 0.2],
        [0.2, 0.1, 0.3, 0.3, 0.1],
        [0.45, 0.2, 0.15, 0.1, 0.1],
        [0.25, 0.3, 0.1, 0.25, 0.1],
    ]
)

CUSTOMERS_MESS = MessRates(
    missing=0.02, malformed=0.003, unknown_category=0.01, late=0.01, duplicate=0.005
)
CLOSURES_MESS = MessRates(late=0.02, duplicate=0.005)


@dataclass
class _Population:
    segment: np.ndarray
    rate: np.ndarray
    basket: np.ndarray
    online: np.ndarray
    mu: np.ndarray
    signup_ns: np.ndarray


@dataclass
class _State:
    x: np.ndarray
    sbar: np.ndarray  # exponentially weighted satisfaction, what churn reacts to
    late_prev: np.ndarray
    late_ring: np.ndarray  # (QUARTER_WEEKS, n) late deliveries in each of the last 13 weeks
    neg_ring: np.ndarray  # (QUARTER_WEEKS, n) negative feedback items in each of the last 13 weeks
    closed_week: np.ndarray  # week index of the closure (inf while open)
    closed_ns: np.ndarray

    def take(self, idx: np.ndarray | slice, reps: int = 1) -> _State:
        """The state of customers ``idx``, copied (and tiled ``reps`` times for Monte Carlo)."""
        return _State(
            np.tile(self.x[idx], reps),
            np.tile(self.sbar[idx], reps),
            np.tile(self.late_prev[idx], reps),
            np.tile(self.late_ring[:, idx], (1, reps)),
            np.tile(self.neg_ring[:, idx], (1, reps)),
            np.tile(self.closed_week[idx], reps),
            np.tile(self.closed_ns[idx], reps),
        )


@dataclass
class _Calendar:
    week_ns: np.ndarray
    holiday: np.ndarray
    p_late: np.ndarray
    churn_shift: np.ndarray  # concept drift: added to the churn logit per week


def _calendar(config: WorldConfig, drift: DriftSpec | None) -> _Calendar:
    weeks = config.weeks()
    woy = weeks.isocalendar().week.to_numpy().astype(np.int64)
    holiday = np.where(np.isin(woy, (48, 49, 50, 51)), 1.3, 1.0) * np.where(woy == 1, 0.85, 1.0)
    shift = np.zeros(len(weeks))
    if d := active(drift, "customer_closures"):
        shift[d.after(weeks)] = 2 * d.magnitude
    return _Calendar(
        week_ns=weeks.to_numpy().astype("datetime64[ns]").astype(np.int64),
        holiday=holiday,
        p_late=np.where(woy >= 47, P_LATE_PEAK, P_LATE),
        churn_shift=shift,
    )


def _week(
    t: int, st: _State, pop: _Population, cal: _Calendar, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Advance every customer by one week (shared by the world and the CLV continuations)."""
    n = len(pop.rate)
    st.x = (
        SAT_RHO * st.x + SAT_SIGMA * rng.normal(size=n) - LATE_SHOCK * np.minimum(st.late_prev, 2)
    )
    sat = pop.mu + st.x
    st.sbar = np.where(t == 0, sat, (1 - SAT_EWMA) * st.sbar + SAT_EWMA * sat)
    week_ns = cal.week_ns[t]
    is_active = (pop.signup_ns < week_ns) & (st.closed_week > t)
    out: dict[str, np.ndarray] = {"active": is_active, "sat": sat, "sbar": st.sbar}
    if t > 0 and t % QUARTER_WEEKS == 0:
        tenure = (week_ns - pop.signup_ns) / (365.25 * 86400e9)
        logit = (
            CHURN_BASE[pop.segment]
            + CHURN_TENURE_COEF * np.log1p(np.maximum(tenure, 0.0))
            + CHURN_SAT_COEF * st.sbar
            + CHURN_LATE_COEF * np.minimum(st.late_ring.sum(axis=0), 3)
            + CHURN_NEG_COEF * np.minimum(st.neg_ring.sum(axis=0), 3)
            + cal.churn_shift[t]
        )
        p = expit(logit)
        u = rng.random(n)
        offset = rng.integers(1, 91, n)
        churn = is_active & (u < p)
        st.closed_week = np.where(churn, t + offset // 7, st.closed_week)
        st.closed_ns = np.where(churn, week_ns + offset * 86400 * 10**9, st.closed_ns)
        out |= {"churn_p": p, "churned": churn, "snapshot_active": is_active}
        is_active = is_active & (st.closed_week > t)
    lam = pop.rate * np.exp(RATE_SAT_COEF * st.x) * cal.holiday[t] * is_active
    orders = rng.poisson(lam)
    online = rng.binomial(orders, pop.online)
    late = rng.binomial(online, cal.p_late[t])
    n_feedback = rng.poisson(
        (FEEDBACK_BASE + FEEDBACK_PER_ORDER * orders + FEEDBACK_PER_LATE * late) * is_active
    )
    probs = feedback.sentiment_probabilities(sat, late)
    negative = rng.binomial(n_feedback, probs[:, 0])
    neutral = rng.binomial(
        n_feedback - negative, np.clip(probs[:, 1] / np.maximum(1 - probs[:, 0], 1e-12), 0.0, 1.0)
    )
    st.late_ring[t % QUARTER_WEEKS] = late
    st.neg_ring[t % QUARTER_WEEKS] = negative
    st.late_prev = late
    return out | {
        "lam": lam,
        "orders": orders,
        "online": online,
        "late": late,
        "negative": negative,
        "neutral": neutral,
        "positive": n_feedback - negative - neutral,
    }


def _draw_population(
    config: WorldConfig, world: World, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, _Population, np.ndarray, np.ndarray]:
    n = config.size("n_customers")
    seg = rng.choice(len(SEGMENTS), n, p=SEGMENT_SHARE)
    rate = np.exp(rng.normal(np.log(RATE_MEDIAN[seg]), TRAIT_SIGMA))
    basket = np.exp(rng.normal(np.log(BASKET_MEDIAN[seg]), BASKET_SIGMA))
    online = rng.beta(
        ONLINE_MEAN[seg] * BETA_CONCENTRATION, (1 - ONLINE_MEAN[seg]) * BETA_CONCENTRATION
    )
    disc = rng.beta(
        DISCOUNT_MEAN[seg] * BETA_CONCENTRATION, (1 - DISCOUNT_MEAN[seg]) * BETA_CONCENTRATION
    )
    pref = rng.gamma(CATEGORY_ALPHA[seg])
    pref /= pref.sum(axis=1, keepdims=True)
    mu = rng.normal(SATISFACTION_MEAN[seg], SATISFACTION_SPREAD)
    start_ns = pd.Timestamp(config.start).value
    n_days = config.size("n_weeks") * 7
    pre = rng.random(n) < PREEXISTING_SHARE
    days = np.where(pre, -rng.uniform(30, 6 * 365, n), rng.uniform(0, n_days - 14, n))
    signup_ns = start_ns + np.round(days * 86400).astype(np.int64) * 10**9
    stores = world.truth["stores_truth"]
    w = stores["base_revenue"].to_numpy() / stores["base_revenue"].sum()
    store_idx = rng.choice(len(stores), n, p=w)
    acq_u = rng.random(n)
    acq = (acq_u[:, None] > np.cumsum(ACQUISITION_P[seg], axis=1)).sum(axis=1)
    birth_year = rng.integers(1945, 2006, n)
    opt_in = rng.random(n) < 0.6
    truth = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "segment": np.asarray(SEGMENTS, dtype=object)[seg],
            "map_segment": np.asarray(SEGMENTS, dtype=object)[
                _map_segment(rate, basket, online, disc, pref, mu)
            ],
            "order_rate": rate,
            "basket_mean": basket,
            "online_share": online,
            "discount_affinity": disc,
            "satisfaction_mean": mu,
            **{f"pref_{c}": pref[:, k] for k, c in enumerate(CATEGORIES)},
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": truth["customer_id"],
            "signup_at": signup_ns.astype("datetime64[ns]"),
            "home_store_id": stores["store_id"].to_numpy()[store_idx].astype("int64"),
            "region_id": stores["region_id"].to_numpy()[store_idx].astype("int64"),
            "acquisition_channel": np.asarray(ACQUISITION, dtype=object)[
                np.minimum(acq, len(ACQUISITION) - 1)
            ],
            "birth_year": birth_year.astype("int64"),
            "email_opt_in": opt_in.astype("int8"),
        }
    )
    pop = _Population(seg, rate, basket, online, mu, signup_ns)
    return customers, truth, pop, disc, np.cumsum(pref, axis=1)


def _map_segment(
    rate: np.ndarray,
    basket: np.ndarray,
    online: np.ndarray,
    disc: np.ndarray,
    pref: np.ndarray,
    mu: np.ndarray,
) -> np.ndarray:
    """Bayes MAP segment given the true traits (the segmentation oracle)."""
    c = BETA_CONCENTRATION

    def log_beta(v: np.ndarray, m: np.ndarray) -> np.ndarray:
        a, b = m * c, (1 - m) * c
        return (
            (a - 1) * np.log(v[:, None])
            + (b - 1) * np.log1p(-v[:, None])
            - (gammaln(a) + gammaln(b) - gammaln(a + b))
        )

    def log_norm(v: np.ndarray, m: np.ndarray, s: float) -> np.ndarray:
        return -0.5 * ((v[:, None] - m) / s) ** 2

    alpha = CATEGORY_ALPHA
    log_dir = (
        np.log(np.clip(pref, 1e-300, None)) @ (alpha - 1).T
        + gammaln(alpha.sum(axis=1))
        - gammaln(alpha).sum(axis=1)
    )
    score = (
        np.log(SEGMENT_SHARE)
        + log_norm(np.log(rate), np.log(RATE_MEDIAN), TRAIT_SIGMA)
        + log_norm(np.log(basket), np.log(BASKET_MEDIAN), BASKET_SIGMA)
        + log_beta(np.clip(online, 1e-9, 1 - 1e-9), ONLINE_MEAN)
        + log_beta(np.clip(disc, 1e-9, 1 - 1e-9), DISCOUNT_MEAN)
        + log_dir
        + log_norm(mu, SATISFACTION_MEAN, SATISFACTION_SPREAD)
    )
    return np.asarray(score.argmax(axis=1))


def _stream(config: WorldConfig, name: str) -> np.random.Generator:
    """A sub-stream of the customers domain for draws whose size depends on earlier draws."""
    return domain_rng(config, f"customers/{name}")


def _clv_truth(
    config: WorldConfig,
    pop: _Population,
    start: _State,
    cal: _Calendar,
    orders_truth: pd.DataFrame,
    drift: DriftSpec | None,
) -> pd.DataFrame:
    """Oracle expected spend over the 52 weeks after the cutoff (Monte Carlo over the weekly process)."""
    n_weeks = len(cal.week_ns)
    cutoff = n_weeks - CLV_WEEKS
    cutoff_ns = cal.week_ns[cutoff]
    eligible = (pop.signup_ns < cutoff_ns) & (start.closed_week > cutoff)
    idx = np.flatnonzero(eligible)
    pop_r = _Population(*(np.tile(v[idx], CLV_DRAWS) for v in vars(pop).values()))
    st = start.take(idx, CLV_DRAWS)
    factor = np.ones(n_weeks)
    if d := active(drift, "orders", "amount"):
        # share of each week's (uniform) order times at or after the drift start
        after = np.clip(
            (cal.week_ns + 7 * 86400e9 - d.start_ts.astype(np.int64)) / (7 * 86400e9), 0.0, 1.0
        )
        factor = 1 + d.magnitude * after
    rng = _stream(config, "clv")
    expected = np.zeros(len(pop_r.rate))
    for t in range(cutoff, n_weeks):
        out = _week(t, st, pop_r, cal, rng)
        expected += out["lam"] * pop_r.basket * factor[t]
    horizon_end = cutoff_ns + CLV_WEEKS * 7 * 86400 * 10**9
    o = orders_truth
    in_window = (o["ordered_at"].to_numpy().astype(np.int64) >= cutoff_ns) & (
        o["ordered_at"].to_numpy().astype(np.int64) < horizon_end
    )
    realized = o.loc[in_window].groupby("customer_id")["amount"].sum()
    ids = idx.astype("int64") + 1
    return pd.DataFrame(
        {
            "customer_id": ids,
            "cutoff_date": np.full(len(idx), cutoff_ns).astype("datetime64[ns]"),
            "expected_spend_12m": expected.reshape(CLV_DRAWS, len(idx)).mean(axis=0),
            "realized_spend_12m": realized.reindex(ids, fill_value=0.0).to_numpy(),
        }
    )


def generate_customers(
    config: WorldConfig, world: World, *, drift: DriftSpec | None = None
) -> None:
    """Add customers, customer_closures, orders and feedback (+ truth) to ``world``.

    Example:
        >>> world = World(config=WorldConfig()); generate_retail(WorldConfig(), world)  # doctest: +SKIP
        >>> generate_customers(WorldConfig(), world)                                     # doctest: +SKIP
    """
    rng = domain_rng(config, "customers")
    customers, customers_truth, pop, disc, pref_cdf = _draw_population(config, world, rng)
    cal = _calendar(config, drift)
    n, n_weeks = len(pop.rate), len(cal.week_ns)
    ring = np.zeros((QUARTER_WEEKS, n), dtype=np.int64)
    st = _State(
        np.zeros(n),
        np.zeros(n),
        np.zeros(n, dtype=np.int64),
        ring,
        ring.copy(),
        np.full(n, np.inf),
        np.zeros(n, dtype=np.int64),
    )
    mats = {
        k: np.zeros((n_weeks, n), dtype=np.int32)
        for k in ("orders", "online", "late", "negative", "neutral", "positive")
    }
    mats["sat"] = np.zeros((n_weeks, n), dtype=np.float32)
    mats["active"] = np.zeros((n_weeks, n), dtype=bool)
    snapshots: list[pd.DataFrame] = []
    cutoff = n_weeks - CLV_WEEKS
    clv_start = st
    for t in range(n_weeks):
        if t == cutoff:
            clv_start = st.take(slice(None))
        out = _week(t, st, pop, cal, rng)
        for key in mats:
            mats[key][t] = out[key]
        if "churn_p" in out:
            idx = np.flatnonzero(out["snapshot_active"])
            snapshots.append(
                pd.DataFrame(
                    {
                        "customer_id": idx.astype("int64") + 1,
                        "snapshot_date": np.full(len(idx), cal.week_ns[t]).astype("datetime64[ns]"),
                        "churn_probability_90d": out["churn_p"][idx],
                        "churned_90d": out["churned"][idx].astype("int8"),
                        "satisfaction": out["sat"][idx],
                        "satisfaction_ewma": out["sbar"][idx],
                        "drifted": np.full(len(idx), cal.churn_shift[t] != 0),
                    }
                )
            )
    orders, orders_truth = order_rows(
        config,
        world,
        mats=mats,
        week_ns=cal.week_ns,
        basket=pop.basket,
        discount_affinity=disc,
        pref_cdf=pref_cdf,
        home_store=customers["home_store_id"].to_numpy(),
        drift=drift,
    )
    fb, fb_truth = feedback_rows(config, mats=mats, week_ns=cal.week_ns)
    closed = np.flatnonzero(
        np.isfinite(st.closed_week) & (st.closed_ns < cal.week_ns[-1] + 7 * 86400 * 10**9)
    )
    closures = pd.DataFrame(
        {
            "customer_id": closed.astype("int64") + 1,
            "closed_at": st.closed_ns[closed].astype("datetime64[ns]"),
        }
    )
    closures = closures.sort_values("closed_at", kind="stable").reset_index(drop=True)
    churn_truth = pd.concat(snapshots, ignore_index=True)
    if d := active(drift, "customer_closures"):
        record_drift(
            world,
            d,
            table="customer_closures",
            column="closed_at",
            rows_affected=int(churn_truth["drifted"].sum()),
        )

    world.tables["customers"] = make_messy(
        customers,
        config=config,
        table="customers",
        rates=CUSTOMERS_MESS,
        event_column="signup_at",
        base_lag=pd.Timedelta(minutes=5),
        missing=["birth_year"],
        malformed=["birth_year"],
        unknown=["acquisition_channel"],
    )
    world.tables["customer_closures"] = make_messy(
        closures,
        config=config,
        table="customer_closures",
        rates=CLOSURES_MESS,
        event_column="closed_at",
        base_lag=pd.Timedelta(hours=1),
    )
    world.tables["orders"] = orders
    world.tables["feedback"] = fb
    world.truth["customers_truth"] = customers_truth
    world.truth["orders_truth"] = orders_truth
    world.truth["feedback_truth"] = fb_truth
    world.truth["customer_churn_truth"] = churn_truth
    world.truth["customer_clv_truth"] = _clv_truth(config, pop, clv_start, cal, orders_truth, drift)
