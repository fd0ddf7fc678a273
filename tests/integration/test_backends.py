"""Every algorithm family fits through ``fit_estimator`` on the shared local Ray and beats a trivial baseline;
a worker killed mid-training resumes from the latest checkpoint; GPU requests fail before any work.

Small synthetic data (2,000 training rows x 5 features, ≤ 30 rounds) keeps the file fast; most of
the time is Ray Train's fixed start-up per fit (see raycore/training/ray_train_job.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from raycore.errors import ConfigurationError, TrainingError
from raycore.models import LightGBMEstimator, XGBoostEstimator
from raycore.specs import ResourcesSpec
from raycore.training.backends import fit_estimator
from raycore.training.metrics import ndcg_at_k
from raycore.training.ray_lightgbm import fit_lightgbm
from raycore.training.ray_train_job import LABEL_COLUMN, FaultInjection
from raycore.training.ray_xgboost import fit_xgboost

pytestmark = pytest.mark.integration

N_TRAIN, N_HOLDOUT = 2000, 1000
FEATURES = [f"f{i}" for i in range(5)]


@dataclass(frozen=True)
class Synthetic:
    """Train/holdout frames per task; labels already encoded the way the pipeline encodes them."""

    train: dict[str, pd.DataFrame] = field(default_factory=dict)
    holdout: dict[str, pd.DataFrame] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    rng = np.random.default_rng(42)
    n = N_TRAIN + N_HOLDOUT
    x = pd.DataFrame(rng.normal(size=(n, 5)), columns=FEATURES)
    score = 2 * x.f0 + x.f1 - x.f2 + 0.5 * x.f3 * x.f4
    noisy = score + rng.normal(scale=0.5, size=n)
    labels = {
        "regression": noisy,
        "binary": (noisy > 0).astype(int),
        "multiclass": np.digitize(noisy, [-1.0, 1.0]),
        "ranking": np.digitize(noisy, np.quantile(noisy, [0.5, 0.75, 0.9])),
    }
    folder = tmp_path_factory.mktemp("backends")
    out = Synthetic()
    for task, y in labels.items():
        frame = x.assign(**{LABEL_COLUMN: np.asarray(y)})
        if task == "ranking":
            frame["query"] = (
                np.arange(n) // 10
            )  # 300 queries of 10 rows; the last 100 are the holdout
        out.train[task], out.holdout[task] = (
            frame.iloc[:N_TRAIN],
            frame.iloc[N_TRAIN:].reset_index(drop=True),
        )
        out.paths[task] = folder / f"{task}.parquet"
        out.train[task].to_parquet(out.paths[task], index=False)
    return out


def quality(
    task: str, pred: np.ndarray, holdout: pd.DataFrame, train: pd.DataFrame
) -> tuple[float, float]:
    """(model score, trivial baseline score) on the holdout, higher is better."""
    y = holdout[LABEL_COLUMN].to_numpy()
    if task == "regression":
        rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
        baseline = float(np.sqrt(np.mean((train[LABEL_COLUMN].mean() - y) ** 2)))
        return -rmse, -0.6 * baseline  # must cut the error of the mean predictor by 40%
    if task == "binary":
        return float(roc_auc_score(y, pred)), 0.85
    if task == "multiclass":
        assert pred.shape == (len(y), 3)
        majority = float(np.mean(y == np.bincount(train[LABEL_COLUMN]).argmax()))
        return float(np.mean(pred.argmax(axis=1) == y)), majority + 0.15
    groups = holdout["query"].to_numpy()
    random_order = ndcg_at_k(y, np.random.default_rng(0).normal(size=len(y)), groups)
    return ndcg_at_k(y, pred, groups), random_order + 0.15


CASES: dict[str, dict[str, Any]] = {
    "lightgbm-binary": {"family": "lightgbm", "task": "binary", "objective": "binary"},
    "lightgbm-multiclass": {"family": "lightgbm", "task": "multiclass", "objective": "multiclass"},
    "lightgbm-ranking-2w": {
        "family": "lightgbm",
        "task": "ranking",
        "objective": "lambdarank",
        "workers": 2,
    },
    "xgboost-regression": {
        "family": "xgboost",
        "task": "regression",
        "objective": "reg:squarederror",
    },
    "xgboost-multiclass": {
        "family": "xgboost",
        "task": "multiclass",
        "objective": "multi:softprob",
    },
    "sklearn-regression": {
        "family": "sklearn",
        "task": "regression",
        "objective": "hist_gradient_boosting_regressor",
    },
    "sklearn-binary": {"family": "sklearn", "task": "binary", "objective": "logistic_regression"},
    "sklearn-multiclass": {
        "family": "sklearn",
        "task": "multiclass",
        "objective": "random_forest_classifier",
    },
    "torch-binary": {"family": "torch", "task": "binary", "objective": "mlp"},
    "torch-multiclass-2w": {
        "family": "torch",
        "task": "multiclass",
        "objective": "mlp",
        "workers": 2,
    },
}
# lightgbm and torch regression, xgboost binary: the fault-injection runs below, which also check quality.
TORCH_PARAMS: dict[str, Any] = {"hidden": [32, 16], "epochs": 12, "lr": 0.01, "batch_size": 128}


def fit_case(case: str, data: Synthetic, folder: Path) -> Any:
    spec = CASES[case]
    task = spec["task"]
    return fit_estimator(
        family=spec["family"],
        task=task,
        objective=spec["objective"],
        params=TORCH_PARAMS if spec["family"] == "torch" else {},
        num_boost_round=30,
        train_path=data.paths[task],
        resources=ResourcesSpec(num_workers=spec.get("workers", 1)),
        storage_path=folder,
        run_name=case,
        n_classes=3 if task == "multiclass" else None,
        group_column="query" if task == "ranking" else None,
    )


def fit_lightgbm_with_a_kill(data: Synthetic, folder: Path) -> tuple[Any, FaultInjection]:
    fault = FaultInjection(kill_after_round=10, folder=folder / "fault")
    booster = fit_lightgbm(
        train_path=data.paths["regression"],
        params={"seed": 7},
        objective="regression",
        num_boost_round=30,
        resources=ResourcesSpec(num_workers=1),
        storage_path=folder,
        run_name="lgb-fault",
        checkpoint_every=10,
        max_failures=1,
        fault_injection=fault,
    )
    return booster, fault


def fit_xgboost_two_workers_with_a_kill(
    data: Synthetic, folder: Path
) -> tuple[Any, FaultInjection]:
    fault = FaultInjection(kill_after_round=10, folder=folder / "fault", rank=1)
    booster = fit_xgboost(
        train_path=data.paths["binary"],
        params={"max_depth": 4, "eta": 0.3},
        objective="binary:logistic",
        num_boost_round=30,
        resources=ResourcesSpec(num_workers=2),
        storage_path=folder,
        run_name="xgb-fault",
        checkpoint_every=10,
        max_failures=1,
        fault_injection=fault,
    )
    return booster, fault


def fit_torch_with_a_kill(data: Synthetic, folder: Path) -> tuple[Any, FaultInjection]:
    from raycore.training.ray_torch import fit_torch

    fault = FaultInjection(kill_after_round=4, folder=folder / "fault")
    est = fit_torch(
        train_path=data.paths["regression"],
        task="regression",
        objective="mlp",
        params=TORCH_PARAMS,
        resources=ResourcesSpec(num_workers=1),
        storage_path=folder,
        run_name="torch-fault",
        fault_injection=fault,
    )
    return est, fault


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    folder: Path = Path()

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


JOBS: dict[str, Callable[[Synthetic, Path], Any]] = {
    **{case: partial(fit_case, case) for case in CASES},
    "lightgbm-regression-fault": fit_lightgbm_with_a_kill,
    "xgboost-binary-fault-2w": fit_xgboost_two_workers_with_a_kill,
    "torch-regression-fault": fit_torch_with_a_kill,
}


@pytest.fixture(scope="module")
def fits(
    data: Synthetic, ray_session: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every fit of this file, run on the shared Ray as fast as its 2 CPUs allow.

    Most of a small fit is Ray Train's start-up (new processes, imports), so two
    one-worker fits run side by side (each takes one CPU); two-worker fits and
    sklearn tasks run alone. Each test then checks its own outcome.
    """

    def run(name: str) -> Outcome:
        folder = tmp_path_factory.mktemp(name)
        started = time.perf_counter()
        try:
            value = JOBS[name](data, folder)
        except Exception as exc:  # reported by the test that owns the job
            return Outcome(error=exc, seconds=time.perf_counter() - started, folder=folder)
        return Outcome(value=value, seconds=time.perf_counter() - started, folder=folder)

    one_worker = [n for n in JOBS if "-2w" not in n and not n.startswith("sklearn")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip(one_worker, pool.map(run, one_worker), strict=True))
    outcomes.update({n: run(n) for n in JOBS if n not in outcomes})
    print(
        "\n"
        + "\n".join(
            f"  {n:28s} {o.seconds:6.1f}s{'  FAILED' if o.error else ''}"
            for n, o in outcomes.items()
        )
    )
    return outcomes


