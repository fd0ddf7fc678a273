"""The store-sales feature view: no leakage, row-independent transform (train = serve)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raycore.data.world import WorldConfig, generate_world
from raycore.errors import DataError
from raycore.features import get_feature_view
from raycore.features.views.store_sales import build_store_sales_inputs

VIEW = get_feature_view("store_sales_lags")


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_world(WorldConfig(seed=3)).tables["store_sales_weekly"]


@pytest.fixture(scope="module")
def rows(sales: pd.DataFrame) -> pd.DataFrame:
    return build_store_sales_inputs(sales)


def test_inputs_come_only_from_the_origin_or_earlier(sales: pd.DataFrame, rows: pd.DataFrame) -> None:
    hist = sales.set_index(["store_id", "week_start"])["revenue"]
    sample = rows.sample(300, random_state=0)
    for r in sample.itertuples():
        origin = r.week_start - pd.Timedelta(weeks=r.horizon)
        assert r.rev_lag_1 == hist[(r.store_id, origin)]
        assert r.rev_lag_4 == hist[(r.store_id, origin - pd.Timedelta(weeks=3))]
        window = hist.loc[r.store_id].loc[origin - pd.Timedelta(weeks=12) : origin]
        assert len(window) == 13 and r.rev_mean_13 == pytest.approx(window.mean())
        assert r.rev_lag_52 == hist[(r.store_id, r.week_start - pd.Timedelta(weeks=52))]
        assert r.revenue == hist[(r.store_id, r.week_start)]


def test_every_horizon_is_present(rows: pd.DataFrame) -> None:
    assert set(rows["horizon"]) == {1, 2, 3, 4}
    assert not rows.isna().any().any()


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
