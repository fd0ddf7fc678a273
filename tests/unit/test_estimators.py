"""Estimator adapters and backend request checks, without Ray: shapes per task, exact save/load, errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from raycore.errors import DataError, RegistryError, SpecError, TrainingError
from raycore.models import estimator_class, load_estimator
from raycore.models.adapter import output_kind, select_features, shape_output
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.models.sklearn_model import SklearnEstimator
from raycore.models.xgboost_model import XGBoostEstimator
from raycore.specs import ResourcesSpec
from raycore.training.backends import FAMILIES, fit_estimator
from raycore.training.ray_lightgbm import lightgbm_params
from raycore.training.ray_train_job import (
    LABEL_COLUMN,
    FaultInjection,
    check_shardable,
    lean_train_env,
    read_worker_shard,
    record_attempt_start,
)
from raycore.training.ray_xgboost import xgboost_params

N, K = 400, 3
FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(N, 3)), columns=FEATURES)


@pytest.fixture(scope="module")
def labels(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    score = frame["a"] - 0.5 * frame["b"]
    return {
        "regression": score.to_numpy(),
        "binary": (score > 0).astype(int).to_numpy(),
        "multiclass": np.digitize(score, [-0.5, 0.5]),
    }


def round_trip(est: Any, tmp_path: Path, family: str) -> Any:
    folder = tmp_path / family
    folder.mkdir()
    est.save(folder)
    return load_estimator(family, folder)


def assert_shape(pred: np.ndarray, task: str) -> None:
    if task == "multiclass":
        assert pred.shape == (N, K)
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-6)
    else:
        assert pred.shape == (N,)
    if task == "binary":
        assert ((pred >= 0) & (pred <= 1)).all()


# --------------------------------------------------------------------------- the output contract


def test_output_kind_and_shape_checks() -> None:
    assert output_kind("text_classification") == "probabilities"
    assert output_kind("binary") == "probability"
    assert output_kind("ranking") == output_kind("quantile_regression") == "value"
    assert shape_output(np.ones((4, 1)), task="regression", n_classes=None).shape == (4,)
    with pytest.raises(DataError, match=r"\(n, 3\) probability matrix, got shape \(4,\)"):
        shape_output(np.ones(4), task="multiclass", n_classes=3)
    with pytest.raises(DataError, match="one value per row"):
        shape_output(np.ones((4, 2)), task="binary", n_classes=None)


def test_missing_features_are_named(frame: pd.DataFrame) -> None:
    assert (
        list(select_features(frame[["c", "a", "b"]].assign(extra=1), FEATURES).columns) == FEATURES
    )
    with pytest.raises(DataError, match="features missing for the model: b"):
        select_features(frame.drop(columns=["b"]), FEATURES)


# --------------------------------------------------------------------------- lightgbm


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass", "ranking"])
def test_lightgbm_shapes_and_exact_round_trip(
    task: str, frame: pd.DataFrame, labels: dict[str, np.ndarray], tmp_path: Path
) -> None:
    objective = {
        "regression": "regression",
        "binary": "binary",
        "multiclass": "multiclass",
        "ranking": "lambdarank",
    }
    params = lightgbm_params(
        {"verbose": -1}, objective=objective[task], n_classes=K if task == "multiclass" else None
    )
    y = labels["multiclass" if task == "ranking" else task]
    group = [20] * (N // 20) if task == "ranking" else None
    booster = lgb.train(params, lgb.Dataset(frame, label=y, group=group), num_boost_round=5)
    est = LightGBMEstimator(booster, task=task, n_classes=K if task == "multiclass" else None)
    pred = est.predict(frame)
    assert_shape(pred, task)
    loaded = round_trip(est, tmp_path, "lightgbm")
    assert isinstance(loaded, LightGBMEstimator) and (loaded.task, loaded.n_classes) == (
        est.task,
        est.n_classes,
    )
    np.testing.assert_array_equal(loaded.predict(frame[FEATURES[::-1]]), pred)


def test_lightgbm_bundle_without_metadata_loads_as_regression(
    frame: pd.DataFrame, labels: dict[str, np.ndarray], tmp_path: Path
) -> None:
    booster = lgb.train(
        {"verbose": -1}, lgb.Dataset(frame, label=labels["regression"]), num_boost_round=3
    )
    LightGBMEstimator(booster).save(tmp_path)
    (tmp_path / "lightgbm_meta.json").unlink()
    assert LightGBMEstimator.load(tmp_path).task == "regression"


def test_objective_from_the_spec_wins() -> None:
    assert lightgbm_params({"objective": "regression", "alpha": 0.9}, objective="quantile") == {
        "objective": "quantile",
        "alpha": 0.9,
    }
    assert xgboost_params(
        {"monotone_constraints": "(1,-1,0)"}, objective="multi:softmax", n_classes=4
    ) == {
        "monotone_constraints": "(1,-1,0)",
        "objective": "multi:softprob",
        "num_class": 4,
    }


# --------------------------------------------------------------------------- xgboost


@pytest.mark.parametrize(
    ("task", "objective"),
    [
        ("regression", "reg:squarederror"),
        ("binary", "binary:logistic"),
        ("multiclass", "multi:softprob"),
    ],
)
def test_xgboost_shapes_and_exact_round_trip(
    task: str, objective: str, frame: pd.DataFrame, labels: dict[str, np.ndarray], tmp_path: Path
) -> None:
    params = xgboost_params(
        {"max_depth": 3}, objective=objective, n_classes=K if task == "multiclass" else None
    )
    booster = xgb.train(params, xgb.DMatrix(frame, label=labels[task]), num_boost_round=5)
    est = XGBoostEstimator(booster, task=task, n_classes=K if task == "multiclass" else None)
    assert est.feature_names == FEATURES
    pred = est.predict(frame)
    assert_shape(pred, task)
    loaded = round_trip(est, tmp_path, "xgboost")
    np.testing.assert_array_equal(loaded.predict(frame), pred)


def test_xgboost_multiclass_with_class_labels_is_refused(
    frame: pd.DataFrame, labels: dict[str, np.ndarray]
) -> None:
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": K},
        xgb.DMatrix(frame, label=labels["multiclass"]),
        2,
    )
    with pytest.raises(DataError, match="probability matrix"):
        XGBoostEstimator(booster, task="multiclass", n_classes=K).predict(frame)


# --------------------------------------------------------------------------- sklearn


@pytest.mark.parametrize(
    ("task", "factory", "params"),
    [
        ("regression", "ridge", {"alpha": 1.0}),
        ("binary", "logistic_regression", {}),
        ("multiclass", "random_forest_classifier", {"n_estimators": 10}),
        ("clustering", "kmeans", {"n_clusters": 3}),
        ("anomaly", "isolation_forest", {"contamination": 0.05}),
    ],
)
def test_sklearn_shapes_and_exact_round_trip(
    task: str,
    factory: str,
    params: dict[str, object],
    frame: pd.DataFrame,
    labels: dict[str, np.ndarray],
    tmp_path: Path,
) -> None:
    from raycore.models.factories import make_sklearn

    y = labels.get(task, labels["binary"])
    model = make_sklearn(factory, params).fit(frame, y)
    est = SklearnEstimator(
        model, feature_names=FEATURES, task=task, n_classes=K if task == "multiclass" else None
    )
    pred = est.predict(frame)
    if task in ("regression", "binary", "multiclass"):
        assert_shape(pred, task)
    if task == "binary":
        np.testing.assert_array_equal(pred, model.predict_proba(frame)[:, 1])
    if task == "clustering":
        assert set(np.unique(pred)) == {0, 1, 2}
    if task == "anomaly":
        assert set(np.unique(pred)) == {0, 1} and 0.02 < pred.mean() < 0.08
    loaded = round_trip(est, tmp_path, "sklearn")
    np.testing.assert_array_equal(loaded.predict(frame), pred)


def test_sklearn_text_column_passes_through(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    frame = pd.DataFrame(
        {"text": ["good great", "bad awful", "great fine", "awful bad bad"] * 10, "n": 1.0}
    )
    y = np.array([1, 0, 1, 0] * 10)
    pipe = make_pipeline(
        ColumnTransformer([("tfidf", TfidfVectorizer(), "text")], remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, y)
    est = SklearnEstimator(pipe, feature_names=["text", "n"], task="binary")
    pred = round_trip(est, tmp_path, "sklearn").predict(
        pd.DataFrame({"n": [1.0], "text": ["great"]})
    )
    assert pred.shape == (1,) and pred[0] > 0.5


def test_sklearn_probability_matrix_fills_missing_classes_and_one_hots_plain_classifiers(
    frame: pd.DataFrame, labels: dict[str, np.ndarray]
) -> None:
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    y = labels["multiclass"]
    only_0_and_2 = y != 1
    partial = LogisticRegression().fit(frame[only_0_and_2], y[only_0_and_2])
    pred = SklearnEstimator(
        partial, feature_names=FEATURES, task="multiclass", n_classes=K
    ).predict(frame)
    assert pred.shape == (N, K) and (pred[:, 1] == 0).all()
    plain = RidgeClassifier().fit(frame, y)
    onehot = SklearnEstimator(
        plain, feature_names=FEATURES, task="multiclass", n_classes=K
    ).predict(frame)
    np.testing.assert_array_equal(onehot.argmax(axis=1), plain.predict(frame))


def test_version_mismatch_warns(
    frame: pd.DataFrame,
    labels: dict[str, np.ndarray],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sklearn.linear_model import Ridge

    SklearnEstimator(Ridge().fit(frame, labels["regression"]), feature_names=FEATURES).save(
        tmp_path
    )
    meta_path = tmp_path / "sklearn_meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "library_version": "0.1"}))
    with caplog.at_level(logging.WARNING):
        SklearnEstimator.load(tmp_path)
    assert "saved with sklearn 0.1" in caplog.text


def test_sklearn_object_without_predict_is_refused() -> None:
    with pytest.raises(DataError, match="has no predict"):
        SklearnEstimator(object(), feature_names=["a"])


# --------------------------------------------------------------------------- torch


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_torch_shapes_scaler_and_exact_round_trip(
    task: str, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import torch

    from raycore.models.torch_model import MLPArchitecture, TorchEstimator

    torch.manual_seed(0)
    arch = MLPArchitecture(input_dim=3, hidden=(8, 4), output_dim=K if task == "multiclass" else 1)
    est = TorchEstimator(
        arch.build(),
        arch=arch,
        mean=frame.mean().to_numpy(),
        std=frame.std(ddof=0).to_numpy(),
        feature_names=FEATURES,
        task=task,
        n_classes=K if task == "multiclass" else None,
        target_mean=10.0,
        target_std=2.0,
    )
    pred = est.predict(frame)
    assert_shape(pred, task)
    if (
        task == "regression"
    ):  # the target scaler is applied: the untrained net is near 0 in scaled units
        assert abs(pred.mean() - 10.0) < 4.0
    loaded = round_trip(est, tmp_path, "torch")
    np.testing.assert_array_equal(loaded.predict(frame), pred)
    assert loaded.target_std == 2.0


def test_torch_inconsistent_scaler_is_refused() -> None:
    from raycore.models.torch_model import MLPArchitecture, TorchEstimator

    arch = MLPArchitecture(input_dim=3, hidden=(4,), output_dim=1)
    with pytest.raises(DataError, match="do not match the network input"):
        TorchEstimator(arch.build(), arch=arch, mean=[0.0], std=[1.0], feature_names=["a"])


# --------------------------------------------------------------------------- registry of adapters


def test_unknown_family_and_incomplete_folders(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no estimator adapter for family 'catboost'") as info:
        load_estimator("catboost", tmp_path)
    assert "lightgbm, sklearn, torch, xgboost" in str(info.value)
    for family in ("lightgbm", "xgboost", "sklearn", "torch"):
        with pytest.raises(DataError, match="re-train"):
            estimator_class(family).load(tmp_path)


def test_importing_models_does_not_import_torch_or_xgboost() -> None:
    code = "import sys, raycore.models; print(sorted(m for m in ('torch', 'xgboost') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- fit requests refused before Ray


@pytest.fixture()
def train_file(tmp_path: Path, frame: pd.DataFrame, labels: dict[str, np.ndarray]) -> Path:
    path = tmp_path / "train.parquet"
    frame.assign(q=np.arange(N) // 10, **{LABEL_COLUMN: labels["multiclass"]}).to_parquet(path)
    return path


def fit(train_path: Path, **overrides: object) -> object:
    kwargs: dict[str, object] = {
        "family": "lightgbm",
        "task": "regression",
        "objective": "regression",
        "params": {},
        "num_boost_round": 5,
        "train_path": train_path,
        "resources": ResourcesSpec(),
        "storage_path": train_path.parent,
        "run_name": "never-started",
    }
    return fit_estimator(**{**kwargs, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"family": "catboost"}, "algorithm.family", "lightgbm, xgboost, sklearn, torch"),
        (
            {"family": "sklearn", "resources": ResourcesSpec(use_gpu=True)},
            "resources.use_gpu",
            "CPU only",
        ),
        ({"task": "clustering"}, "algorithm.family", "needs the sklearn family"),
        ({"task": "multiclass", "n_classes": None}, "task", "n_classes >= 2"),
        ({"task": "ranking", "objective": "lambdarank"}, "group_column", "needs group_column"),
        (
            {"family": "torch", "task": "ranking", "group_column": "q"},
            "algorithm.family",
            "cannot train a ranking",
        ),
        ({"family": "torch", "objective": "transformer"}, "algorithm.objective", "use one of: mlp"),
        (
            {"family": "torch", "objective": "mlp", "params": {"hiden": [8]}},
            "algorithm.params",
            "hiden",
        ),
        (
            {"family": "torch", "objective": "mlp", "task": "uplift"},
            "task",
            "cannot train a 'uplift'",
        ),
        (
            {"family": "sklearn", "objective": "no_such_model"},
            "algorithm.objective",
            "unknown sklearn estimator",
        ),
    ],
)
def test_bad_fit_requests_fail_before_any_work(
    train_file: Path, overrides: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as info:
        fit(train_file, **overrides)
    assert info.value.field == field
    assert FAMILIES == ("lightgbm", "xgboost", "sklearn", "torch")


def test_data_that_cannot_feed_the_workers(train_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="40 training groups cannot feed 64 workers"):
        check_shardable(train_file, num_workers=64, group_column="q")
    with pytest.raises(TrainingError, match="group column 'query'"):
        check_shardable(train_file, num_workers=1, group_column="query")
    with pytest.raises(TrainingError, match="not found"):
        check_shardable(tmp_path / "nope.parquet", num_workers=1, group_column=None)
    assert check_shardable(train_file, num_workers=2, group_column="q") == FEATURES


# --------------------------------------------------------------------------- worker shards and fault records


def test_row_shards_partition_the_file(train_file: Path) -> None:
    shards = [read_worker_shard(train_file, rank=r, world=3) for r in range(3)]
    assert sum(len(s.features) for s in shards) == N
    assert list(shards[0].features.columns) == [
        *FEATURES,
        "q",
    ]  # no group column declared: q is a feature
    np.testing.assert_array_equal(
        shards[1].features["a"], pd.read_parquet(train_file)["a"].to_numpy()[1::3]
    )


def test_group_shards_keep_each_group_whole_and_contiguous(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 17, size=300)  # shuffled, uneven groups
    path = tmp_path / "rank.parquet"
    pd.DataFrame(
        {"x": np.arange(300.0), "g": groups, LABEL_COLUMN: rng.integers(0, 4, 300)}
    ).to_parquet(path)
    seen: dict[int, int] = {}
    for rank in range(2):
        shard = read_worker_shard(path, rank=rank, world=2, group_column="g")
        assert "g" not in shard.features.columns
        g = groups[shard.features["x"].to_numpy().astype(int)]
        assert (np.diff(g) >= 0).all()  # sorted, hence each group contiguous
        sizes = shard.group_sizes
        assert sizes is not None and sizes.sum() == len(g)
        np.testing.assert_array_equal(sizes, np.unique(g, return_counts=True)[1])
        for value in np.unique(g):
            assert seen.setdefault(int(value), rank) == rank
    assert len(seen) == len(np.unique(groups))


def test_fault_injection_records_attempts(tmp_path: Path) -> None:
    fault = FaultInjection(kill_after_round=3, folder=tmp_path / "fault")
    record_attempt_start(None, rank=0, start_round=0)  # not configured: no file
    assert fault.attempts() == [] and not fault.killed
    record_attempt_start(fault.to_config(), rank=0, start_round=0)
    record_attempt_start(fault.to_config(), rank=0, start_round=3)
    assert [a["start_round"] for a in fault.attempts()] == [0, 3]


def test_lean_train_env_is_scoped_and_respects_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", raising=False)
    monkeypatch.setenv("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "1")
    with lean_train_env():
        assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.25"
        assert os.environ["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] == "1"
    assert "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S" not in os.environ


# --------------------------------------------------------------------------- GPU wiring (checked on CPU)


def test_use_gpu_reaches_every_layer_of_the_configuration() -> None:
    from raycore.training import ray_lightgbm, ray_xgboost
    from raycore.training.ray_train_job import scaling_config

    config = scaling_config(ResourcesSpec(num_workers=2, cpus_per_worker=2, use_gpu=True))
    assert config.use_gpu and config.num_workers == 2
    assert config._resources_per_worker_not_none == {"CPU": 2, "GPU": 1}
    lgb_params = ray_lightgbm.worker_params(
        {"objective": "binary"}, threads=2, use_gpu=True, network={"num_machines": 2}
    )
    assert lgb_params["device_type"] == "gpu" and lgb_params["num_threads"] == 2
    assert lgb_params["tree_learner"] == "data_parallel" and lgb_params["num_machines"] == 2
    assert ray_xgboost.worker_params({}, threads=2, use_gpu=True) == {
        "nthread": 2,
        "device": "cuda",
    }
    assert "device" not in ray_xgboost.worker_params({}, threads=1, use_gpu=False)
