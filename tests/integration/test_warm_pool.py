"""Warm LightGBM workers: the same model as the Ray Train path, reused between fits, freed after, resumed after a kill."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.specs import ResourcesSpec
from raycore.training.ray_lightgbm import fit_lightgbm
from raycore.training.ray_train_job import LABEL_COLUMN, FaultInjection
from raycore.training.warm_pool import active_pool, warm_training

pytestmark = pytest.mark.integration

TWO = ResourcesSpec(num_workers=2, cpus_per_worker=0.5)
PARAMS = {"objective": "regression", "seed": 7, "num_leaves": 15, "deterministic": True}


@pytest.fixture(scope="module")
def train_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(3000, 4)), columns=["a", "b", "c", "d"])
    y = 2 * x.a - x.b + 0.5 * x.c * x.d + rng.normal(scale=0.3, size=len(x))
    path = tmp_path_factory.mktemp("warm") / "train.parquet"
    x.assign(**{LABEL_COLUMN: y}).to_parquet(path, index=False)
    return path


def test_warm_fit_gives_the_ray_train_model_and_workers_are_reused_then_freed(
    ray_session: None, train_path: Path, tmp_path: Path
) -> None:
    import ray

    features = pd.read_parquet(train_path).drop(columns=[LABEL_COLUMN]).head(500)
    stock = fit_lightgbm(train_path=train_path, params=PARAMS, num_boost_round=30, resources=TWO,
                         storage_path=tmp_path, run_name="stock")
    assert active_pool() is None
    free_before = ray.available_resources().get("CPU", 0.0)
    with warm_training() as pool:
        assert active_pool() is pool
        first = pool.fit_lightgbm(train_path=train_path, params=PARAMS, num_boost_round=30, resources=TWO,
                                  storage_path=tmp_path, run_name="warm-1")
        pids = ray.get([a.pid.remote() for a in pool.actors])
        second = pool.fit_lightgbm(train_path=train_path, params=PARAMS, num_boost_round=30, resources=TWO,
                                   storage_path=tmp_path, run_name="warm-2")
        assert ray.get([a.pid.remote() for a in pool.actors]) == pids  # the same processes, still warm
        assert pool.fits == 2 and pool.restarts == 0
        assert ray.available_resources().get("CPU", 0.0) == pytest.approx(free_before - 1.0)
    assert active_pool() is None and pool.actors == []
    deadline = time.monotonic() + 60  # freed with the block: their CPUs come back
    while ray.available_resources().get("CPU", 0.0) < free_before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0.0) == pytest.approx(free_before)
    np.testing.assert_allclose(first.predict(features), stock.predict(features), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(second.predict(features), first.predict(features), rtol=0, atol=0)
    assert first.current_iteration() == 30


def test_a_killed_warm_worker_is_replaced_and_the_fit_resumes_from_its_checkpoint(
    ray_session: None, train_path: Path, tmp_path: Path
) -> None:
    fault = FaultInjection(kill_after_round=10, folder=tmp_path / "fault", rank=1)
    with warm_training() as pool:
        booster = pool.fit_lightgbm(train_path=train_path, params=PARAMS, num_boost_round=30, resources=TWO,
                                    storage_path=tmp_path, run_name="warm-fault", checkpoint_every=10,
                                    max_failures=1, fault_injection=fault)
        assert pool.restarts == 1
    assert fault.killed and booster.current_iteration() == 30
    for rank in (0, 1):
        starts = [a["start_round"] for a in fault.attempts() if a["rank"] == rank]
        assert starts == [0, 10], f"rank {rank} started at {starts}"
