"""Supply-chain feature views, route solver, censored stock estimator and evaluators (mdl-019 ... mdl-026).

- parity: rows built by the batch path (point-in-time join + compute) equal the
  rows the serving path builds from a request and the online store as of the
  same moment;
- leakage: changing every source value that was not yet known at prediction
  time changes no feature;
- estimators and evaluators on small cases whose answer is known.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from raycore.data.world import World, WorldConfig
from raycore.data.world.inventory import generate_inventory
from raycore.data.world.products import generate_products
from raycore.data.world.retail import generate_retail
from raycore.data.world.supply import generate_supply
from raycore.features import (
    SqliteOnlineStore,
    assemble_online,
    get_feature_view,
    materialize_online,
)
from raycore.features.table import AVAILABLE_AT
from raycore.features.view import AS_OF, FeatureView
from raycore.features.views.supply import (
    INVENTORY_STORE_DEMAND,
    SUPPLIER_DELIVERY_HISTORY,
    _known_windows,
)
from raycore.models.custom.supply import (
    CensoredDemandQuantile,
    RouteSolver,
    held_karp,
    nearest_neighbour,
    path_cost,
)
from raycore.training.evaluation import ORACLE_COLUMN, EvalContext
from raycore.training.evaluators.supply import route_eta_cost, service_level

VIEWS = (
    "stock_level_demand",
    "stockout_signals",
    "purchase_order_delay",
    "delivery_leg_eta",
    "batch_quality_signals",
    "supplier_risk_signals",
    "product_turnover_signals",
    "line_defect_signals",
)
# Primary keys of the tables the views read: silver keeps the first of each key.
KEYS = {
    "store_inventory_weekly": ["product_id", "store_id", "week_start"],
    "purchase_orders": ["po_id"],
    "promotions": ["promotion_id"],
    "supplier_products": ["product_id"],
    "supplier_assessments": ["supplier_id", "assessed_at"],
    "supplier_financials": ["supplier_id", "reported_at"],
    "suppliers": ["supplier_id"],
    "production_line_weekly": ["line_id", "week_start"],
    "production_batches": ["batch_id"],
    "delivery_runs": ["run_id"],
    "delivery_stops": ["stop_id"],
    "depots": ["depot_id"],
}
N_INVENTORY_PRODUCTS = 4  # a slice of the assortment keeps the store-week tables fast


def _silver_like(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """What the silver layer leaves of a messy world table (duplicates and broken values out)."""
    frame = frame.drop_duplicates(KEYS[name]).reset_index(drop=True)
    for col, lo, hi in (
        ("on_hand_start", 0, 100_000),
        ("quantity", 1, 200_000),
        ("defects", 0, 100_000),
        ("temperature_c", 30, 120),
        ("travel_minutes", 0, 400),
    ):
        if col in frame.columns:
            v = frame[col]
            frame = frame[v.isna() | v.between(lo, hi)]
    for col, allowed in (("shift", {"day", "night"}), ("vehicle_type", {"van", "truck"})):
        if col in frame.columns:
            frame = frame[frame[col].isin(allowed)]
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    # Only the domains these views read: every domain draws from its own stream, so the tables are
    # the ones generate_world(WorldConfig(seed=7)) gives, in a fifth of the time.
    config = WorldConfig(seed=7, scale="small")
    world = World(config=config)
    for generate in (generate_retail, generate_products, generate_supply, generate_inventory):
        generate(config, world)
    out = {name: _silver_like(name, world.tables[name]) for name in KEYS}
    inv = out["store_inventory_weekly"]
    keep = np.sort(inv["product_id"].unique())[:N_INVENTORY_PRODUCTS]
    out["store_inventory_weekly"] = inv[inv["product_id"].isin(keep)].reset_index(drop=True)
    return out


def _label_rows(view: FeatureView, frames: dict[str, pd.DataFrame], source: str) -> pd.DataFrame:
    assert view.label_rows is not None
    if view.label_sources:
        return view.label_rows(frames[source], {n: frames[n] for n in view.label_sources})
    return view.label_rows(frames[source])


SOURCES = {
    "stock_level_demand": "store_inventory_weekly",
    "stockout_signals": "store_inventory_weekly",
    "purchase_order_delay": "purchase_orders",
    "delivery_leg_eta": "delivery_stops",
    "batch_quality_signals": "production_batches",
    "supplier_risk_signals": "supplier_assessments",
    "product_turnover_signals": "store_inventory_weekly",
    "line_defect_signals": "production_line_weekly",
}


_BATCH: dict[str, tuple[pd.DataFrame, dict[str, pd.DataFrame]]] = {}


def _batch(view: FeatureView, frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Training rows of a view (label rows + point-in-time join) and its materialised tables (cached)."""
    if view.name not in _BATCH:
        labels = _label_rows(view, frames, SOURCES[view.name])
        tables = {t.name: t.materialize(frames[t.source]) for t in view.tables}
        _BATCH[view.name] = (view.training_frame(labels, tables).rows, tables)
    return _BATCH[view.name]