@pytest.mark.parametrize("case", list(CASES))
def test_family_fits_through_ray_and_beats_a_trivial_baseline(
    case: str, data: Synthetic, fits: dict[str, Outcome]
) -> None:
    spec = CASES[case]
    task = spec["task"]
    est = fits[case].get()
    assert est.family == spec["family"] and est.feature_names == FEATURES
    pred = est.predict(
        data.holdout[task].drop(columns=[LABEL_COLUMN])
    )  # extra columns (query) are ignored
    got, bar = quality(task, pred, data.holdout[task], data.train[task])
    assert got > bar, f"{case}: {got:.3f} does not beat {bar:.3f}"


def assert_resumed(fault: FaultInjection, *, ranks: int, kill_after: int) -> None:
    """Each rank ran exactly twice: from scratch, then from the checkpoint taken at the kill round."""
    assert fault.killed
    for rank in range(ranks):
        starts = [a["start_round"] for a in fault.attempts() if a["rank"] == rank]
        assert starts == [0, kill_after], f"rank {rank} attempts started at {starts}"


def test_lightgbm_worker_killed_mid_training_resumes_from_checkpoint(
    data: Synthetic, fits: dict[str, Outcome]
) -> None:
    booster, fault = fits["lightgbm-regression-fault"].get()
    assert booster.current_iteration() == 30
    assert_resumed(fault, ranks=1, kill_after=10)
    pred = LightGBMEstimator(booster).predict(
        data.holdout["regression"].drop(columns=[LABEL_COLUMN])
    )
    got, bar = quality("regression", pred, data.holdout["regression"], data.train["regression"])
    assert got > bar


