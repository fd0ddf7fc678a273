"""The store-sales feature view: no leakage, row-independent transform (train = serve)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raycore.data.world import WorldConfig, generate_world
from raycore.errors import DataError
from raycore.features import get_feature_view
from raycore.features.view import AS_OF
from raycore.features.views.store_sales import STORE_WEEKLY_STATS

VIEW = get_feature_view("store_sales_lags")


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_world(WorldConfig(seed=3)).tables["store_sales_weekly"]


@pytest.fixture(scope="module")
def table_rows(sales: pd.DataFrame) -> pd.DataFrame:
    return STORE_WEEKLY_STATS.materialize(sales)


@pytest.fixture(scope="module")
def rows(sales: pd.DataFrame, table_rows: pd.DataFrame) -> pd.DataFrame:
    return VIEW.training_frame(VIEW.label_rows(sales), {STORE_WEEKLY_STATS.name: table_rows}).rows  # type: ignore[misc]


def test_table_values_come_from_the_origin_week_or_earlier(sales: pd.DataFrame, table_rows: pd.DataFrame) -> None:
    hist = sales.set_index(["store_id", "week_start"])["revenue"]
    week = pd.Timedelta(weeks=1)
    for r in table_rows.sample(300, random_state=0).itertuples():
        o = r.origin_week
        assert r.rev_lag_1 == hist[(r.store_id, o)]
        assert r.rev_lag_4 == hist[(r.store_id, o - 3 * week)]
        window = hist.loc[r.store_id].loc[o - 12 * week : o]
        assert len(window) == 13 and r.rev_mean_13 == pytest.approx(window.mean())
        assert r.rev_ly_1 == hist[(r.store_id, o + week - 52 * week)]
        assert r.rev_ly_4 == hist[(r.store_id, o + 4 * week - 52 * week)]
        assert r.available_at == o + week  # a week is known once it is over


def test_training_rows_use_the_origin_h_weeks_before_the_target(rows: pd.DataFrame) -> None:
    horizon = (rows["week_start"] - rows["origin_week"]).dt.days / 7
    assert set(horizon) == {1, 2, 3, 4}
    # the prediction time is after the origin week became known and before the target week ends
    assert (rows["origin_week"] + pd.Timedelta(weeks=1) <= rows[AS_OF]).all()
    assert (rows[AS_OF] <= rows["week_start"]).all()
    assert not rows[VIEW.input_names].isna().any().any()


def test_late_arriving_week_is_not_used_before_it_arrives(sales: pd.DataFrame) -> None:
    """A value whose event time is before the row's time but that arrived after it is not used."""
    week = pd.Timedelta(weeks=1)
    late = sales.copy()
    late["available_at"] = pd.NaT
    store, w = 5, pd.Timestamp(sales["week_start"].iloc[0]) + 100 * week
    hit = (late["store_id"] == store) & (late["week_start"] == w)
    late.loc[hit, "available_at"] = w + 3 * week  # known two weeks later than usual
    late_value = sales.loc[hit, "revenue"].iloc[0]
    table = STORE_WEEKLY_STATS.materialize(late)
    target = w + 3 * week
    labels = pd.DataFrame(
        {"store_id": [store] * 3, "week_start": [target] * 3, "on_promo": [0] * 3, "revenue": [1.0] * 3,
         AS_OF: [w + week, w + 2 * week, w + 3 * week]}
    )
    joined = VIEW.training_frame(labels, {STORE_WEEKLY_STATS.name: table}).rows
    assert len(joined) == 3
    # Before week w arrived, every feature row whose window holds it is invisible:
    # the join falls back to the origin before w (horizon 4, still valid).
    for i in (0, 1):
        assert joined.loc[i, "origin_week"] == w - week
        assert late_value not in joined.loc[i, ["rev_lag_1", "rev_lag_2", "rev_lag_3", "rev_lag_4"]].tolist()
    # Once it has arrived, the newest origin is used and the late value is in it.
    assert joined.loc[2, "origin_week"] == w + 2 * week
    assert joined.loc[2, "rev_lag_3"] == late_value
    # Without the late arrival the first row would have used origin w, and seen the value.
    on_time = VIEW.training_frame(labels, {STORE_WEEKLY_STATS.name: STORE_WEEKLY_STATS.materialize(sales)}).rows
    assert on_time.loc[0, "origin_week"] == w and on_time.loc[0, "rev_lag_1"] == late_value


def test_one_row_at_a_time_equals_the_batch(rows: pd.DataFrame) -> None:
    """The serving path computes features row by row; the training path in batch."""
    sample = rows.sample(200, random_state=1).reset_index(drop=True)
    batch = VIEW.compute(sample)
    for i in range(len(sample)):
        one = VIEW.compute(sample.iloc[[i]].reset_index(drop=True))
        np.testing.assert_allclose(one.to_numpy()[0], batch.to_numpy()[i], rtol=0, atol=1e-12)


def test_request_shaped_inputs_give_the_same_features(rows: pd.DataFrame) -> None:
    """JSON requests carry dates as strings and numbers as Python types."""
    sample = rows.head(50)
    as_json = pd.DataFrame(
        [{k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
         for r in sample[VIEW.input_names].to_dict("records")]
    )
    np.testing.assert_allclose(VIEW.compute(as_json).to_numpy(), VIEW.compute(sample).to_numpy(), atol=1e-12)


def test_missing_input_is_named(rows: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="rev_mean_13"):
        VIEW.compute(rows.drop(columns=["rev_mean_13"]))


def test_horizon_outside_the_trained_range_is_refused(rows: pd.DataFrame) -> None:
    row = rows.head(1).copy()
    row["week_start"] = row["origin_week"] + pd.Timedelta(weeks=6)
    with pytest.raises(DataError, match="1 to 4 weeks after origin_week"):
        VIEW.compute(row)


def test_digest_is_stable_and_tracks_definition() -> None:
    assert VIEW.digest() == get_feature_view("store_sales_lags").digest()
    assert len(VIEW.digest()) == 16


def test_world_is_deterministic() -> None:
    a = generate_world(WorldConfig(seed=11)).tables["store_sales_weekly"]
    b = generate_world(WorldConfig(seed=11)).tables["store_sales_weekly"]
    c = generate_world(WorldConfig(seed=12)).tables["store_sales_weekly"]
    pd.testing.assert_frame_equal(a, b)
    assert not a["revenue"].equals(c["revenue"])


def test_promotions_raise_true_revenue() -> None:
    world = generate_world(WorldConfig(seed=5))
    df = world.tables["store_sales_weekly"].merge(world.truth["store_sales_weekly_truth"])
    ratio = df.groupby("on_promo")["expected_revenue"].mean()
    assert ratio[1] > ratio[0] * 1.1