def _one_moment(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows predicted at one moment (the busiest one of the second half of the data)."""
    late = rows[rows[AS_OF] >= rows[AS_OF].quantile(0.5)]
    moment = late[AS_OF].value_counts().idxmax()
    return rows[rows[AS_OF] == moment].head(60).reset_index(drop=True)


def _as_request(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON-shaped request rows: times as ISO strings, numbers as Python numbers."""
    records = [
        {k: (v.isoformat() if isinstance(v, pd.Timestamp) else (None if pd.isna(v) else v)) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
    return pd.DataFrame(records)


@pytest.mark.parametrize("name", VIEWS)
def test_serving_path_equals_batch_path(name: str, frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    view = get_feature_view(name)
    rows, tables = _batch(view, frames)
    assert len(rows) > 0
    sample = _one_moment(rows)
    moment = pd.Timestamp(sample[AS_OF].iloc[0])
    store = SqliteOnlineStore(tmp_path / "online.db")
    try:
        for table in view.tables:
            materialize_online(table, tables[table.name], store=store, as_of=moment)
        request = _as_request(sample[[f.name for f in (*view.entity, *view.request)]])
        served = view.compute(assemble_online(view, request, online=store))
    finally:
        store.close()
    batch = view.compute(sample)
    np.testing.assert_allclose(served.to_numpy(dtype=float), batch.to_numpy(dtype=float), rtol=1e-9, atol=1e-9)
    # and one row at a time gives the same features as the batch
    one = view.compute(sample.iloc[[len(sample) - 1]].reset_index(drop=True))
    np.testing.assert_allclose(one.to_numpy(dtype=float)[0], batch.to_numpy(dtype=float)[-1], atol=1e-12)


def _garble_unknown(name: str, frame: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    """Every value not yet known at ``moment`` changed (rows that arrived later, deliveries after it)."""
    out = frame.copy()
    if AVAILABLE_AT in out.columns:
        later = (pd.to_datetime(out[AVAILABLE_AT]) > moment).to_numpy()
        for col in out.columns:
            if col in KEYS[name] or col == AVAILABLE_AT or not pd.api.types.is_numeric_dtype(out[col]):
                continue
            values = out[col].to_numpy(dtype="float64", na_value=np.nan)
            out[col] = np.where(later, np.round(values * 3 + 5), values)
    if name == "purchase_orders":
        after = (pd.to_datetime(out["delivered_at"]) > moment).to_numpy()
        out.loc[after, "delivered_at"] = out.loc[after, "delivered_at"] + pd.Timedelta(days=4)
    return out


@pytest.mark.parametrize("name", [v for v in VIEWS if v != "delivery_leg_eta"])
def test_values_not_known_at_prediction_time_are_not_used(name: str, frames: dict[str, pd.DataFrame]) -> None:
    view = get_feature_view(name)
    rows, before = _batch(view, frames)
    sample = _one_moment(rows)
    moment = pd.Timestamp(sample[AS_OF].iloc[0])
    labels = sample[[c for c in sample.columns if c not in {f.name for t in view.tables for f in t.fields}]]
    garbled = {n: _garble_unknown(n, f, moment) for n, f in frames.items()}
    tables = {t.name: t.materialize(garbled[t.source]) for t in view.tables}
    again = view.training_frame(labels, tables).rows
    assert len(again) == len(sample)
    np.testing.assert_allclose(
        view.compute(again).to_numpy(dtype=float),
        view.compute(sample).to_numpy(dtype=float),
        atol=1e-12,
    )
    # the garbling does reach the tables: materialised over all time they differ
    assert any(not before[t.name][t.field_names].equals(tables[t.name][t.field_names]) for t in view.tables), (
        "the leakage check did not change any later value"
    )


def test_known_windows_count_a_late_row_from_the_week_it_arrived() -> None:
    weeks = pd.date_range("2024-01-01", periods=6, freq="7D")
    frame = pd.DataFrame({"k": 1, "week_start": weeks, "v": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]})
    frame[AVAILABLE_AT] = frame["week_start"] + pd.Timedelta(days=7, hours=1)
    frame.loc[2, AVAILABLE_AT] = weeks[4] + pd.Timedelta(days=7, hours=1)  # week 2 arrives with week 4
    grid, sums = _known_windows(
        frame,
        entity=["k"],
        week=frame["week_start"],
        available=frame[AVAILABLE_AT],
        values={"v": frame["v"]},
        lengths=(3,),
    )
    s = dict(zip(grid["_week"], sums[3]["v"], strict=True))
    assert s[weeks[1]] == 3.0
    assert s[weeks[2]] == 3.0  # week 2 itself is not known yet
    assert s[weeks[3]] == 2.0 + 8.0
    assert s[weeks[4]] == 4.0 + 8.0 + 16.0  # it has arrived
    assert s[weeks[5]] == 8.0 + 16.0 + 32.0


def test_delivery_history_counts_an_order_once_it_is_delivered() -> None:
    ordered = pd.Timestamp("2024-03-05 10:00")
    pos = pd.DataFrame(
        {
            "po_id": [1, 2],
            "supplier_id": [9, 9],
            "product_id": [1, 2],
            "ordered_at": [ordered, ordered],
            "quantity": [100.0, 100.0],
            "promised_at": [ordered + pd.Timedelta(days=5)] * 2,
            "delivered_at": [ordered + pd.Timedelta(days=6), ordered + pd.Timedelta(days=25)],
            AVAILABLE_AT: [ordered + pd.Timedelta(hours=2)] * 2,
        }
    )
    hist = SUPPLIER_DELIVERY_HISTORY.materialize(pos).set_index("delivery_day")
    assert (hist[AVAILABLE_AT] == hist.index).all()
    day = pd.Timedelta(days=1)
    # both promised 03-10 10:00; one delivered 03-11 10:00: nothing is known before the next midnight
    assert hist.index.min() == pd.Timestamp("2024-03-12")
    first = hist.loc[pd.Timestamp("2024-03-12")]
    assert first["sup_orders_8"] == 1 and first["sup_delay_8"] == 1.0
    assert first["sup_overdue_orders"] == 1 and first["sup_overdue_days"] == pytest.approx(1 + 14 / 24)
    assert hist.loc[ordered.normalize() + 25 * day, "sup_orders_8"] == 1  # the slow one is still on its way
    done = hist.loc[ordered.normalize() + 26 * day]
    assert done["sup_orders_8"] == 2 and done["sup_delay_8"] == pytest.approx((1.0 + 20.0) / 2)
    assert done["sup_overdue_orders"] == 0


def test_store_demand_rows_are_available_when_the_week_closes(
    frames: dict[str, pd.DataFrame],
) -> None:
    table = INVENTORY_STORE_DEMAND.materialize(frames["store_inventory_weekly"])
    lag = table[AVAILABLE_AT] - table["demand_week"]
    assert (lag == pd.Timedelta(days=7, hours=6)).all()
    assert table[INVENTORY_STORE_DEMAND.field_names].notna().all().all()


# --- route solver -----------------------------------------------------------------------------


def _brute_force(cost: np.ndarray) -> float:
    n = cost.shape[0] - 1
    return min(path_cost(cost, list(p)) for p in itertools.permutations(range(1, n + 1)))


def test_held_karp_matches_brute_force_on_7_stops() -> None:
    rng = np.random.default_rng(3)
    for _ in range(4):
        cost = rng.uniform(1, 20, (8, 8))  # asymmetric
        np.fill_diagonal(cost, 0)
        best, order = held_karp(cost)
        assert sorted(order) == list(range(1, 8))
        assert best == pytest.approx(_brute_force(cost))
        assert path_cost(cost, order) == pytest.approx(best)


def test_solver_is_close_to_the_optimum_and_beats_nearest_neighbour() -> None:
    rng = np.random.default_rng(5)
    ratios, nn_ratios = [], []
    for _ in range(40):
        xy = rng.uniform(0, 30, (8, 2))
        cost = np.linalg.norm(xy[:, None] - xy[None], axis=2)
        best = held_karp(cost)[0]  # exact: checked against brute force above
        order = RouteSolver().solve(cost)
        assert sorted(order) == list(range(1, 8))
        ratios.append(path_cost(cost, order) / best)
        nn_ratios.append(path_cost(cost, nearest_neighbour(cost)) / best)
    assert min(ratios) >= 1 - 1e-9
    assert np.mean(ratios) <= 1.01 and max(ratios) <= 1.10
    assert np.mean(ratios) < np.mean(nn_ratios) - 0.02


# --- stock from censored sales ----------------------------------------------------------------


def _censored_sales(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = np.exp(rng.uniform(0.5, 3.0, n))
    demand = rng.negative_binomial(5, 5 / (5 + mu))
    stock = np.floor(mu * rng.uniform(1.0, 3.0, n))  # tight stock: about 1 week in 8 sells out
    level = mu * np.exp(rng.normal(0, 0.1, n))
    x = pd.DataFrame({"log_level": np.log(level), "noise": rng.normal(size=n), "stock_on_hand": stock})
    return x, np.minimum(demand, stock), demand


def test_censored_estimator_covers_95_percent_of_demand_where_a_sales_quantile_does_not() -> None:
    import lightgbm as lgb

    x, sold, _ = _censored_sales(12_000, seed=1)
    x_new, _, demand_new = _censored_sales(12_000, seed=2)
    assert 0.08 < np.mean(sold == x["stock_on_hand"]) < 0.25
    params = {"learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 100}
    est = CensoredDemandQuantile(quantile=0.95, num_boost_round=40, **params).fit(x, sold)
    served = np.mean(demand_new <= est.predict(x_new))
    assert abs(served - 0.95) <= 0.015, served
    assert 3.0 < est.shape_ < 9.0  # the generating shape is 5 (widened a little by the noisy level)
    plain = lgb.train(
        {"objective": "quantile", "alpha": 0.95, "verbose": -1, **params},
        lgb.Dataset(x[["log_level", "noise"]], sold),
        num_boost_round=40,
    )
    assert np.mean(demand_new <= plain.predict(x_new[["log_level", "noise"]])) < 0.93
    # the stock column never drives a prediction
    moved = x_new.assign(stock_on_hand=x_new["stock_on_hand"] * 10)
    np.testing.assert_array_equal(est.predict(moved), est.predict(x_new))


def test_censored_estimator_survives_pickling() -> None:
    import pickle

    x, sold, _ = _censored_sales(3_000, seed=4)
    est = CensoredDemandQuantile(num_boost_round=10).fit(x, sold)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(x), est.predict(x))


# --- evaluators -------------------------------------------------------------------------------


class _ConstantBundle:
    """Implements the bundle's predict() for an evaluator: a fixed function of the raw rows."""

    def __init__(self, fn: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.fn = fn

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fn(raw), dtype="float64")


def test_service_level_scores_true_demand_not_sales() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    keys = pd.DataFrame({"product_id": np.arange(n), "store_id": 1, "week_start": pd.Timestamp("2025-01-06")})
    demand = rng.poisson(10, n)
    stock = np.full(n, 15.0)
    holdout = keys.assign(units_sold=np.minimum(demand, 12), **{ORACLE_COLUMN: 15.0})
    spec = SimpleNamespace(
        id="mdl-019",
        label="units_sold",
        oracle=SimpleNamespace(keys=["product_id", "store_id", "week_start"]),
    )
    ctx = EvalContext(
        spec=spec,  # type: ignore[arg-type]
        bundle=_ConstantBundle(lambda raw: stock[: len(raw)]),  # type: ignore[arg-type]
        train_rows=holdout.head(0),
        holdout_rows=holdout,
        truth=lambda _name: keys.assign(demand=demand),
        table=lambda name: pytest.fail(f"service_level must not read {name}"),
        params={"target": 0.95},
    )
    result = service_level(ctx)
    expected = float(np.mean(demand <= 15))
    assert result.metrics["realised_service"] == pytest.approx(expected)
    assert result.metrics["service_level_error"] == pytest.approx(abs(expected - 0.95))
    assert result.metrics["observed_service"] == 1.0  # sales never exceed 12: they cannot show the misses
    assert result.oracle["realised_service"] == pytest.approx(expected)


def test_route_evaluator_finds_the_optimum_when_eta_is_proportional_to_distance() -> None:
    rng = np.random.default_rng(2)
    depots = pd.DataFrame({"depot_id": [1], "region_id": [1], "x_km": [50.0], "y_km": [50.0]})
    runs, stops = [], []
    stop_id = 0
    for run_id in range(1, 9):
        n = int(rng.integers(4, 8))
        runs.append(
            {
                "run_id": run_id,
                "depot_id": 1,
                "departed_at": pd.Timestamp("2025-03-03 07:00"),
                "vehicle_type": "van",
                "weather": "dry",
                "n_stops": n,
            }
        )
        for seq in range(1, n + 1):
            stop_id += 1
            x, y = 50 + rng.uniform(-15, 15, 2)
            stops.append(
                {
                    "stop_id": stop_id,
                    "run_id": run_id,
                    "stop_seq": seq,
                    "x_km": x,
                    "y_km": y,
                    "leg_distance_km": 5.0,
                    "travel_minutes": 10.0,
                }
            )
    runs_df, stops_df = pd.DataFrame(runs), pd.DataFrame(stops)
    holdout = stops_df.assign(**{ORACLE_COLUMN: 10.0})
    tables = {"delivery_runs": runs_df, "delivery_stops": stops_df, "depots": depots}
    ctx = EvalContext(
        spec=SimpleNamespace(id="mdl-022", label="travel_minutes"),  # type: ignore[arg-type]
        bundle=_ConstantBundle(lambda raw: 2.0 * raw["leg_distance_km"].to_numpy()),  # type: ignore[arg-type]
        train_rows=holdout.head(0),
        holdout_rows=holdout,
        truth=lambda _name: pd.DataFrame({"run_id": runs_df["run_id"], "region_speed_kmh": 40.0}),
        table=lambda name: tables[name],
        params={"max_stops": 9},
    )
    result = route_eta_cost(ctx)
    assert result.metrics["eta_mape"] == pytest.approx(0.0)
    assert result.metrics["routed_runs"] == 8
    assert 1.0 - 1e-9 <= result.metrics["route_cost_ratio"] <= 1.02
    assert result.metrics["driven_route_cost_ratio"] > result.metrics["route_cost_ratio"]
