"""Online stores (SQLite and a real Redis) and train/serve feature parity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.data.world import WorldConfig, generate_world
from raycore.errors import ConfigurationError, FeatureLookupError
from raycore.features import (
    AS_OF,
    OnlineStore,
    SqliteOnlineStore,
    assemble_online,
    feature_views,
    materialize_online,
    open_online_store,
)
from raycore.features.views.store_sales import STORE_WEEKLY_STATS

STORE_SALES_LAGS = feature_views()["store_sales_lags"]

WEEK = pd.Timedelta(weeks=1)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        s: OnlineStore = SqliteOnlineStore(tmp_path / "online.db")
    else:
        url = request.getfixturevalue("redis_url")
        s = open_online_store(uri=url, home=tmp_path)
        s._client.flushdb()  # type: ignore[attr-defined]
    yield s
    s.close()


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_world(WorldConfig(seed=21)).tables["store_sales_weekly"]


def test_round_trip_is_exact(store: OnlineStore) -> None:
    values = {"f": 0.1 + 0.2, "big": 1e300, "tiny": 5e-324, "n": 2**53 + 1, "d": "2025-12-22T00:00:00", "s": "x"}
    store.write("t_v1", [((3,), values), ((4,), {**values, "f": -1.5})])
    got = store.read("t_v1", [(4,), (99,), (3,)])
    assert got[0] == {**values, "f": -1.5} and got[1] is None and got[2] == values
    store.write("t_v1", [((3,), {**values, "f": 7.0})])  # upsert
    assert store.read("t_v1", [(3,)])[0]["f"] == 7.0
    assert store.count("t_v1") == 2
    assert store.read("other_v1", [(3,)]) == [None]


def test_nan_is_refused_not_stored(store: OnlineStore) -> None:
    with pytest.raises(ValueError):
        store.write("t_v1", [((1,), {"f": float("nan")})])


def test_unsupported_uri_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unsupported online store URI"):
        open_online_store(uri="mongodb://x", home=tmp_path)
    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        open_online_store(uri="redis://127.0.0.1:1/0", home=tmp_path)


@pytest.mark.parametrize("as_of_week", [60, 90, 130, 155])
def test_batch_and_online_features_are_identical(store: OnlineStore, sales: pd.DataFrame, as_of_week: int) -> None:
    """Training path (point-in-time join) == serving path (online store + JSON request), every store."""
    table_rows = STORE_WEEKLY_STATS.materialize(sales)
    as_of = pd.Timestamp(sales["week_start"].min()) + as_of_week * WEEK
    materialize_online(STORE_WEEKLY_STATS, table_rows, store=store, as_of=as_of)

    stores = np.sort(sales["store_id"].unique())
    horizon = 1 + (stores % 4)
    labels = pd.DataFrame(
        {"store_id": stores, "week_start": as_of + (horizon - 1) * WEEK, "on_promo": stores % 2,
         AS_OF: as_of, "revenue": 0.0}
    )
    batch = STORE_SALES_LAGS.training_frame(labels, {STORE_WEEKLY_STATS.name: table_rows}).rows
    assert len(batch) == len(stores)
    expected = STORE_SALES_LAGS.compute(batch)

    requests = pd.DataFrame(
        {"store_id": [int(s) for s in stores],
         "week_start": [d.date().isoformat() for d in labels["week_start"]],
         "on_promo": [int(p) for p in labels["on_promo"]]}
    )
    online = STORE_SALES_LAGS.compute(assemble_online(STORE_SALES_LAGS, requests, online=store))
    assert list(online.columns) == list(expected.columns)
    for col in expected.columns:
        np.testing.assert_allclose(online[col].to_numpy(), expected[col].to_numpy(), rtol=0, atol=1e-9, err_msg=col)
    # one request at a time gives the same as the batch request
    single = STORE_SALES_LAGS.compute(assemble_online(STORE_SALES_LAGS, requests.iloc[[3]], online=store))
    np.testing.assert_allclose(single.to_numpy()[0], expected.to_numpy()[3], atol=1e-9)


def test_unknown_entity_and_missing_store_are_named(store: OnlineStore, sales: pd.DataFrame) -> None:
    materialize_online(STORE_WEEKLY_STATS, STORE_WEEKLY_STATS.materialize(sales), store=store)
    req = pd.DataFrame({"store_id": [1, 999], "week_start": ["2025-12-29", "2025-12-29"], "on_promo": [0, 0]})
    with pytest.raises(FeatureLookupError, match="store_id=999") as info:
        assemble_online(STORE_SALES_LAGS, req, online=store)
    assert info.value.row == 1 and info.value.field == "store_id"
    with pytest.raises(FeatureLookupError, match="no online store"):
        assemble_online(STORE_SALES_LAGS, req.head(1), online=None)
    too_far = req.head(1).assign(week_start="2026-03-02")
    with pytest.raises(FeatureLookupError, match="1 to 4 weeks after origin_week"):
        assemble_online(STORE_SALES_LAGS, too_far, online=store)


def test_request_values_win_over_the_store(store: OnlineStore, sales: pd.DataFrame) -> None:
    rows = STORE_WEEKLY_STATS.materialize(sales)
    materialize_online(STORE_WEEKLY_STATS, rows, store=store)
    req = pd.DataFrame({"store_id": [1], "week_start": ["2025-12-29"], "on_promo": [0], "rev_lag_1": [123.0]})
    raw = assemble_online(STORE_SALES_LAGS, req, online=store)
    assert raw.loc[0, "rev_lag_1"] == 123.0
    latest = rows[rows.store_id == 1].sort_values("origin_week").iloc[-1]
    assert raw.loc[0, "rev_mean_13"] == latest["rev_mean_13"]


def test_every_registered_view_has_tables_with_versions() -> None:
    for view in feature_views().values():
        assert view.version >= 1 and view.digest()
        for table in view.tables:
            assert table.store_name.endswith(f"_v{table.version}")
