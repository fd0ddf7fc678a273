"""The product feature views, estimators and evaluators (mdl-006, 009-012, 016-018).

Views: the batch path (point-in-time join + compute) equals the serving path
(online store + request), and no value is used before it arrived. Estimators and
evaluators: synthetic cases whose right answer is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from raycore.catalog import load_catalog
from raycore.data.world import World, WorldConfig
from raycore.data.world.products import generate_products
from raycore.data.world.retail import generate_retail
from raycore.errors import DataError
from raycore.features import get_feature_view
from raycore.features.assembly import assemble_online
from raycore.features.online import SqliteOnlineStore, materialize_online
from raycore.features.view import AS_OF, FeatureView
from raycore.features.views.products import (
    COMPETITOR_PRICE_HISTORY,
    FIT_ELASTICITY_PRIOR,
    FIT_MIN_WEEKS,
    PRODUCT_DEMAND_FIT,
    PROMO_TYPES,
)
from raycore.models.custom.products import (
    LogLogElasticity,
    SeasonalDecomposition,
    TLearner,
    recommend_price,
)
from raycore.training.evaluation import EvalContext, get_evaluator
from raycore.training.evaluators.products import true_revenue

WEEK = pd.Timedelta(days=7)
N_PRODUCTS = 60  # a slice of the small world keeps the module fast
SOURCES = {
    "product_weekly_demand": "product_demand_weekly",
    "promotion_uplift": "product_demand_weekly",
    "product_price_response": "product_demand_weekly",
    "product_seasonality": "product_demand_weekly",
    "product_price_elasticity": "product_demand_weekly",
    "regional_demand_share": "regional_demand_weekly",
    "new_product_attributes": "product_demand_weekly",
    "competitor_price_next": "competitor_prices",
}


def _silver_like(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What the silver layer keeps of the messy world tables (the rules of the dataset specs), for a slice."""
    keys = {
        "products": ["product_id"],
        "product_prices_daily": ["product_id", "date"],
        "promotions": ["promotion_id"],
        "competitor_prices": ["product_id", "competitor", "week_start"],
        "product_demand_weekly": ["product_id", "week_start"],
        "regional_demand_weekly": ["region_id", "product_id", "week_start"],
    }
    out = {}
    for name, pk in keys.items():
        t = tables[name]
        t = t[t["product_id"] <= N_PRODUCTS].drop_duplicates(pk, keep="first")
        if name == "products":
            t = t[t["category"].isin(["grocery", "home", "electronics", "apparel", "beauty", "toys"])]
        if name == "promotions":
            t = t[t["promo_type"].isin(PROMO_TYPES)]
        for col in ("units", "price"):
            if col in t.columns:
                t = t[t[col].notna() & (t[col] >= 0) & (t[col] < 900_000)]
        out[name] = t.reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def silver() -> dict[str, pd.DataFrame]:
    # Only the domains the product tables need (every domain has its own random stream: same tables).
    config = WorldConfig(seed=7, scale="small")
    world = World(config=config)
    generate_retail(config, world)
    generate_products(config, world)
    return _silver_like(world.tables)


@pytest.fixture(scope="module")
def built(silver: dict[str, pd.DataFrame]) -> dict[str, tuple[pd.DataFrame, dict[str, pd.DataFrame]]]:
    """Per view: the training rows of the batch path, and the materialised feature tables."""
    out = {}
    cache: dict[str, pd.DataFrame] = {}
    for name, source in SOURCES.items():
        view = get_feature_view(name)
        assert view.label_rows is not None
        if view.label_sources:
            labels = view.label_rows(silver[source], {n: silver[n] for n in view.label_sources})
        else:
            labels = view.label_rows(silver[source])
        tables = {}
        for t in view.tables:
            if t.name not in cache:
                cache[t.name] = t.materialize(silver[t.source])
            tables[t.name] = cache[t.name]
        out[name] = (view.training_frame(labels, tables).rows, tables)
    return out


def _serving_rows(view: FeatureView, rows: pd.DataFrame, tables: dict[str, pd.DataFrame], path: Path) -> pd.DataFrame:
    """Raw rows as serving builds them: request + the online store materialised at the rows' as_of."""
    when = pd.Timestamp(rows[AS_OF].iloc[0])
    store = SqliteOnlineStore(path)
    try:
        for table in view.tables:
            materialize_online(table, tables[table.name], store=store, as_of=when)
        request = rows[[f.name for f in (*view.entity, *view.request)]]
        return assemble_online(view, request, online=store)
    finally:
        store.close()


