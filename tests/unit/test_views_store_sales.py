"""The seasonal fit of ``store_weekly_stats`` (mdl-001): it recovers a known season, uses no future week.

- recovery: on noise-free revenue built from a known region cycle, store trends and promotion
  uplifts, the fit's forecast of a later week equals the truth;
- pooling: stores of one region share the cycle; without ``region_id`` each store fits its own;
- leakage: changing revenue after an origin week changes none of that origin's fit fields, and a
  week that arrives late holds back the fit rows of every store of its region until it is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raycore.features import get_feature_view
from raycore.features.table import AVAILABLE_AT
from raycore.features.views.store_sales import (
    HOLIDAY_PEAK_WEEKS,
    MIN_FIT_WEEKS,
    SEASON_TERMS,
    STORE_WEEKLY_STATS,
    YEAR_WEEKS,
)

STORE_SALES_LAGS = get_feature_view("store_sales_lags")

WEEK = pd.Timedelta(days=7)
FIT_FIELDS = ["fit_log_base", "fit_trend_52", "fit_promo", *(f"fit_season_{n}" for n in SEASON_TERMS)]


def _sales(n_weeks: int = 130, seed: int = 0) -> pd.DataFrame:
    """Noise-free weekly revenue: two regions with their own cycle, four stores each, random promotions."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2023-01-02", periods=n_weeks, freq="7D")
    woy = weeks.isocalendar().week.to_numpy().astype("float64")
    angle = 2 * np.pi * woy / YEAR_WEEKS
    rows = []
    for store in range(1, 9):
        region = 1 + (store - 1) // 4
        amp, phase = (0.15, 0.5) if region == 1 else (0.08, 2.5)
        log_season = amp * np.sin(angle + phase) + 0.3 * np.isin(woy, HOLIDAY_PEAK_WEEKS)
        promo = (rng.random(n_weeks) < 0.15).astype("int64")
        log_rev = (
            np.log(30_000 + 5_000 * store)
            + (0.02 + 0.01 * store) * np.arange(n_weeks) / 52
            + log_season
            + np.log(1.1 + 0.02 * store) * promo
        )
        rows.append(
            pd.DataFrame(
                {
                    "store_id": store,
                    "week_start": weeks,
                    "on_promo": promo,
                    "revenue": np.exp(log_rev),
                    "region_id": region,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _truth_log_revenue(sales: pd.DataFrame, store: int, week: pd.Timestamp, on_promo: int) -> float:
    row = sales[(sales["store_id"] == store) & (sales["week_start"] == week)].iloc[0]
    return float(np.log(row["revenue"]) - np.log(1.1 + 0.02 * store) * (row["on_promo"] - on_promo))


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return _sales()


@pytest.fixture(scope="module")
def table(sales: pd.DataFrame) -> pd.DataFrame:
    return STORE_WEEKLY_STATS.materialize(sales)


def test_fit_forecasts_a_known_season_trend_and_promotion(sales: pd.DataFrame, table: pd.DataFrame) -> None:
    weeks = sorted(sales["week_start"].unique())
    origin = pd.Timestamp(weeks[100])
    rows = []
    for store in (1, 6):
        for h, promo in ((1, 0), (3, 1), (4, 0)):
            latest = table[(table["store_id"] == store) & (table["origin_week"] == origin)].iloc[0]
            rows.append({**latest.to_dict(), "week_start": origin + h * WEEK, "on_promo": promo})
    raw = pd.DataFrame(rows)
    features = STORE_SALES_LAGS.compute(raw)
    for i, r in raw.iterrows():
        expected = _truth_log_revenue(sales, int(r["store_id"]), r["week_start"], int(r["on_promo"]))
        got = np.log(features.loc[i, "fit_ratio"] * r["rev_mean_13"])
        # Two harmonics approximate the generator's exact sine; the residual is a few per mille.
        assert got == pytest.approx(expected, abs=5e-3)
    assert np.abs(features["fit_resid_4"]).max() < 5e-3


def test_stores_of_a_region_share_its_cycle_and_regions_differ(table: pd.DataFrame) -> None:
    last = table[table["origin_week"] == table["origin_week"].max()].set_index("store_id")
    cycle = last[[f"fit_season_{n}" for n in SEASON_TERMS]]
    np.testing.assert_allclose(cycle.loc[[1, 2, 3, 4]].to_numpy(), np.tile(cycle.loc[1].to_numpy(), (4, 1)))
    assert not np.allclose(cycle.loc[1].to_numpy(), cycle.loc[5].to_numpy(), atol=0.01)


def test_without_region_each_store_fits_its_own_cycle(sales: pd.DataFrame) -> None:
    """Each store alone gives the same fit as within the whole table; with regions the cycle is pooled."""
    noisy = sales.assign(revenue=sales["revenue"] * np.exp(np.random.default_rng(2).normal(0, 0.1, len(sales))))
    own = STORE_WEEKLY_STATS.materialize(noisy.drop(columns="region_id")).set_index(["store_id", "origin_week"])
    alone = STORE_WEEKLY_STATS.materialize(noisy[noisy["store_id"] == 2].drop(columns="region_id"))
    alone = alone.set_index(["store_id", "origin_week"])
    pd.testing.assert_frame_equal(own.loc[alone.index, FIT_FIELDS], alone[FIT_FIELDS], rtol=1e-9)
    pooled = STORE_WEEKLY_STATS.materialize(noisy).set_index(["store_id", "origin_week"])
    assert not np.allclose(pooled.loc[alone.index, "fit_season_sin"], alone["fit_season_sin"], rtol=0, atol=1e-4)


def test_fit_needs_a_year_of_history(sales: pd.DataFrame, table: pd.DataFrame) -> None:
    first_origin = table["origin_week"].min()
    weeks_before = (first_origin - sales["week_start"].min()) // WEEK + 1
    assert weeks_before >= MIN_FIT_WEEKS


def test_later_revenue_changes_no_fit_field_of_an_origin(sales: pd.DataFrame, table: pd.DataFrame) -> None:
    origin = pd.Timestamp(sorted(sales["week_start"].unique())[90])
    changed = sales.copy()
    later = changed["week_start"] > origin
    changed.loc[later, "revenue"] *= np.exp(np.random.default_rng(1).normal(0, 0.5, int(later.sum())))
    again = STORE_WEEKLY_STATS.materialize(changed)
    key = ["store_id", "origin_week"]
    before = table[table["origin_week"] <= origin].set_index(key)[[*FIT_FIELDS, "fit_resid_4"]]
    after = again[again["origin_week"] <= origin].set_index(key)[[*FIT_FIELDS, "fit_resid_4"]]
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


def test_a_late_week_holds_back_its_regions_fit_until_it_arrives(sales: pd.DataFrame) -> None:
    late = sales.assign(**{AVAILABLE_AT: sales["week_start"] + WEEK})
    w = pd.Timestamp(sorted(sales["week_start"].unique())[100])
    hit = (late["store_id"] == 2) & (late["week_start"] == w)
    late.loc[hit, AVAILABLE_AT] = w + 4 * WEEK
    rows = STORE_WEEKLY_STATS.materialize(late).set_index(["store_id", "origin_week"])[AVAILABLE_AT]
    for store in (1, 2, 3, 4):  # region 1: every store's fit used week w of store 2
        assert rows[(store, w)] == w + 4 * WEEK
        assert rows[(store, w + 4 * WEEK)] == w + 5 * WEEK
    assert rows[(5, w)] == w + WEEK  # region 2 does not wait for it
