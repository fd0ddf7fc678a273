"""Marketing and risk feature views, their estimators and evaluators (mdl-013 ... mdl-015, mdl-027 ... mdl-030).

- parity: rows built by the batch path (label rows + point-in-time join +
  compute) equal the rows the serving path builds from a JSON-shaped request
  and the online store as of the same moment, and one row at a time equals the
  batch;
- leakage: changing every source value not yet known at prediction time
  changes no feature; a row later than the watermark is never used;
- labels on small cases built by hand;
- estimators and evaluators on cases whose answer is known (a game with known
  Shapley values, brute-force budget splits, a noise-free media mix, the
  world's own exact Shapley values).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from raycore.data.world import World, WorldConfig
from raycore.data.world.marketing import EFFECT, JOURNEY_BASE, generate_marketing
from raycore.data.world.retail import generate_retail
from raycore.data.world.risk import generate_risk
from raycore.errors import DataError
from raycore.features import (
    SqliteOnlineStore,
    assemble_online,
    get_feature_view,
    materialize_online,
)
from raycore.features.table import AVAILABLE_AT
from raycore.features.view import AS_OF, FeatureView
from raycore.features.views.marketing import CHANNELS, SPEND_LAGS, spend_column, touch_column
from raycore.features.views.risk import (
    CREDIT_FEATURES,
    CREDIT_MONOTONE,
    SITE_OPS_STATS,
)
from raycore.models.custom.marketing import (
    AdstockHillMMM,
    NoisyOrConversion,
    allocate_budget,
    shapley_values,
)
from raycore.specs import ModelSpec, load_spec
from raycore.training.evaluation import ORACLE_COLUMN, EvalContext
from raycore.training.evaluators.marketing import budget_allocation, channel_attribution, media_mix

MODELS = Path(__file__).resolve().parents[2] / "raycore" / "catalog" / "models"
# Primary keys of the tables the views read: silver keeps the first of each key.
KEYS = {
    "marketing_spend_weekly": ["region_id", "channel", "week_start"],
    "media_sales_weekly": ["region_id", "week_start"],
    "campaigns": ["campaign_id"],
    "journeys": ["journey_id"],
    "touchpoints": ["touchpoint_id"],
    "market_daily": ["instrument_id", "trade_date"],
    "credit_applications": ["application_id"],
    "credit_outcomes": ["application_id"],
    "site_daily_ops": ["store_id", "date"],
    "incidents": ["incident_id"],
}
SOURCES = {
    "journey_touches": "journeys",
    "campaign_plan": "campaigns",
    "media_mix_weekly": "media_sales_weekly",
    "credit_application_risk": "credit_applications",
    "market_volatility": "market_daily",
    "site_incident_risk": "site_daily_ops",
}
VIEWS = tuple(SOURCES)
DAY = pd.Timedelta(days=1)


def _silver_like(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """What the silver layer leaves of a messy world table (duplicates and broken values out)."""
    frame = frame.drop_duplicates(KEYS[name]).reset_index(drop=True)
    for col, lo, hi in (("annual_income", 1, 600_000), ("close", 0, 100_000), ("alarms", 0, 1000)):
        if col in frame.columns:
            frame = frame[frame[col].between(lo, hi)]
    for col, allowed in (
        ("channel", set(CHANNELS)),
        ("offer_type", {"none", "percent_off", "free_shipping", "bundle"}),
        ("home_ownership", {"rent", "mortgage", "own"}),
    ):
        if col in frame.columns:
            frame = frame[frame[col].isin(allowed)]
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def world() -> World:
    # Only the domains these views read (every domain has its own random stream): the tables are
    # the ones generate_world(WorldConfig(seed=7)) gives, in a fraction of the time. Journeys only
    # need the customer ids, 1..n_customers.
    config = WorldConfig(seed=7, scale="small")
    out = World(config=config)
    generate_retail(config, out)
    out.truth["customers_truth"] = pd.DataFrame(
        {"customer_id": np.arange(1, config.size("n_customers") + 1)}
    )
    generate_marketing(config, out)
    generate_risk(config, out)
    return out


@pytest.fixture(scope="module")
def frames(world: World) -> dict[str, pd.DataFrame]:
    return {name: _silver_like(name, world.tables[name]) for name in KEYS}


def _label_rows(view: FeatureView, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    assert view.label_rows is not None
    source = frames[SOURCES[view.name]]
    if view.label_sources:
        return view.label_rows(source, {n: frames[n] for n in view.label_sources})
    return view.label_rows(source)


_BATCH: dict[str, tuple[pd.DataFrame, dict[str, pd.DataFrame]]] = {}


def _batch(
    view: FeatureView, frames: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Training rows of a view and its materialised tables (cached per module run)."""
    if view.name not in _BATCH:
        tables = {t.name: t.materialize(frames[t.source]) for t in view.tables}
        _BATCH[view.name] = (view.training_frame(_label_rows(view, frames), tables).rows, tables)
    return _BATCH[view.name]


