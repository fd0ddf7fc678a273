"""Ex-ante oracles of the data world: defect rate (mdl-026) and inventory turnover (mdl-025)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import nbinom

import raycore.data.world.inventory as inventory
from raycore.data.world import WorldConfig
from raycore.data.world.config import World
from raycore.data.world.oracles import (
    OrderUpToPolicy,
    QuarterStart,
    ex_ante_defect_rate,
    mape_optimal_point,
    negative_binomial,
    simulate_turnover,
    turnover_paths,
)
from raycore.data.world.products import generate_products
from raycore.data.world.retail import generate_retail
from raycore.data.world.supply import LINE_AR, LINE_NOISE, generate_supply

CONFIG = WorldConfig(seed=7, scale="small")


def _upstream() -> World:
    world = World(config=CONFIG)
    for generate in (generate_retail, generate_products, generate_supply):
        generate(CONFIG, world)
    return world


@pytest.fixture(scope="module")
def world() -> World:
    w = _upstream()
    inventory.generate_inventory(CONFIG, w)
    return w


# ------------------------------------------------------------------ defect rate (mdl-026)


def test_ex_ante_defect_rate_is_the_conditional_mean() -> None:
    rng = np.random.default_rng(0)
    known = np.log(4.0)
    eps = rng.normal(0.0, LINE_NOISE, 400_000)
    ex_ante = ex_ante_defect_rate(log_rate=known + eps, innovation=eps, noise_sd=LINE_NOISE)
    assert np.allclose(ex_ante, ex_ante[0])  # the innovation is not known ex ante
    assert ex_ante[0] == pytest.approx(np.mean(np.exp(known + eps)), rel=1e-3)
    with pytest.raises(ValueError, match="noise_sd"):
        ex_ante_defect_rate(log_rate=eps, innovation=eps, noise_sd=-1.0)


def test_ex_ante_log_rate_differs_from_hindsight_by_the_innovation_only(world: World) -> None:
    truth = world.truth["production_line_weekly_truth"].sort_values(["line_id", "week_start"])
    gap = np.log(truth["defect_rate_per_1000"]) - np.log(
        truth["expected_defect_rate_per_1000_ex_ante"]
    )
    innovation = (gap + LINE_NOISE**2 / 2).to_numpy().reshape(truth["line_id"].nunique(), -1)
    # e ~ N(0, LINE_NOISE) iid: a column holding the AR state z instead (sd 0.15, lag-1 corr 0.6) fails
    assert innovation.std() == pytest.approx(LINE_NOISE, rel=0.06)
    lag1 = np.corrcoef(innovation[:, 1:].ravel(), innovation[:, :-1].ravel())[0, 1]
    assert abs(lag1) < 0.08 < LINE_AR
    assert abs(innovation.mean()) < 4 * LINE_NOISE / np.sqrt(innovation.size)


# ------------------------------------------------------------------ turnover (mdl-025)


def _pipeline_reference(cover, on_hand_end, forecast, demand, late):  # the generator's former loop
    n_weeks, (n_p, n_s) = len(demand), cover.shape
    pipeline = np.zeros((n_weeks + 3, n_p, n_s))
    starts = []
    for t in range(n_weeks):
        start = on_hand_end + pipeline[t]
        sold = np.minimum(demand[t], start)
        on_hand_end = start - sold
        forecast = 0.75 * forecast + 0.25 * sold
        order = np.maximum(
            0.0, np.ceil(forecast * 2 * cover) - on_hand_end - pipeline[t + 1 :].sum(axis=0)
        )
        pipeline[
            t + 1 + late[t][:, None].astype(int) * np.ones((n_p, n_s), dtype=int),
            np.arange(n_p)[:, None],
            np.arange(n_s)[None, :],
        ] += order
        starts.append(start)
    return np.array(starts)


def test_order_up_to_policy_matches_the_pipeline_formulation() -> None:
    rng = np.random.default_rng(3)
    n_weeks, n_p, n_s = 30, 4, 5
    cover = rng.uniform(0.9, 1.7, (n_p, n_s))
    on_hand, forecast = (
        rng.integers(0, 20, (n_p, n_s)).astype(float),
        rng.uniform(1, 10, (n_p, n_s)),
    )
    demand = rng.poisson(6.0, (n_weeks, n_p, n_s))
    late = rng.random((n_weeks, n_p)) < 0.4
    expected = _pipeline_reference(cover, on_hand, forecast, demand, late)
    policy, state = (
        OrderUpToPolicy(cover=cover),
        (on_hand, forecast, np.zeros((n_p, n_s)), np.zeros((n_p, n_s))),
    )
    got = []
    for t in range(n_weeks):
        start, _, _, *state = policy.step(
            on_hand_end=state[0],
            forecast=state[1],
            arriving=state[2],
            arriving_next=state[3],
            demand=demand[t],
            late=late[t][:, None],
        )
        got.append(start)
    np.testing.assert_array_equal(np.array(got), expected)


def test_simulated_label_matches_a_hand_computed_quarter() -> None:
    # start 4 on hand, f = 2, cover 1: week 1 sells 3 (demand 3), orders ceil(2.25 * 2) - 1 = 4, late;
    # week 2 starts with 1 and sells 1; the late order arrives in week 3: starts 4, sells 2.
    policy = OrderUpToPolicy(cover=np.ones((1, 1)))
    state = QuarterStart(*(np.full((1, 1, 1), v) for v in (4.0, 2.0, 0.0, 0.0)))
    demand = np.array([3.0, 5.0, 2.0]).reshape(3, 1, 1, 1, 1)
    late = np.array([True, False, False]).reshape(1, 1, 3, 1)
    label = simulate_turnover(
        policy=policy, state=state, demand=demand, late=late, week_valid=np.ones((1, 3), bool)
    )
    assert label.ravel()[0] == pytest.approx(3 * (3 + 1 + 2) / (4 + 1 + 4))


def test_negative_binomial_draws_follow_the_worlds_law() -> None:
    mean = np.array([0.5, 4.0, 40.0])[:, None]
    draws = negative_binomial(
        mean=mean,
        k=6.0,
        exponentials=np.random.default_rng(1).standard_exponential((6, 1, 200_000)),
    )
    for row, m in zip(draws, mean.ravel(), strict=True):
        freq = np.bincount(row.astype(int), minlength=200)[:200] / row.size
        pmf = nbinom.pmf(np.arange(200), 6.0, 6.0 / (6.0 + m))
        assert np.abs(freq - pmf).max() < 0.005


def test_mape_optimal_point_minimises_the_mape() -> None:
    labels = np.random.default_rng(2).lognormal(1.0, 0.5, (301, 3))
    point = mape_optimal_point(labels)
    grid = np.linspace(0.5, 8.0, 4001)
    for j in range(3):
        mape = np.abs(labels[:, j, None] - grid[None]) / labels[:, j, None]
        assert (
            np.mean(np.abs(labels[:, j] - point[j]) / labels[:, j])
            <= mape.mean(axis=0).min() + 1e-12
        )


def test_without_shocks_or_stock_outs_the_oracle_is_the_exact_weighted_median() -> None:
    # Stock so large that nothing runs out or is ordered: the label is weeks x sum of demand / sum of
    # stock = sum of demand / (stores x stock), and the
    # sum of n NegBin(k, m) store-weeks is NegBin(n k, n m): its 1 / label-weighted median is exact.
    n_s, n_w, m, stock = 5, 2, 4.0, 1e9
    policy = OrderUpToPolicy(cover=np.ones((1, n_s)))
    state = QuarterStart(
        np.full((1, 1, n_s), stock),
        np.zeros((1, 1, n_s)),
        np.zeros((1, 1, n_s)),
        np.zeros((1, 1, n_s)),
    )
    labels = turnover_paths(
        policy=policy,
        state=state,
        expected_units=np.full((1, n_w, 1), m * n_s),
        store_weight=np.full(n_s, 1 / n_s),
        affinity=np.ones((1, n_s)),
        q_late=np.zeros((1, n_w, 1)),
        week_valid=np.ones((1, n_w), bool),
        shock_sigma=0.0,
        nb_k=6.0,
        n_paths=4000,
        rng=np.random.default_rng(5),
    )
    got = mape_optimal_point(labels)[0, 0] * n_s * stock
    n = np.arange(1, 400)
    w = nbinom.pmf(n, 6.0 * n_s * n_w, 6.0 / (6.0 + m)) / n
    exact = n[np.argmax(np.cumsum(w) >= 0.5 * w.sum())]
    assert abs(got - exact) <= 1.0


def test_ex_ante_turnover_is_close_to_hindsight_and_changes_no_other_value(
    world: World, monkeypatch
) -> None:
    truth = world.truth["inventory_turnover_truth"]
    ratio = truth["expected_turnover_ex_ante"] / truth["expected_turnover"]
    assert truth["expected_turnover_ex_ante"].notna().all()
    assert (
        0.9 < ratio.median() < 1.1 and ratio.std() > 0.005
    )  # centred on hindsight, not equal to it
    monkeypatch.setattr(inventory, "ORACLE_PATHS", 8)
    other = _upstream()
    inventory.generate_inventory(CONFIG, other)
    for name in ("store_inventory_weekly",):
        pd.testing.assert_frame_equal(world.tables[name], other.tables[name])
    pd.testing.assert_frame_equal(
        world.truth["store_inventory_weekly_truth"], other.truth["store_inventory_weekly_truth"]
    )
    new = other.truth["inventory_turnover_truth"]
    pd.testing.assert_frame_equal(
        truth.drop(columns="expected_turnover_ex_ante"),
        new.drop(columns="expected_turnover_ex_ante"),
    )
    assert not np.array_equal(truth["expected_turnover_ex_ante"], new["expected_turnover_ex_ante"])
    monkeypatch.undo()
    again = _upstream()
    inventory.generate_inventory(CONFIG, again)
    pd.testing.assert_series_equal(
        truth["expected_turnover_ex_ante"],
        again.truth["inventory_turnover_truth"]["expected_turnover_ex_ante"],
    )