def test_xgboost_two_workers_one_killed_resume_from_checkpoint(
    data: Synthetic, fits: dict[str, Outcome]
) -> None:
    booster, fault = fits["xgboost-binary-fault-2w"].get()
    assert booster.num_boosted_rounds() == 30
    assert_resumed(fault, ranks=2, kill_after=10)
    pred = XGBoostEstimator(booster, task="binary").predict(
        data.holdout["binary"].drop(columns=[LABEL_COLUMN])
    )
    got, bar = quality("binary", pred, data.holdout["binary"], data.train["binary"])
    assert got > bar


def test_torch_worker_killed_mid_training_resumes_at_the_next_epoch(
    data: Synthetic, fits: dict[str, Outcome]
) -> None:
    import torch

    from raycore.training.ray_torch import CHECKPOINT_FILE

    outcome = fits["torch-regression-fault"]
    est, fault = outcome.get()
    assert_resumed(fault, ranks=1, kill_after=4)
    (last,) = (outcome.folder / "torch-fault").glob(
        f"checkpoint_*/{CHECKPOINT_FILE}"
    )  # num_to_keep=1
    assert torch.load(last, weights_only=True)["epoch"] == TORCH_PARAMS["epochs"] - 1
    pred = est.predict(data.holdout["regression"].drop(columns=[LABEL_COLUMN]))
    got, bar = quality("regression", pred, data.holdout["regression"], data.train["regression"])
    assert got > bar


def test_sklearn_fit_failure_names_the_estimator_and_cause(
    data: Synthetic, ray_session: None, tmp_path: Path
) -> None:
    with pytest.raises(
        TrainingError,
        match=r"'logistic_regression' \(LogisticRegression\) failed to fit: ValueError",
    ):
        fit_estimator(
            family="sklearn",
            task="binary",
            objective="logistic_regression",
            params={},
            num_boost_round=1,
            train_path=data.paths["regression"],  # continuous labels
            resources=ResourcesSpec(),
            storage_path=tmp_path,
            run_name="bad-labels",
        )


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "torch"])
def test_use_gpu_on_a_cpu_cluster_fails_before_any_work(
    family: str, data: Synthetic, ray_session: None, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="use_gpu is set and 2 GPU"):
        fit_estimator(
            family=family,
            task="regression",
            objective={"lightgbm": "regression", "xgboost": "reg:squarederror", "torch": "mlp"}[
                family
            ],
            params={},
            num_boost_round=1,
            train_path=data.paths["regression"],
            resources=ResourcesSpec(num_workers=2, use_gpu=True),
            storage_path=tmp_path,
            run_name="gpu",
        )
    assert not (tmp_path / "gpu").exists()
