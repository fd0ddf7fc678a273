"""Risk: daily market series with GARCH volatility, credit applications and outcomes, site operations.

Market (instrument i, trading day t; common factor f_t, intraday shocks e_itk, k = 1..INTRADAY):

    s2_it = omega_i + alpha_i r_i,t-1**2 + beta_i s2_i,t-1          GARCH(1,1), s_L ~ U(0.008, 0.02)
    v_it  ~ N(0, VOL_SHOCK);   sigma_it = sqrt(s2_it) * exp(v_it - VOL_SHOCK**2 / 2)   (vol of vol)
    z_itk = 0.5 f_tk + sqrt(0.75) e_itk;   r_it = sigma_it * sum_k z_itk / sqrt(INTRADAY)
    realized_vol_it = sigma_it * sqrt(sum_k z_itk**2 / INTRADAY)
    oracle next-day volatility (known at t): sqrt(s2_i,t+1) * E[sqrt(chi2_K / K)]

Credit (application a; standardised inputs x; latent character c ~ N(0, 1) not observed):

    n_delinquencies ~ Poisson(0.25 exp(0.6 c)),  utilization ~ Beta(2 exp(0.3 c), 3)
    logit PD = CREDIT_INTERCEPT + SCORE_SCALE * (0.9 x_dti + 0.8 x_util + 0.5 n_delinq - 0.6 x_log_income
               - 0.4 x_history - 0.25 x_employment + 0.35 x_log(loan/income) + PURPOSE_OFFSET
               + 0.3 [60 months]) + MACRO_COEF * market stress (30-day mean realized vol, standardised)
               + LATENT_COEF * c
    defaulted_12m ~ Bernoulli(PD); observed only for approved loans a full year old
    approval: a legacy score (the observable part of the logit + N(0, 0.5)) below its APPROVAL_SHARE quantile

Operations (site = store s, day d):

    R_sd = OPS_RHO R_s,d-1 + N(0, OPS_SIGMA);  level_sd = b_s + R_sd,  b_s ~ N(FORMAT_RISK, 0.5)
    alarms ~ Poisson(1.5 e^(0.8 level)), near_misses ~ Poisson(0.8 e^level),
    maintenance_backlog ~ Poisson(3 e^(0.5 level)), overtime_hours ~ Gamma(2, 1.5 e^(0.3 level)),
    staff_absent ~ Poisson((1 + 0.5 weekend) e^(0.2 level)), temperature_excursions ~ Poisson(0.1 (1 + summer))
    h_sd = sigmoid(INCIDENT_INTERCEPT + INCIDENT_COEF level_sd + 0.3 weekend + 0.3 temperature_excursions)
    incident_sd ~ Bernoulli(h_sd);  oracle P(incident within next 7 days) = 1 - prod_{k=1..7} (1 - h_s,d+k)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, gamma

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.drift import NEW_CATEGORY, DriftSpec, active, record_drift
from raycore.data.world.mess import MessRates, make_messy

__all__ = [
    "APPLICATIONS_MESS",
    "INCIDENTS_MESS",
    "MARKET_MESS",
    "OPS_MESS",
    "OUTCOMES_MESS",
    "generate_risk",
]

INTRADAY, VOL_SHOCK = 24, 0.22
ASSET_CLASSES = ("equity", "fx", "commodity", "rates")
PURPOSES = ("debt_consolidation", "home_improvement", "car", "business", "medical", "other")
PURPOSE_OFFSET = np.array([0.1, -0.2, -0.3, 0.4, 0.3, 0.0, 0.6])  # last: the drift's new category
CREDIT_INTERCEPT, MACRO_COEF, LATENT_COEF, SCORE_SCALE, APPROVAL_SHARE = -3.0, 0.3, 0.5, 1.4, 0.8
HOME = ("rent", "mortgage", "own")
FORMAT_RISK = {"mall": -0.2, "street": 0.0, "outlet": 0.3}
INCIDENT_INTERCEPT, INCIDENT_COEF, OPS_RHO, OPS_SIGMA = -6.6, 2.2, 0.985, 0.08
SEVERITY = ("low", "medium", "high")

MARKET_MESS = MessRates(missing=0.005, malformed=0.002, late=0.01, duplicate=0.005)
APPLICATIONS_MESS = MessRates(
    missing=0.015, outlier=0.003, malformed=0.002, unknown_category=0.01, late=0.01, duplicate=0.005
)
OUTCOMES_MESS = MessRates(late=0.02, duplicate=0.005)
OPS_MESS = MessRates(missing=0.01, malformed=0.002, late=0.02, duplicate=0.005)
INCIDENTS_MESS = MessRates(unknown_category=0.01, late=0.03, duplicate=0.01)

_DAY_NS = 86400 * 10**9


def _market(
    config: WorldConfig, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    n = config.size("n_instruments")
    days = pd.date_range(config.start, periods=config.size("n_weeks") * 7, freq="D")
    days = days[days.weekday < 5]
    n_t = len(days)
    alpha = rng.uniform(0.05, 0.10, n)
    beta = np.minimum(rng.uniform(0.85, 0.92, n), 0.975 - alpha)
    long_run = rng.uniform(0.008, 0.02, n)
    omega = long_run**2 * (1 - alpha - beta)
    f = rng.normal(size=(n_t, 1, INTRADAY))
    z = 0.5 * f + np.sqrt(0.75) * rng.normal(size=(n_t, n, INTRADAY))
    shock = np.exp(VOL_SHOCK * rng.normal(size=(n_t, n)) - VOL_SHOCK**2 / 2)
    s2 = np.zeros((n_t + 1, n))
    s2[0] = long_run**2
    ret = np.zeros((n_t, n))
    for t in range(n_t):  # GARCH recursion: loop over days, vectorised over instruments
        sigma = np.sqrt(s2[t]) * shock[t]
        ret[t] = sigma * z[t].sum(axis=1) / np.sqrt(INTRADAY)
        s2[t + 1] = omega + alpha * ret[t] ** 2 + beta * s2[t]
    rv = np.sqrt(s2[:n_t]) * shock * np.sqrt((z**2).mean(axis=2))
    chi_mean = np.sqrt(2 / INTRADAY) * gamma((INTRADAY + 1) / 2) / gamma(INTRADAY / 2)
    close = 100 * np.exp(np.cumsum(ret, axis=0))
    volume = np.round(1e6 * np.exp(rng.normal(0, 0.3, (n_t, n))) * (rv / long_run[None, :]) ** 0.7)
    t_idx, i_idx = np.divmod(np.arange(n_t * n), n)
    iid = np.arange(1, n + 1, dtype="int64")
    instruments = pd.DataFrame(
        {
            "instrument_id": iid,
            "ticker": [f"INS{i:03d}" for i in iid],
            "asset_class": np.asarray(ASSET_CLASSES, dtype=object)[
                rng.integers(0, len(ASSET_CLASSES), n)
            ],
        }
    )
    frame = pd.DataFrame(
        {
            "instrument_id": iid[i_idx],
            "trade_date": days.to_numpy()[t_idx],
            "close": np.round(close.ravel(), 4),
            "daily_return": ret.ravel(),
            "realized_vol": rv.ravel(),
            "volume": volume.ravel(),
        }
    )
    truth = pd.DataFrame(
        {
            "instrument_id": frame["instrument_id"],
            "trade_date": frame["trade_date"],
            "conditional_vol": np.sqrt(s2[:n_t]).ravel(),
            "oracle_next_day_vol": (np.sqrt(s2[1:]) * chi_mean).ravel(),
        }
    )
    stress = pd.Series(rv.mean(axis=1), index=days).rolling(30, min_periods=1).mean()
    stress = (stress - stress.mean()) / stress.std()
    return (
        instruments,
        frame,
        truth,
        stress.reindex(pd.date_range(days[0], days[-1] + pd.Timedelta(days=2), freq="D")).ffill(),
    )


def _credit(
    config: WorldConfig,
    world: World,
    rng: np.random.Generator,
    stress: pd.Series,
    drift: DriftSpec | None,
) -> tuple[pd.DataFrame, ...]:
    n, n_days = config.size("n_applications"), config.size("n_weeks") * 7
    start_ns = pd.Timestamp(config.start).value
    applied_ns = np.sort(start_ns + (rng.uniform(0, n_days, n) * 86400).astype(np.int64) * 10**9)
    applied = applied_ns.astype("datetime64[ns]")
    c = rng.normal(size=n)
    income = np.exp(rng.normal(np.log(55_000), 0.5, n) - 0.1 * c)
    employment = rng.gamma(2.0, 3.0, n)
    dti = 0.8 * rng.beta(2.0, 5.0, n) * np.exp(0.1 * c)
    history = rng.gamma(3.0, 3.0, n)
    delinq = rng.poisson(0.25 * np.exp(0.6 * c))
    util = rng.beta(2.0 * np.exp(0.3 * c), 3.0)
    loan = income * rng.uniform(0.05, 0.5, n)
    term60 = rng.random(n) < 0.35
    purpose = rng.choice(len(PURPOSES), n, p=[0.35, 0.15, 0.15, 0.1, 0.1, 0.15])
    home = rng.integers(0, len(HOME), n)
    u_default, u_noise, u_new, u_day = (
        rng.random(n),
        rng.normal(0, 0.5, n),
        rng.random(n),
        rng.random(n),
    )
    region = world.tables["regions"]["region_id"].to_numpy()[
        rng.integers(0, len(world.tables["regions"]), n)
    ]
    drifted = np.zeros(n, dtype=bool)
    changed: dict[str, np.ndarray] = {}  # column -> rows the drift changed
    if d := active(drift, "credit_applications", "annual_income"):
        changed["annual_income"] = d.after(applied)
        income = np.where(changed["annual_income"], income * np.exp(-d.magnitude), income)
    if d := active(drift, "credit_applications", "debt_to_income"):
        changed["debt_to_income"] = d.after(applied)
        dti = np.where(changed["debt_to_income"], dti * (1 + d.magnitude), dti)
    if d := active(drift, "credit_applications", "loan_purpose"):
        changed["loan_purpose"] = d.after(applied) & (u_new < d.magnitude)
        purpose = np.where(changed["loan_purpose"], len(PURPOSES), purpose)
    for col, hit in changed.items():
        drifted |= hit
        if drift is not None:
            record_drift(
                world, drift, table="credit_applications", column=col, rows_affected=int(hit.sum())
            )

    def zs(v: np.ndarray, mean: float, sd: float) -> np.ndarray:  # fixed reference standardisation
        return (v - mean) / sd

    macro = stress.reindex(pd.DatetimeIndex(applied).normalize()).fillna(0.0).to_numpy()
    observable = (
        0.9 * zs(dti, 0.23, 0.12)
        + 0.8 * zs(util, 0.4, 0.2)
        + 0.5 * delinq
        - 0.6 * zs(np.log(income), np.log(55_000), 0.5)
        - 0.4 * zs(history, 9.0, 5.2)
        - 0.25 * zs(employment, 6.0, 4.2)
        + 0.35 * zs(np.log(loan / income), -1.8, 0.6)
        + PURPOSE_OFFSET[purpose]
        + 0.3 * term60
    )
    logit = CREDIT_INTERCEPT + SCORE_SCALE * observable + MACRO_COEF * macro + LATENT_COEF * c
    concept = np.zeros(n, dtype=bool)
    if d := active(drift, "credit_outcomes"):
        concept = d.after(applied)
        logit = logit + 2 * d.magnitude * concept
        record_drift(
            world,
            d,
            table="credit_outcomes",
            column="defaulted_12m",
            rows_affected=int(concept.sum()),
        )
    pd_true = expit(logit)
    default = u_default < pd_true
    legacy = observable + u_noise
    approved = legacy <= np.quantile(legacy, APPROVAL_SHARE)
    aid = np.arange(1, n + 1, dtype="int64")
    purposes = np.asarray(
        (*PURPOSES, NEW_CATEGORY[("credit_applications", "loan_purpose")]), dtype=object
    )
    apps = pd.DataFrame(
        {
            "application_id": aid,
            "applied_at": applied,
            "region_id": region.astype("int64"),
            "annual_income": np.round(income, 0),
            "employment_years": np.round(employment, 1),
            "debt_to_income": np.round(dti, 4),
            "credit_history_years": np.round(history, 1),
            "n_delinquencies_2y": delinq.astype("int64"),
            "revolving_utilization": np.round(util, 4),
            "loan_amount": np.round(loan, -2),
            "loan_term_months": np.where(term60, 60, 36).astype("int64"),
            "loan_purpose": purposes[purpose],
            "home_ownership": np.asarray(HOME, dtype=object)[home],
            "decision": np.where(approved, "approved", "declined").astype(object),
        }
    )
    end_ns = start_ns + n_days * _DAY_NS
    observed = approved & (applied_ns + 365 * _DAY_NS <= end_ns)
    idx = np.flatnonzero(observed)
    default_day = 30 + (u_day[idx] * 335).astype(np.int64)
    outcomes = (
        pd.DataFrame(
            {
                "application_id": aid[idx],
                "observed_at": (applied_ns[idx] + 365 * _DAY_NS).astype("datetime64[ns]"),
                "defaulted_12m": default[idx].astype("int8"),
                "default_date": np.where(
                    default[idx], applied_ns[idx] + default_day * _DAY_NS, np.iinfo(np.int64).min
                ).astype("datetime64[ns]"),
            }
        )
        .sort_values("observed_at", kind="stable")
        .reset_index(drop=True)
    )
    truth = pd.DataFrame(
        {
            "application_id": aid,
            "pd_12m": pd_true,
            "defaulted_12m": default.astype("int8"),
            "latent_character": c,
            "drifted": drifted | concept,
        }
    )
    return apps, outcomes, truth


def _operations(
    config: WorldConfig, world: World, rng: np.random.Generator
) -> tuple[pd.DataFrame, ...]:
    stores = world.tables["stores"]
    n_s = len(stores)
    days = pd.date_range(config.start, periods=config.size("n_weeks") * 7, freq="D")
    n_d = len(days)
    base = rng.normal(stores["store_format"].map(FORMAT_RISK).to_numpy(), 0.5)
    eps = rng.normal(0.0, OPS_SIGMA, (n_d + 7, n_s))
    r = np.zeros((n_d + 7, n_s))
    for t in range(n_d + 7):  # AR(1) latent risk: loop over days, vectorised over sites
        r[t] = OPS_RHO * r[t - 1] + eps[t] if t else eps[t] / np.sqrt(1 - OPS_RHO**2)
    level = base[None, :] + r
    weekday = np.r_[
        days.weekday.to_numpy(),
        (days[-1] + pd.to_timedelta(np.arange(1, 8), unit="D")).weekday.to_numpy(),
    ]
    weekend = (weekday >= 5)[:, None].astype(float)
    month = np.r_[days.month.to_numpy(), np.full(7, days[-1].month)]
    summer = np.isin(month, (6, 7, 8))[:, None].astype(float)
    temp_exc = rng.poisson(0.1 * (1 + summer) * np.ones((1, n_s)))
    h = expit(INCIDENT_INTERCEPT + INCIDENT_COEF * level + 0.3 * weekend + 0.3 * temp_exc)
    incident = rng.random((n_d + 7, n_s)) < h
    alarms = rng.poisson(1.5 * np.exp(0.8 * level[:n_d]))
    near = rng.poisson(0.8 * np.exp(level[:n_d]))
    backlog = rng.poisson(3.0 * np.exp(0.5 * level[:n_d]))
    overtime = np.round(rng.gamma(2.0, 1.5 * np.exp(0.3 * level[:n_d])), 1)
    absent = rng.poisson((1 + 0.5 * weekend[:n_d]) * np.exp(0.2 * level[:n_d]))
    log_keep = np.log1p(-h)
    csum = np.vstack([np.zeros((1, n_s)), np.cumsum(log_keep, axis=0)])
    p_next7 = 1 - np.exp(csum[8 : n_d + 8] - csum[1 : n_d + 1])  # days d+1 .. d+7
    sid = stores["store_id"].to_numpy()
    t_idx, s_idx = np.divmod(np.arange(n_d * n_s), n_s)
    ops = pd.DataFrame(
        {
            "store_id": sid[s_idx].astype("int64"),
            "date": days.to_numpy()[t_idx],
            "alarms": alarms.ravel().astype("int64"),
            "near_misses": near.ravel().astype("int64"),
            "maintenance_backlog": backlog.ravel().astype("int64"),
            "overtime_hours": overtime.ravel(),
            "staff_absent": absent.ravel().astype("int64"),
            "temperature_excursions": temp_exc[:n_d].ravel().astype("int64"),
        }
    )
    truth = pd.DataFrame(
        {
            "store_id": ops["store_id"],
            "date": ops["date"],
            "risk_level": level[:n_d].ravel(),
            "incident_probability": h[:n_d].ravel(),
            "p_incident_next_7d": p_next7.ravel(),
        }
    )
    it, is_ = np.nonzero(incident[:n_d])
    m = len(it)
    u = rng.random((m, 2))
    occurred = days.to_numpy().astype("datetime64[ns]")[it] + (u[:, 0] * 86400).astype(
        np.int64
    ).astype("timedelta64[s]")
    incidents = pd.DataFrame(
        {
            "incident_id": np.arange(1, m + 1, dtype="int64"),
            "store_id": sid[is_].astype("int64"),
            "occurred_at": occurred.astype("datetime64[ns]"),
            "severity": np.asarray(SEVERITY, dtype=object)[
                np.minimum((u[:, 1] ** 1.5 * 3).astype(int), 2)
            ],
        }
    )
    return ops, truth, incidents


def generate_risk(config: WorldConfig, world: World, *, drift: DriftSpec | None = None) -> None:
    """Add market, credit and site-operations tables (+ truth) to ``world``.

    Example:
        >>> generate_risk(WorldConfig(), world)  # doctest: +SKIP  (after retail)
    """
    rng = domain_rng(config, "risk")
    instruments, market, market_truth, stress = _market(config, rng)
    apps, outcomes, credit_truth = _credit(config, world, rng, stress, drift)
    ops, ops_truth, incidents = _operations(config, world, rng)
    t = world.tables
    t["instruments"] = instruments
    t["market_daily"] = make_messy(
        market,
        config=config,
        table="market_daily",
        rates=MARKET_MESS,
        event_column="trade_date",
        base_lag=pd.Timedelta(hours=18),
        missing=["realized_vol"],
        malformed=["close"],
    )
    t["credit_applications"] = make_messy(
        apps,
        config=config,
        table="credit_applications",
        rates=APPLICATIONS_MESS,
        event_column="applied_at",
        base_lag=pd.Timedelta(minutes=1),
        missing=["employment_years", "revolving_utilization"],
        outlier=["annual_income"],
        malformed=["annual_income"],
        unknown=["home_ownership"],
    )
    t["credit_outcomes"] = make_messy(
        outcomes,
        config=config,
        table="credit_outcomes",
        rates=OUTCOMES_MESS,
        event_column="observed_at",
        base_lag=pd.Timedelta(days=2),
    )
    t["site_daily_ops"] = make_messy(
        ops,
        config=config,
        table="site_daily_ops",
        rates=OPS_MESS,
        event_column="date",
        base_lag=pd.Timedelta(days=1),
        missing=["overtime_hours"],
        malformed=["alarms"],
    )
    t["incidents"] = make_messy(
        incidents,
        config=config,
        table="incidents",
        rates=INCIDENTS_MESS,
        event_column="occurred_at",
        base_lag=pd.Timedelta(hours=4),
        unknown=["severity"],
    )
    world.truth["market_daily_truth"] = market_truth
    world.truth["credit_applications_truth"] = credit_truth
    world.truth["site_daily_ops_truth"] = ops_truth
