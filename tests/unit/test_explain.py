"""Explanations: exact TreeSHAP additivity on LightGBM and XGBoost, top-k and reasons, global importance."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from raycore.errors import ExplanationError
from raycore.explain import explain_features
from raycore.explain.importance import _result, permutation_importance
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.models.sklearn_model import SklearnEstimator
from raycore.models.xgboost_model import XGBoostEstimator


def _data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(0, 5, size=n), "noise": rng.normal(size=n)})
    signal = 1.5 * x["a"] - 0.8 * x["b"] + 0.3 * x["c"]
    return x, signal.to_numpy()


def _lgb(task: str) -> tuple[LightGBMEstimator, pd.DataFrame]:
    x, s = _data()
    if task == "binary":
        y, params = (s > 0.7).astype(float), {"objective": "binary"}
    elif task == "multiclass":
        y, params = np.digitize(s, [0.0, 1.5]).astype(float), {"objective": "multiclass", "num_class": 3}
    elif task == "count_regression":
        y, params = np.random.default_rng(1).poisson(np.exp(0.3 * s)), {"objective": "poisson"}
    else:
        y, params = s, {"objective": "regression"}
    booster = lgb.train({**params, "verbose": -1, "num_leaves": 15, "seed": 1}, lgb.Dataset(x, label=y), 40)
    n_classes = 3 if task == "multiclass" else None
    return LightGBMEstimator(booster, task=task, n_classes=n_classes), x


def _xgb(task: str) -> tuple[XGBoostEstimator, pd.DataFrame]:
    x, s = _data()
    if task == "binary":
        y, params = (s > 0.7).astype(float), {"objective": "binary:logistic"}
    elif task == "multiclass":
        y, params = np.digitize(s, [0.0, 1.5]).astype(float), {"objective": "multi:softprob", "num_class": 3}
    else:
        y, params = s, {"objective": "reg:squarederror"}
    booster = xgb.train({**params, "max_depth": 4, "seed": 1}, xgb.DMatrix(x, label=y, feature_names=list(x.columns)), 40)
    return XGBoostEstimator(booster, task=task, n_classes=3 if task == "multiclass" else None), x


@pytest.mark.parametrize("task", ["regression", "binary", "count_regression", "multiclass"])
def test_lightgbm_contributions_add_up_to_the_margin(task: str) -> None:
    est, x = _lgb(task)
    for cls in ([0, 1, 2] if task == "multiclass" else [None]):
        exp = explain_features(est, x, task=task, class_index=cls)
        assert exp.values.shape == (len(x), 4)
        assert exp.additivity_error() <= 1e-6
    if task == "binary":  # the margin is the log-odds of the served probability
        exp = explain_features(est, x, task=task)
        assert np.allclose(1 / (1 + np.exp(-exp.margin)), est.predict(x), atol=1e-9)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_xgboost_contributions_add_up_to_the_margin(task: str) -> None:
    est, x = _xgb(task)
    for cls in ([0, 2] if task == "multiclass" else [None]):
        exp = explain_features(est, x, task=task, class_index=cls)
        assert exp.additivity_error() <= 1e-4  # XGBoost sums in float32
        assert exp.values.shape == (len(x), 4)


def test_top_k_ranks_by_size_and_the_reason_names_directions() -> None:
    est, x = _lgb("regression")
    exp = explain_features(est, x.head(5), task="regression")
    top = exp.top(0, k=2)
    assert len(top) == 2 and abs(top[0]["contribution"]) >= abs(top[1]["contribution"])
    assert top[0]["value"] == pytest.approx(x.iloc[0][top[0]["feature"]])
    reason = exp.reason(0)
    assert ("higher because" in reason) or ("lower because" in reason)
    assert top[0]["feature"] in reason
    rec = exp.records(k=3)[0]
    assert set(rec) == {"top", "reason", "bias", "margin"} and len(rec["top"]) == 3
    with pytest.raises(ExplanationError, match="k >= 1"):
        exp.top(0, k=0)


def test_the_signal_features_matter_more_than_noise() -> None:
    est, x = _lgb("regression")
    mean_abs = np.abs(explain_features(est, x, task="regression").values).mean(axis=0)
    ranked = _result("mean_abs_contribution", est.feature_names, mean_abs)["importance"]
    assert next(iter(ranked)) == "a" and list(ranked)[-1] == "noise"


def test_multiclass_needs_a_valid_class_and_non_trees_are_refused() -> None:
    est, x = _lgb("multiclass")
    with pytest.raises(ExplanationError, match="one class at a time"):
        explain_features(est, x, task="multiclass")
    with pytest.raises(ExplanationError, match="out of range"):
        explain_features(est, x, task="multiclass", class_index=3)
    from sklearn.linear_model import LinearRegression

    xs, s = _data()
    linear = SklearnEstimator(LinearRegression().fit(xs, s), feature_names=list(xs.columns), task="regression", name="linear")
    with pytest.raises(ExplanationError, match="tree model"):
        explain_features(linear, xs, task="regression")


def test_permutation_importance_for_other_families() -> None:
    from sklearn.linear_model import LinearRegression

    xs, s = _data()
    linear = SklearnEstimator(LinearRegression().fit(xs, s), feature_names=list(xs.columns), task="regression", name="linear")
    scored = permutation_importance(linear, xs, s, "rmse", False, 2, np.random.default_rng(0))
    assert scored["kind"] == "permutation_rmse"
    assert next(iter(scored["importance"])) == "a" and scored["importance"]["noise"] < 0.05
    unlabeled = permutation_importance(linear, xs, None, None, False, 2, np.random.default_rng(0))
    assert unlabeled["kind"] == "permutation_prediction_change"
    assert next(iter(unlabeled["importance"])) == "a"


def test_linear_trees_have_no_contributions_and_fall_back_to_permutation() -> None:
    from raycore.explain import supports_contributions

    x, s = _data()
    booster = lgb.train({"objective": "regression", "linear_tree": True, "verbose": -1}, lgb.Dataset(x, label=s), 10)
    est = LightGBMEstimator(booster, task="regression")
    assert not supports_contributions(est)
    assert supports_contributions(_lgb("regression")[0])
    with pytest.raises(ExplanationError, match="without linear trees"):
        explain_features(est, x, task="regression")
    ranked = permutation_importance(est, x, s, "rmse", False, 2, np.random.default_rng(0))
    assert next(iter(ranked["importance"])) == "a"