def _one_moment(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows predicted at one moment (the busiest one of the second half of the data)."""
    late = rows[rows[AS_OF] >= rows[AS_OF].quantile(0.5)]
    moment = late[AS_OF].value_counts().idxmax()
    return rows[rows[AS_OF] == moment].head(60).reset_index(drop=True)


def _as_request(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON-shaped request rows: times as ISO strings, numbers as Python numbers, missing as None."""
    records = [
        {
            k: (v.isoformat() if isinstance(v, pd.Timestamp) else (None if pd.isna(v) else v))
            for k, v in r.items()
        }
        for r in frame.to_dict("records")
    ]
    return pd.DataFrame(records)


# --------------------------------------------------------------------------- parity and leakage


@pytest.mark.parametrize("name", VIEWS)
def test_serving_path_equals_batch_path(
    name: str, frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    view = get_feature_view(name)
    rows, tables = _batch(view, frames)
    assert len(rows) > 100
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
    np.testing.assert_allclose(
        served.to_numpy(dtype=float), batch.to_numpy(dtype=float), rtol=1e-9, atol=1e-9
    )
    one = view.compute(sample.iloc[[len(sample) - 1]].reset_index(drop=True))
    np.testing.assert_allclose(
        one.to_numpy(dtype=float)[0], batch.to_numpy(dtype=float)[-1], atol=1e-12
    )


def _garble_unknown(name: str, frame: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    """Every value not yet known at ``moment`` changed: numbers scaled and shifted, channels rotated."""
    out = frame.copy()
    later = (pd.to_datetime(out[AVAILABLE_AT]) > moment).to_numpy()
    for col in out.columns:
        if col in KEYS[name] or col == AVAILABLE_AT:
            continue
        if col == "channel":
            rotated = out[col].map(
                {c: CHANNELS[(i + 1) % len(CHANNELS)] for i, c in enumerate(CHANNELS)}
            )
            out[col] = np.where(later, rotated, out[col])
        elif pd.api.types.is_numeric_dtype(out[col]):
            values = out[col].to_numpy(dtype="float64", na_value=np.nan)
            out[col] = np.where(later, np.round(values * 3 + 5, 6), values)
    return out


@pytest.mark.parametrize("name", ["journey_touches", "market_volatility", "site_incident_risk"])
def test_values_not_known_at_prediction_time_are_not_used(
    name: str, frames: dict[str, pd.DataFrame]
) -> None:
    view = get_feature_view(name)
    rows, before = _batch(view, frames)
    sample = _one_moment(rows)
    moment = pd.Timestamp(sample[AS_OF].iloc[0])
    table_fields = {f.name for t in view.tables for f in t.fields}
    labels = sample[[c for c in sample.columns if c not in table_fields]]
    garbled = {n: _garble_unknown(n, frames[n], moment) for n in {t.source for t in view.tables}}
    tables = {t.name: t.materialize(garbled[t.source]) for t in view.tables}
    again = view.training_frame(labels, tables).rows
    assert len(again) == len(sample)
    np.testing.assert_allclose(
        view.compute(again).to_numpy(dtype=float),
        view.compute(sample).to_numpy(dtype=float),
        atol=1e-12,
    )
    assert any(
        not before[t.name][t.field_names].equals(tables[t.name][t.field_names]) for t in view.tables
    ), "the leakage check did not change any later value"


def test_a_row_later_than_the_watermark_is_never_used(frames: dict[str, pd.DataFrame]) -> None:
    ops = frames["site_daily_ops"]
    ops = ops[ops["store_id"] <= 4]  # a few sites keep it fast
    day = pd.Timestamp("2024-05-15")
    hit = (ops["store_id"] == 3) & (ops["date"] == day)
    assert hit.sum() == 1
    late = ops.copy()
    late.loc[hit, AVAILABLE_AT] = day + pd.Timedelta(
        days=9
    )  # arrives long after the day was closed
    late.loc[hit, "near_misses"] = 40  # a value that would move every smoothed statistic
    without = ops[~hit]
    a = SITE_OPS_STATS.materialize(late).set_index(["store_id", "log_date"])
    b = SITE_OPS_STATS.materialize(without).set_index(["store_id", "log_date"])
    key = (3, day + 3 * DAY)
    pd.testing.assert_series_equal(a.loc[key], b.loc[key])
    # the day itself is still scored: its statistics close at the watermark, without the late row
    assert a.loc[(3, day), AVAILABLE_AT] == day + pd.Timedelta(hours=30)
    view = get_feature_view("site_incident_risk")
    labels = pd.DataFrame(
        {"store_id": [3], "date": [day], "incident_7d": [0], AS_OF: [day + pd.Timedelta(hours=30)]}
    )
    rows = view.training_frame(labels, {SITE_OPS_STATS.name: SITE_OPS_STATS.materialize(late)}).rows
    assert len(rows) == 1 and rows.loc[0, "log_date"] == day


def test_a_journey_is_attributed_with_the_touches_known_then(
    frames: dict[str, pd.DataFrame],
) -> None:
    view = get_feature_view("journey_touches")
    journeys = frames["journeys"]
    touches = frames["touchpoints"]
    jid = int(touches["journey_id"].value_counts().index[0])  # the journey with the most touches
    mine = touches[touches["journey_id"] == jid].sort_values("touched_at")
    end = pd.to_datetime(journeys.loc[journeys["journey_id"] == jid, "ended_at"]).iloc[0]
    late = touches.copy()
    last = mine.index[-1]
    late.loc[last, AVAILABLE_AT] = end + pd.Timedelta(days=40)  # after the attribution date
    labels = view.label_rows(journeys[journeys["journey_id"] == jid])  # type: ignore[misc]
    table = view.tables[0]
    on_time = view.training_frame(labels, {table.name: table.materialize(touches)}).rows
    held = view.training_frame(labels, {table.name: table.materialize(late)}).rows
    expected = mine["channel"].value_counts()
    for c in CHANNELS:
        assert on_time.loc[0, touch_column(c)] == expected.get(c, 0)
    dropped = mine.loc[last, "channel"]
    assert held.loc[0, touch_column(dropped)] == expected[dropped] - 1
    assert held.loc[0, "last_touch_at"] < on_time.loc[0, "last_touch_at"]


# --------------------------------------------------------------------------- labels


def test_incident_label_covers_the_next_seven_days() -> None:
    view = get_feature_view("site_incident_risk")
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    ops = pd.DataFrame({"store_id": 1, "date": days})
    incidents = pd.DataFrame(
        {
            "incident_id": [1, 1],
            "store_id": [1, 1],
            "occurred_at": [days[10] + pd.Timedelta(hours=15)] * 2,
        }
    )
    rows = view.label_rows(ops, {"incidents": incidents}).set_index("date")  # type: ignore[misc]
    label = rows["incident_7d"]
    assert label[days[3]] == 1 and label[days[9]] == 1  # the incident day is 7 and 1 days ahead
    assert label[days[2]] == 0 and label[days[10]] == 0  # 8 days ahead; the day itself
    assert rows.index.max() == days[-1] - 7 * DAY  # only days whose whole window is observed
    assert (rows[AS_OF] == rows.index + pd.Timedelta(hours=30)).all()


def test_volatility_label_is_the_next_trading_days() -> None:
    view = get_feature_view("market_volatility")
    dates = pd.bdate_range("2024-03-04", periods=10)  # Monday .. Friday of the next week
    vol = np.arange(10) / 100 + 0.01
    market = pd.concat(
        [
            pd.DataFrame({"instrument_id": 1, "trade_date": dates, "realized_vol": vol}).drop(
                index=6
            ),
            pd.DataFrame({"instrument_id": 2, "trade_date": dates, "realized_vol": vol}),
        ]
    )  # instrument 1 has no row on the second Tuesday
    rows = view.label_rows(market)  # type: ignore[misc]
    one = rows[rows["instrument_id"] == 1].set_index("trade_date")
    assert one.loc[dates[4], "next_day_vol"] == pytest.approx(0.06)  # Friday -> Monday
    assert dates[5] not in one.index  # Monday's next trading day has no row: not Wednesday's
    assert dates[9] not in one.index  # the last day has no next day yet
    two = rows[rows["instrument_id"] == 2].set_index("trade_date")
    assert two.loc[dates[5], "next_day_vol"] == pytest.approx(0.07)
    assert (rows[AS_OF] == rows["trade_date"] + pd.Timedelta(hours=24)).all()


def test_credit_rows_are_approved_loans_with_a_known_outcome(
    frames: dict[str, pd.DataFrame],
) -> None:
    view = get_feature_view("credit_application_risk")
    rows = _label_rows(view, frames)
    apps = frames["credit_applications"].set_index("application_id")
    assert (apps.loc[rows["application_id"], "decision"] == "approved").all()
    outcomes = frames["credit_outcomes"].set_index("application_id")["defaulted_12m"]
    assert (
        rows["defaulted_12m"].to_numpy() == outcomes.loc[rows["application_id"]].to_numpy()
    ).all()
    assert (rows[AS_OF] == rows["applied_at"]).all()
    # one monotone constraint per model feature, in the view's feature order
    assert [n for n, _ in CREDIT_FEATURES] == list(view.feature_names)
    assert CREDIT_MONOTONE.count(",") + 1 == len(view.feature_names)
    spec = load_spec(MODELS / "mdl-027.yaml", ModelSpec)
    assert spec.algorithm.params["monotone_constraints"] == CREDIT_MONOTONE


def test_media_rows_carry_the_spend_history_repaired_from_impressions(
    frames: dict[str, pd.DataFrame],
) -> None:
    view = get_feature_view("media_mix_weekly")
    spend = frames["marketing_spend_weekly"].copy()
    target = spend.index[(spend["spend"] > 0) & (spend["channel"] == "video")][50]
    true_amount = spend.loc[target, "spend"]
    spend.loc[target, "spend"] = true_amount * 30  # a broken export
    rows = view.label_rows(frames["media_sales_weekly"], {"marketing_spend_weekly": spend})  # type: ignore[misc]
    r = spend.loc[target]
    for lag in (0, 3):
        hit = rows[
            (rows["region_id"] == r["region_id"])
            & (rows["week_start"] == r["week_start"] + lag * 7 * DAY)
        ]
        if len(hit):
            assert hit[spend_column("video", lag)].iloc[0] == pytest.approx(true_amount, rel=0.05)
    first = pd.to_datetime(spend["week_start"]).min()
    assert rows["week_start"].min() == first + SPEND_LAGS * 7 * DAY  # full history known


# --------------------------------------------------------------------------- estimators


def test_shapley_values_of_small_games() -> None:
    # v({}) = 0, v({0}) = 1, v({1}) = 2, v({0, 1}) = 4
    assert shapley_values(np.array([[0.0, 1.0, 2.0, 4.0]])).tolist() == [[1.5, 2.5]]
    rng = np.random.default_rng(0)
    value = rng.random((5, 8))
    value[:, 0] = 0.0
    phi = shapley_values(value)
    np.testing.assert_allclose(phi.sum(axis=1), value[:, 7])  # efficiency
    # players 0 and 1 symmetric (every set holding exactly one of them is worth the same)
    sym = np.array([[0, 1, 1, 3, 2, 5, 5, 9]], dtype=float)
    phi = shapley_values(sym)
    assert phi[0, 0] == pytest.approx(phi[0, 1])
    with pytest.raises(DataError, match="power of two"):
        shapley_values(np.zeros((1, 6)))


def test_noisy_or_recovers_known_touch_effects() -> None:
    rng = np.random.default_rng(1)
    effects, base = np.array([0.06, 0.02, 0.04]), 0.01
    touches = rng.poisson([0.9, 1.0, 0.6], (60_000, 3))
    p = 1 - (1 - base) * np.prod((1 - effects) ** touches, axis=1)
    y = (rng.random(len(p)) < p).astype("int64")
    model = NoisyOrConversion().fit(pd.DataFrame(touches, columns=list("abc")), y)
    np.testing.assert_allclose(-np.expm1(model.coef_[1:]), effects, atol=0.006)
    proba = model.predict_proba(pd.DataFrame(touches[:5], columns=list("abc")))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_budget_split_matches_brute_force() -> None:
    a, k = np.array([10.0, 6.0, 3.0]), np.array([4.0, 1.0, 0.5])

    def value(x: np.ndarray) -> float:
        return float(np.sum(a * x / (x + k)))

    budget, step = 6.0, 0.05
    grid = np.arange(0, budget + step / 2, step)
    best = max(
        value(np.array([x, y, budget - x - y]))
        for x, y in itertools.product(grid, grid)
        if x + y <= budget
    )
    split = allocate_budget(a, k, budget=budget)
    assert split.sum() == pytest.approx(budget)
    assert value(split) >= best - 1e-9
    capped = allocate_budget(a, k, budget=budget, upper=np.array([1.0, 10.0, 10.0]))
    assert capped[0] == pytest.approx(1.0) and capped.sum() == pytest.approx(budget)


def _synthetic_media(
    seed: int = 3, weeks: int = 90
) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Noise-free weekly sales of 3 regions from 2 channels with known adstock and saturation."""
    rng = np.random.default_rng(seed)
    decay, half, beta = np.array([0.3, 0.6]), np.array([0.05, 0.2]), np.array([0.1, 0.25])
    size = np.array([1.0, 2.0, 4.0])
    lags = 8
    spend = rng.lognormal(np.log([0.05, 0.15]), 0.5, (weeks + lags, 3, 2)) * (
        rng.random((weeks + lags, 3, 2)) < 0.6
    )
    spend = spend * size[None, :, None] * 1000
    rows, y, contrib = [], [], []
    week_index = pd.date_range("2024-01-01", periods=weeks, freq="7D")
    for t in range(weeks):
        for r in range(3):
            hist = spend[t : t + lags + 1, r, :][::-1]  # lag 0 first
            adstock = (hist * decay[None, :] ** np.arange(lags + 1)[:, None]).sum(axis=0) / (
                size[r] * 1000
            )
            c = beta * adstock / (adstock + half)
            woy = week_index[t].isocalendar().week
            base = 1.0 + 0.1 * np.sin(2 * np.pi * woy / 52.18)
            rows.append(
                {
                    "region_id": float(r + 1),
                    "season_sin": np.sin(2 * np.pi * woy / 52.18),
                    "season_cos": np.cos(2 * np.pi * woy / 52.18),
                    "holiday_peak": 0.0,
                    "trend_years": t / 52.18,
                    **{
                        spend_column(ch, lag): hist[lag, j]
                        for j, ch in enumerate(("tv", "web"))
                        for lag in range(lags + 1)
                    },
                }
            )
            y.append(size[r] * 1000 * (base + c.sum()))
            contrib.append(size[r] * 1000 * c)
    truth = {"decay": decay, "contrib": np.array(contrib)}
    return pd.DataFrame(rows), np.array(y), truth


def test_media_mix_recovers_known_adstock_and_roi() -> None:
    X, y, truth = _synthetic_media()
    model = AdstockHillMMM(channels=("tv", "web"), lags=8, week_shrinkage=None).fit(X, y)
    np.testing.assert_allclose(model.decay_, truth["decay"], atol=0.03)
    np.testing.assert_allclose(model.predict(X), y, rtol=0.01)
    spend = np.array([X[spend_column(c, 0)].sum() for c in ("tv", "web")])
    roi, true_roi = (
        model.contributions(X).sum().to_numpy() / spend,
        truth["contrib"].sum(axis=0) / spend,
    )
    np.testing.assert_allclose(roi, true_roi, rtol=0.05)
    curves = model.response_curves()
    assert set(curves["region_id"]) == {1.0, 2.0, 3.0} and (curves["k"] > 0).all()
    with pytest.raises(DataError, match="region 9"):
        model.predict(X.head(1).assign(region_id=9.0))


# --------------------------------------------------------------------------- evaluators


class _Bundle:
    """A test double of ModelBundle: features through the view, then the estimator."""

    def __init__(self, view: FeatureView, model: object, *, proba: bool) -> None:
        self.view, self.model, self.proba = view, model, proba
        self.estimator = SimpleNamespace(model=model)

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        x = self.view.compute(raw)
        return self.model.predict_proba(x)[:, 1] if self.proba else self.model.predict(x)  # type: ignore[attr-defined]


def _context(
    model_id: str, bundle: _Bundle, holdout: pd.DataFrame, world: World, **extra: object
) -> EvalContext:
    spec = load_spec(MODELS / f"{model_id}.yaml", ModelSpec)
    return EvalContext(
        spec=spec,
        bundle=bundle,  # type: ignore[arg-type]
        train_rows=extra.get("train", holdout.head(0)),  # type: ignore[arg-type]
        holdout_rows=holdout,
        truth=lambda name: world.truth[name],
        table=lambda name: world.tables[name],
        params=dict(spec.evaluation.params),
    )


def test_attribution_with_the_true_conversion_model_matches_the_worlds_shapley_values(
    world: World,
) -> None:
    view = get_feature_view("journey_touches")
    touches = world.tables["touchpoints"].drop_duplicates("touchpoint_id")
    garbled = touches.loc[
        ~touches["channel"].isin(CHANNELS), "journey_id"
    ]  # a channel lost in the export
    touches = touches[~touches["journey_id"].isin(garbled)]
    counts = pd.crosstab(touches["journey_id"], touches["channel"]).reindex(
        columns=list(CHANNELS), fill_value=0
    )
    holdout = counts.rename(columns=touch_column).reset_index().head(1000)
    end = pd.Timestamp("2024-06-01")
    holdout = holdout.assign(ended_at=end, last_touch_at=end, converted=0)
    holdout.loc[::7, "converted"] = 1
    truth_model = NoisyOrConversion()
    truth_model.coef_ = np.log1p(-np.r_[JOURNEY_BASE, EFFECT])
    result = channel_attribution(
        _context("mdl-013", _Bundle(view, truth_model, proba=True), holdout, world)
    )
    assert result.metrics["share_error"] < 1e-9  # the same exact Shapley values as the simulator's
    wrong = NoisyOrConversion()
    wrong.coef_ = np.log1p(-np.r_[JOURNEY_BASE, EFFECT[::-1]])
    worse = channel_attribution(
        _context("mdl-013", _Bundle(view, wrong, proba=True), holdout, world)
    )
    assert worse.metrics["share_error"] > 0.1


def _holdout_media_rows(world: World) -> pd.DataFrame:
    view = get_feature_view("media_mix_weekly")
    rows = view.label_rows(  # type: ignore[misc]
        world.tables["media_sales_weekly"].drop_duplicates(["region_id", "week_start"]),
        {"marketing_spend_weekly": world.tables["marketing_spend_weekly"]},
    )
    rows = rows[rows["week_start"] >= rows["week_start"].max() - 25 * 7 * DAY]
    expected = world.truth["media_sales_weekly_truth"][
        ["region_id", "week_start", "expected_sales"]
    ]
    rows = rows.merge(
        expected.rename(columns={"expected_sales": ORACLE_COLUMN}), on=["region_id", "week_start"]
    )
    return rows.reset_index(drop=True)


def test_budget_split_on_the_true_curves_scores_one(world: World) -> None:
    from raycore.training.evaluators.marketing import true_response_curves

    view = get_feature_view("media_mix_weekly")
    holdout = _holdout_media_rows(world)
    probe = _context("mdl-014", _Bundle(view, None, proba=False), holdout, world)
    curves = true_response_curves(probe, list(CHANNELS))
    exact = SimpleNamespace(response_curves=lambda: curves)
    result = budget_allocation(
        _context("mdl-014", _Bundle(view, exact, proba=False), holdout, world)
    )
    assert result.metrics["oracle_conversion_share"] == pytest.approx(1.0)
    # a model that believes only search works puts everything there, and loses conversions
    skewed = curves.assign(a=np.where(curves["channel"] == "search", curves["a"] * 50, curves["a"]))
    bad = SimpleNamespace(response_curves=lambda: skewed)
    worse = budget_allocation(_context("mdl-014", _Bundle(view, bad, proba=False), holdout, world))
    assert worse.metrics["oracle_conversion_share"] < 0.9
    assert worse.metrics["historical_share_at_1x"] < 1.0


def test_media_mix_scores_national_r2_and_roi(world: World) -> None:
    view = get_feature_view("media_mix_weekly")
    holdout = _holdout_media_rows(world)
    roi = world.truth["channel_effects_truth"].set_index("channel")["roi"]

    class Exact:
        """Predicts the actual sales and contributes spend x true ROI: zero ROI error, R^2 of 1."""

        def predict(self, x: pd.DataFrame) -> np.ndarray:
            return holdout["sales"].to_numpy()[: len(x)]

        def contributions(self, x: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({c: x[spend_column(c, 0)] * roi[c] for c in CHANNELS})

    result = media_mix(_context("mdl-030", _Bundle(view, Exact(), proba=False), holdout, world))
    assert result.metrics["r2"] == pytest.approx(1.0)
    assert result.metrics["roi_error"] == pytest.approx(0.0, abs=1e-12)
    assert 0.9 < result.oracle["r2"] < 1.0 and result.oracle["roi_error"] == 0.0