@pytest.mark.parametrize("name", list(SOURCES))
def test_serving_path_gives_the_training_features(name: str, built: Any, tmp_path: Path) -> None:
    rows, tables = built[name]
    view = get_feature_view(name)
    assert (
        len(rows) > 30 and not rows[view.input_names].drop(columns=["comp_price"], errors="ignore").isna().any().any()
    )
    # One prediction time, as a serving call would be made; a week in the second half of the data.
    when = np.sort(rows[AS_OF].unique())[len(rows[AS_OF].unique()) * 2 // 3]
    at = rows[rows[AS_OF] == when].head(40).reset_index(drop=True)
    served = _serving_rows(view, at, tables, tmp_path / "online.db")
    batch = view.compute(at)
    online = view.compute(served)
    np.testing.assert_allclose(online.to_numpy(dtype="float64"), batch.to_numpy(dtype="float64"), rtol=1e-12)
    # And one row at a time equals the batch (no statistics over the batch in transform).
    for i in (0, len(at) - 1):
        one = view.compute(at.iloc[[i]].reset_index(drop=True)).to_numpy(dtype="float64")[0]
        np.testing.assert_allclose(one, batch.to_numpy(dtype="float64")[i], rtol=1e-12)


def test_json_shaped_request_gives_the_same_features(built: Any) -> None:
    rows, _ = built["product_weekly_demand"]
    view = get_feature_view("product_weekly_demand")
    sample = rows.head(20)
    as_json = pd.DataFrame(
        [
            {k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
            for r in sample[view.input_names].to_dict("records")
        ]
    )
    np.testing.assert_allclose(view.compute(as_json).to_numpy(), view.compute(sample).to_numpy(), atol=1e-12)


def test_requests_the_view_cannot_score_are_refused_with_the_reason(built: Any) -> None:
    rows, _ = built["product_weekly_demand"]
    view = get_feature_view("product_weekly_demand")
    row = rows.head(1).copy()
    with pytest.raises(DataError, match="promo_type 'bogo' must be one of"):
        view.compute(row.assign(promo_type="bogo"))
    with pytest.raises(DataError, match="1 to 6 weeks after"):
        view.compute(row.assign(week_start=row["demand_origin_week"] + 10 * WEEK))


@pytest.mark.parametrize(
    ("name", "origin", "lag"),
    [
        ("product_weekly_demand", "demand_origin_week", WEEK),
        ("regional_demand_share", "share_origin_week", pd.Timedelta(days=8)),
        ("competitor_price_next", "comp_origin_week", pd.Timedelta(days=2)),
        ("competitor_price_next", "price_date", -pd.Timedelta(days=1)),
    ],
)
def test_feature_rows_were_known_at_prediction_time(name: str, origin: str, lag: pd.Timedelta, built: Any) -> None:
    rows, _ = built[name]
    assert (rows[origin] + lag <= rows[AS_OF]).all()


def test_demand_week_arriving_late_is_not_used_before_it_arrives(silver: dict[str, pd.DataFrame]) -> None:
    demand = silver["product_demand_weekly"].copy()
    pid = int(demand["product_id"].value_counts().index[0])
    w = pd.Timestamp(demand.loc[demand["product_id"] == pid, "week_start"].sort_values().iloc[60])
    hit = (demand["product_id"] == pid) & (demand["week_start"] == w)
    late_value = float(demand.loc[hit, "units"].iloc[0])
    demand.loc[hit, "available_at"] = w + 4 * WEEK  # three weeks later than usual
    view = get_feature_view("product_weekly_demand")
    tables = {
        t.name: t.materialize(demand if t.source == "product_demand_weekly" else silver[t.source]) for t in view.tables
    }
    labels = pd.DataFrame(
        {
            "product_id": pid,
            "week_start": [w + 3 * WEEK, w + 5 * WEEK],
            "list_price": 10.0,
            "discount_pct": 0.0,
            "promo_type": "none",
            "units": 1.0,
            AS_OF: [w + 3 * WEEK - pd.Timedelta(days=1), w + 5 * WEEK - pd.Timedelta(days=1)],
        }
    )
    joined = view.training_frame(labels, tables).rows
    # Before week w arrived, every feature row computed from it is invisible: the origin falls back before w.
    assert joined.loc[0, "demand_origin_week"] < w
    assert late_value not in joined.loc[0, [f"units_lag_{j}" for j in range(1, 5)]].tolist()
    # Once it has arrived, the newest origin is used.
    assert joined.loc[1, "demand_origin_week"] >= w + 2 * WEEK
    # The demand fit follows the same rule: no fit row whose weeks include w before w arrived.
    assert joined.loc[0, "fit_origin_week"] < w
    assert joined.loc[1, "fit_origin_week"] >= w + 2 * WEEK


def _fit_panel(n_weeks: int = 120, seed: int = 0, price_step: float = 0.2) -> tuple[pd.DataFrame, dict[str, float]]:
    """Weekly units of one product with a known price elasticity and yearly cycle, promotions and noise."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2023-01-02", periods=n_weeks, freq="7D")
    woy = weeks.isocalendar().week.to_numpy().astype("float64")
    angle = 2 * np.pi * woy / 52.18
    truth = {"elasticity": -2.0, "sin": 0.2, "cos": -0.1, "holiday": 0.4}
    list_price = 10.0 * np.exp(np.cumsum(rng.normal(0, price_step, n_weeks)))
    promo = rng.random(n_weeks) < 0.1
    price = list_price * np.where(promo, 0.8, 1.0)
    log_units = (
        np.log(500.0)
        + truth["elasticity"] * np.log(price / 10.0)
        + truth["sin"] * np.sin(angle)
        + truth["cos"] * np.cos(angle)
        + truth["holiday"] * np.isin(woy, (48, 49, 50, 51))
        + np.log1p(0.3 * promo)
    )
    units = np.round(np.exp(log_units + rng.normal(0, 0.02, n_weeks)))
    frame = pd.DataFrame({"product_id": 1, "week_start": weeks, "units": units, "revenue": units * price})
    return frame, truth


def test_demand_fit_recovers_a_known_elasticity_and_cycle() -> None:
    panel, truth = _fit_panel()
    fit = PRODUCT_DEMAND_FIT.materialize(panel)
    last = fit.iloc[-1]
    assert 40 <= last["fit_weeks"] < len(panel)  # promoted (and price-cut) weeks are left out
    # With list prices spread widely the data outweighs the prior (-1.5) ...
    assert last["fit_elasticity"] == pytest.approx(truth["elasticity"], abs=0.15)
    for term, tolerance in (("sin", 0.03), ("cos", 0.03), ("holiday", 0.1)):  # few holiday weeks
        assert last[f"fit_season_{term}"] == pytest.approx(truth[term], abs=tolerance)
    assert abs(last["fit_resid_13"]) < 0.1  # what the shrunk elasticity leaves over recent prices
    assert (fit.loc[fit["fit_weeks"] < FIT_MIN_WEEKS, ["fit_log_base", "fit_elasticity"]] == 0).all().all()
    # ... with little price movement it stays near the prior, and without any it keeps the prior.
    calm, _ = _fit_panel(price_step=0.05)
    assert truth["elasticity"] < PRODUCT_DEMAND_FIT.materialize(calm).iloc[-1]["fit_elasticity"] < -1.55
    flat, _ = _fit_panel(price_step=0.0)
    assert PRODUCT_DEMAND_FIT.materialize(flat).iloc[-1]["fit_elasticity"] == pytest.approx(FIT_ELASTICITY_PRIOR)


def test_demand_fit_uses_no_later_week() -> None:
    panel, _ = _fit_panel()
    fit = PRODUCT_DEMAND_FIT.materialize(panel)
    origin = panel["week_start"].iloc[70]
    changed = panel.copy()
    later = changed["week_start"] > origin
    changed.loc[later, "units"] = changed.loc[later, "units"] * 3
    again = PRODUCT_DEMAND_FIT.materialize(changed)
    pd.testing.assert_frame_equal(
        fit[fit["fit_origin_week"] <= origin].reset_index(drop=True),
        again[again["fit_origin_week"] <= origin].reset_index(drop=True),
    )
    assert not fit.iloc[-1].equals(again.iloc[-1])


def test_wrong_pack_scrapes_are_screened_out(silver: dict[str, pd.DataFrame]) -> None:
    comp = silver["competitor_prices"].copy()
    row = comp.index[(comp["product_id"] == comp["product_id"].iloc[0]) & (comp["competitor"] == "comp_a")][30]
    comp.loc[row, "price"] *= 20.0
    table = COMPETITOR_PRICE_HISTORY.materialize(comp)
    key = comp.loc[row, ["product_id", "competitor", "week_start"]]
    hit = table[
        (table["product_id"] == key["product_id"])
        & (table["competitor"] == key["competitor"])
        & (table["comp_origin_week"] == key["week_start"])
    ]
    assert hit.empty  # the week's only scrape was wrong: no feature row claims it as the latest price
    assert (table["comp_price_0"] / table["comp_median_8"]).max() < 2.5


def test_planned_promotions_become_request_inputs(built: Any, silver: dict[str, pd.DataFrame]) -> None:
    rows, _ = built["product_weekly_demand"]
    promos = silver["promotions"].rename(columns={"start_date": "week_start"})[
        ["product_id", "week_start", "promo_type"]
    ]
    merged = rows.merge(promos, on=["product_id", "week_start"], how="left", suffixes=("", "_plan"))
    planned = merged["promo_type_plan"].notna()
    assert (merged.loc[planned, "promo_type"] == merged.loc[planned, "promo_type_plan"]).all()
    assert (merged.loc[planned, "discount_pct"] >= 9.5).all()
    assert set(rows["promo_type"]) <= set(PROMO_TYPES)


def test_monotone_constraint_sits_on_the_price_feature() -> None:
    spec = load_catalog().get("mdl-011")
    view = get_feature_view(spec.features[0])
    constraints = spec.algorithm.params["monotone_constraints"]
    assert isinstance(constraints, list) and len(constraints) == len(view.feature_names)
    assert [view.feature_names[i] for i, c in enumerate(constraints) if c != 0] == ["log_price_rel"]
    assert constraints[view.feature_names.index("log_price_rel")] == -1


# --------------------------------------------------------------------------- estimators on synthetic data


def _panel(n_products: int = 60, n_weeks: int = 156, seed: int = 0) -> pd.DataFrame:
    """Weekly units with known seasonality, elasticity, promotion uplift and noise."""
    rng = np.random.default_rng(seed)
    weeks = np.arange(n_weeks)
    woy = (weeks % 52) + 1.0
    cat = rng.integers(0, 3, n_products)
    season = 1 + np.array([0.1, 0.2, 0.05])[cat][:, None] * np.sin(2 * np.pi * woy / 52.18)[None, :]
    season = season + np.array([0.3, 0.6, 0.1])[cat][:, None] * np.isin(woy, (48, 49, 50, 51))[None, :]
    elasticity = np.array([-1.0, -1.6, -2.2])[cat] * np.exp(rng.normal(0, 0.2, n_products))
    promo = rng.random((n_products, n_weeks)) < 0.1
    depth = np.where(promo, rng.choice([0.1, 0.2, 0.3], (n_products, n_weeks)), 0.0)
    display = promo & (rng.random((n_products, n_weeks)) < 0.5)
    list_price = 10.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_products, n_weeks)), axis=1))
    comp = list_price * np.exp(rng.normal(0, 0.05, (n_products, n_weeks)))
    price = list_price * (1 - depth)
    mu = 500 * season * (price / 10.0) ** elasticity[:, None] * (1 + 0.3 * display) * (comp / 10.0) ** 0.5
    units = rng.poisson(mu * np.exp(rng.normal(0, 0.1, mu.shape)))
    p_idx, t_idx = np.meshgrid(np.arange(n_products), weeks, indexing="ij")
    return pd.DataFrame(
        {
            "product_id": (p_idx + 1).ravel().astype("float64"),
            "category_code": cat[p_idx].ravel().astype("float64"),
            "week_index": t_idx.ravel().astype("float64"),
            "week_of_year": woy[t_idx].ravel(),
            "age_weeks": 100.0 + t_idx.ravel(),
            "on_promo": promo.ravel().astype("float64"),
            "promo_display": display.ravel().astype("float64"),
            "promo_feature": np.zeros(mu.size),
            "log_list_price": np.log(list_price).ravel(),
            "log_price": np.log(price).ravel(),
            "log_comp_price": np.log(comp).ravel(),
            "units": units.ravel().astype("float64"),
            "season": season.ravel(),
            "elasticity": elasticity[p_idx].ravel(),
        }
    )


def test_seasonal_decomposition_recovers_the_seasonal_index() -> None:
    panel = _panel()
    model = SeasonalDecomposition().fit(panel, panel["units"].to_numpy())
    pred = model.predict(panel)
    mape = np.mean(np.abs(pred - panel["season"]) / panel["season"])
    assert mape < 0.03, mape
    assert np.mean(np.abs(1.0 - panel["season"]) / panel["season"]) > 0.05  # a flat index would fail


def test_loglog_elasticity_recovers_elasticities_and_pools_by_category() -> None:
    panel = _panel()
    model = LogLogElasticity(ramp_weeks=0).fit(panel, panel["units"].to_numpy())
    per = panel.drop_duplicates("product_id")
    pred = model.predict(per)
    mae = np.mean(np.abs(pred - per["elasticity"]))
    assert mae < 0.12, mae
    assert mae < np.mean(np.abs(per["elasticity"] - per["elasticity"].mean()))  # beats one number for all
    unseen = per.head(1).assign(product_id=9999.0)
    assert model.predict(unseen)[0] == pytest.approx(model.category_mean_[int(unseen["category_code"].iloc[0])])


def test_t_learner_recovers_a_known_uplift() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    x = pd.DataFrame({"size": rng.uniform(1, 3, n), "depth": rng.uniform(0.1, 0.3, n), "on_promo": rng.random(n) < 0.3})
    x["depth"] = x["depth"] * x["on_promo"]
    effect = 2.0 * x["size"] * x["depth"] * 5  # the promotion adds 10 x size x depth
    y = 10 * x["size"] + effect * x["on_promo"] + rng.normal(0, 0.5, n)
    with threadpool_limits(1):  # OpenMP threads are slow on a busy machine; Ray tasks fit with one as well
        model = TLearner(max_iter=80, max_leaf_nodes=15).fit(x.astype("float64"), y.to_numpy())
    treated = x[x["on_promo"]].astype("float64")
    pred = model.predict(treated)
    true = effect[x["on_promo"]].to_numpy()
    assert abs(pred.sum() - true.sum()) / true.sum() < 0.05
    assert np.mean(np.abs(pred - true)) / np.mean(true) < 0.25


def test_price_search_cuts_elastic_and_raises_inelastic_prices() -> None:
    rows = pd.DataFrame({"list_price": [10.0, 20.0, 5.0], "elasticity": [-0.6, -1.8, -1.3], "promo_type": "tpr"})

    def units(r: pd.DataFrame) -> np.ndarray:
        assert (r["promo_type"] == "none").all()  # the search prices without a promotion
        copies = len(r) // len(rows)  # candidates: one copy of the rows per price multiple
        base = np.tile(rows["list_price"].to_numpy(), copies)
        return (r["list_price"].to_numpy() / base) ** np.tile(rows["elasticity"].to_numpy(), copies)

    for method in ("curve", "grid"):
        m = recommend_price(units, rows, lower=0.8, upper=1.2, grid=21, method=method)
        np.testing.assert_allclose(m, [1.2, 0.8, 0.8])
    with pytest.raises(ValueError, match="lower <= 1 <= upper"):
        recommend_price(units, rows, lower=1.1, upper=1.2)


# --------------------------------------------------------------------------- evaluators


class _Bundle:
    """A test double of ModelBundle: predictions from a function of the raw rows."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fn(raw), dtype="float64")


def _context(model_id: str, bundle: _Bundle, holdout: pd.DataFrame, train: pd.DataFrame, **frames: Any) -> EvalContext:
    spec = load_catalog().get(model_id)
    return EvalContext(
        spec=spec,
        bundle=bundle,  # type: ignore[arg-type]
        train_rows=train,
        holdout_rows=holdout,
        truth=lambda name: frames[name],
        table=lambda name: frames[name],
        params=dict(spec.evaluation.params),
    )


def _pricing_world() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    weeks = pd.date_range("2025-01-06", periods=2, freq="7D")
    rows = pd.DataFrame(
        {
            "product_id": [1, 2, 1, 2],
            "week_start": np.repeat(weeks, 2),
            "list_price": 10.0,
            "units": 70.0,
            "promo_type": "none",
            "discount_pct": 0.0,
        }
    )
    days = pd.date_range("2025-01-06", periods=14)
    truth = pd.DataFrame(
        {
            "product_id": np.tile([1, 2], 14),
            "date": np.repeat(days, 2),
            "base_demand_at_reference": 10.0,
            "reference_price": 10.0,
            "elasticity": np.tile([-2.0, -0.5], 14),
        }
    )
    prices = truth[["product_id", "date"]].assign(list_price=10.0)
    return rows, {"product_prices_daily_truth": truth, "product_prices_daily": prices}


def test_true_revenue_follows_the_generating_equation() -> None:
    rows, frames = _pricing_world()
    rev = true_revenue(
        rows,
        np.array([0.8, 1.2, 1.0, 1.0]),
        truth=frames["product_prices_daily_truth"],
        prices=frames["product_prices_daily"],
    )
    np.testing.assert_allclose(rev, [7 * 10 * 0.8**-2 * 8.0, 7 * 10 * 1.2**-0.5 * 12.0, 700.0, 700.0])


def test_price_uplift_scores_a_perfect_demand_model_at_the_oracle() -> None:
    rows, frames = _pricing_world()
    elasticity = rows["product_id"].map({1: -2.0, 2: -0.5})

    def demand(raw: pd.DataFrame) -> np.ndarray:
        e = raw["product_id"].map({1: -2.0, 2: -0.5}).to_numpy()
        return 70.0 * (raw["list_price"].to_numpy() / 10.0) ** e

    good = get_evaluator("price_uplift")(_context("mdl-011", _Bundle(demand), rows, rows, **frames))
    assert good.metrics["revenue_uplift"] == pytest.approx(good.oracle["revenue_uplift"])
    assert good.metrics["revenue_uplift"] > 0.05
    flat = get_evaluator("price_uplift")(
        _context("mdl-011", _Bundle(lambda r: np.full(len(r), 70.0)), rows, rows, **frames)
    )
    # A model that sees no price response raises every price: a loss on the elastic product.
    assert flat.metrics["revenue_uplift"] < good.metrics["revenue_uplift"]
    assert elasticity.notna().all()


def test_promotion_uplift_compares_totals_with_the_counterfactual() -> None:
    week = pd.Timestamp("2025-01-06")
    holdout = pd.DataFrame(
        {"product_id": [1, 2, 3], "week_start": week, "promo_type": ["tpr", "display", "none"], "units": 1.0}
    )
    truth = pd.DataFrame(
        {
            "product_id": [1, 2, 3],
            "week_start": week,
            "expected_units": [150.0, 300.0, 100.0],
            "expected_units_no_promo": [100.0, 100.0, 100.0],
        }
    )
    bundle = _Bundle(lambda r: r["product_id"].map({1: 60.0, 2: 190.0, 3: 5.0}))
    res = get_evaluator("promotion_uplift")(
        _context("mdl-016", bundle, holdout, holdout, product_demand_weekly_truth=truth)
    )
    assert res.metrics["uplift_error"] == pytest.approx(0.0)  # 250 predicted vs 250 true incremental units
    assert res.metrics["uplift_wape"] == pytest.approx(20.0 / 250.0)


def test_elasticity_mae_scores_products_with_training_weeks() -> None:
    holdout = pd.DataFrame({"product_id": [1, 1, 2, 3], "category_code": 0.0})
    train = pd.DataFrame({"product_id": [1, 2]})
    truth = pd.DataFrame({"product_id": [1, 2, 3], "elasticity": [-1.0, -2.0, -3.0]})
    bundle = _Bundle(lambda r: r["product_id"].map({1: -1.2, 2: -2.0, 3: -1.5}))
    res = get_evaluator("elasticity_mae")(_context("mdl-012", bundle, holdout, train, products_truth=truth))
    assert res.metrics["mae"] == pytest.approx(0.1)
    assert "launched in the holdout" in res.notes
