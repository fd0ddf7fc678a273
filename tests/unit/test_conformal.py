"""Conformal prediction: quantile, coverage, sets, normalised intervals, storage, the decision policy.

Pure and fast: synthetic exchangeable data, no Ray, no lake.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from raycore.catalog import load_catalog
from raycore.conformal import (
    AUTO,
    REVIEW,
    ClassificationCalibrator,
    ConformalError,
    RegressionCalibrator,
    ScaleModel,
    class_indices,
    conformal_quantile,
    decide,
    load_calibrator,
    plan_for,
)
from raycore.conformal.calibrate import width_ratio
from raycore.conformal.scores import aps_scores, aps_sets, lac_sets
from raycore.specs.conformal import ConformalSpec, DecisionPolicySpec

LEVELS = [0.9, 0.95, 0.99]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _classification(rng: np.random.Generator, n: int, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from a known model and labels drawn from them (a calibrated classifier)."""
    proba = _softmax(rng.normal(0, 1.5, size=(n, k)))
    labels = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    return proba, np.minimum(labels, k - 1)


# --- the finite-sample quantile -------------------------------------------------------------


def test_quantile_is_the_ceil_n_plus_1_rank() -> None:
    scores = np.arange(1.0, 101.0)[::-1]  # order must not matter
    assert conformal_quantile(scores, level=0.9) == 91.0  # ceil(101 * 0.9) = 91
    assert conformal_quantile(scores, level=0.95) == 96.0  # ceil(95.95) = 96
    assert conformal_quantile(np.arange(1.0, 10.0), level=0.9) == 9.0  # ceil(9.0) = 9 exactly


def test_quantile_is_infinite_with_too_few_scores() -> None:
    assert math.isinf(conformal_quantile(np.arange(50.0), level=0.99))  # rank 51 > 50
    assert conformal_quantile(np.arange(99.0), level=0.99) == 98.0


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, float("nan"), "high"])
def test_bad_level_is_a_clear_error(level: object) -> None:
    with pytest.raises(ConformalError, match="coverage level"):
        conformal_quantile(np.ones(10), level=level)  # type: ignore[arg-type]


def test_uncalibrated_level_names_the_calibrated_ones() -> None:
    cal = RegressionCalibrator.from_scores(residuals=np.ones(100), levels=[0.9, 0.95])
    with pytest.raises(ConformalError, match=r"0\.8 was not calibrated.*\[0\.9, 0\.95\]"):
        cal.interval(np.zeros(3), level=0.8)


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ConformalError, match="NaN or infinite"):
        conformal_quantile(np.array([1.0, np.nan]), level=0.5)


# --- coverage on exchangeable data ----------------------------------------------------------


def test_regression_coverage_holds_over_repeats() -> None:
    rng = np.random.default_rng(1)
    realised = {level: [] for level in LEVELS}
    for _ in range(30):
        y_cal, y_test = rng.standard_t(4, 1000), rng.standard_t(4, 2000)
        pred_cal, pred_test = np.zeros(1000), np.zeros(2000)
        cal = RegressionCalibrator.from_scores(residuals=y_cal - pred_cal, levels=LEVELS)
        for level in LEVELS:
            lower, upper = cal.interval(pred_test, level=level)
            realised[level].append(np.mean((y_test >= lower) & (y_test <= upper)))
    for level in LEVELS:
        mean = float(np.mean(realised[level]))
        assert level - 0.005 <= mean <= level + 0.012, (level, mean)


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_classification_coverage_holds_over_repeats(method: str) -> None:
    rng = np.random.default_rng(2)
    realised = {level: [] for level in LEVELS}
    for _ in range(20):
        p_cal, y_cal = _classification(rng, 1000)
        p_test, y_test = _classification(rng, 2000)
        cal = ClassificationCalibrator.from_probabilities(
            proba=p_cal,
            labels=y_cal,
            classes=list("abcd"),
            levels=LEVELS,
            method=method,  # type: ignore[arg-type]
        )
        for level in LEVELS:
            sets = cal.prediction_set(p_test, level=level)
            realised[level].append(np.mean(sets[np.arange(len(y_test)), y_test]))
    for level in LEVELS:
        mean = float(np.mean(realised[level]))
        # non-randomised APS may over-cover (ties of the discrete score); never under-cover
        upper = level + (0.012 if method == "lac" else 0.04)
        assert level - 0.005 <= mean <= upper, (method, level, mean)


# --- prediction sets ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_sets_never_empty_at_99_percent(method: str) -> None:
    rng = np.random.default_rng(3)
    p_cal, y_cal = _classification(rng, 300)
    # Calibration where the model is always right and sure: the quantile is tiny.
    sure = np.eye(4)[y_cal] * 0.999 + 0.00025
    p_test, _ = _classification(rng, 2000)
    for proba in (p_cal, sure):
        cal = ClassificationCalibrator.from_probabilities(
            proba=proba,
            labels=y_cal,
            classes=[0, 1, 2, 3],
            levels=LEVELS,
            method=method,  # type: ignore[arg-type]
        )
        assert cal.prediction_set(p_test, level=0.99).any(axis=1).all()
    # Below nonempty_from a LAC set may be empty (no class typical enough); with it lowered, never.
    if method == "lac":
        assert not cal.prediction_set(p_test, level=0.9).any(axis=1).all()
    lowered = ClassificationCalibrator.from_probabilities(
        proba=sure,
        labels=y_cal,
        classes=[0, 1, 2, 3],
        levels=LEVELS,
        method=method,
        nonempty_from=0.9,  # type: ignore[arg-type]
    )
    for level in LEVELS:
        assert lowered.prediction_set(p_test, level=level).any(axis=1).all()


def test_set_functions_keep_the_top_class_even_at_threshold_zero() -> None:
    proba = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert lac_sets(proba, threshold=0.0).tolist() == [[True, False, False], [False, False, True]]
    assert aps_sets(proba, threshold=0.0).tolist() == [[True, False, False], [False, False, True]]


def test_too_few_calibration_rows_give_every_class_at_99() -> None:
    rng = np.random.default_rng(4)
    p_cal, y_cal = _classification(rng, 50)
    cal = ClassificationCalibrator.from_probabilities(
        proba=p_cal, labels=y_cal, classes=list("abcd"), levels=LEVELS
    )
    assert cal.prediction_set(p_cal, level=0.99).all()


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_set_sizes_grow_with_the_level(method: str) -> None:
    rng = np.random.default_rng(5)
    p_cal, y_cal = _classification(rng, 2000, k=6)
    cal = ClassificationCalibrator.from_probabilities(
        proba=p_cal,
        labels=y_cal,
        classes=list(range(6)),
        levels=LEVELS,
        method=method,  # type: ignore[arg-type]
    )
    p_test, _ = _classification(rng, 3000, k=6)
    sizes = [cal.prediction_set(p_test, level=level).sum(axis=1) for level in LEVELS]
    assert (sizes[0] <= sizes[1]).all() and (sizes[1] <= sizes[2]).all()
    assert sizes[0].mean() < sizes[2].mean()


def test_aps_score_is_the_mass_down_to_the_true_class() -> None:
    proba = np.array([[0.5, 0.3, 0.2]])
    assert aps_scores(proba, np.array([1])).round(6).tolist() == [0.8]
    assert aps_scores(proba, np.array([1]), u=np.array([0.0])).round(6).tolist() == [0.5]


def test_binary_probability_vector_is_two_classes() -> None:
    cal = ClassificationCalibrator.from_probabilities(
        proba=np.array([0.9, 0.1, 0.8, 0.3] * 50),
        labels=np.array([1, 0, 1, 0] * 50),
        classes=[0, 1],
        levels=[0.9],
    )
    sets = cal.prediction_set(np.array([0.95, 0.5]), level=0.9)
    assert sets.shape == (2, 2) and sets[0].tolist() == [False, True]
    assert cal.set_labels(sets)[0] == [1]


def test_bad_shapes_and_labels_are_clear_errors() -> None:
    with pytest.raises(ConformalError, match="columns for 3 classes"):
        ClassificationCalibrator.from_probabilities(
            proba=np.ones((4, 2)) / 2, labels=np.zeros(4), classes=[0, 1, 2], levels=[0.9]
        )
    with pytest.raises(ConformalError, match=r"class indices must lie in 0\.\.1"):
        ClassificationCalibrator.from_probabilities(
            proba=np.ones((4, 2)) / 2, labels=np.array([0, 1, 2, 0]), classes=[0, 1], levels=[0.9]
        )
    with pytest.raises(ConformalError, match=r"not among the model's classes"):
        class_indices(pd.Series(["low", "mars"]), task="multiclass", classes=["high", "low"])
    with pytest.raises(ConformalError, match="binary labels must be 0/1"):
        class_indices(pd.Series([0, 2]), task="binary", classes=[0, 1])


# --- normalised intervals -------------------------------------------------------------------


def _heteroscedastic(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    x = rng.uniform(0, 1, n)
    noise = rng.normal(0, 0.05 + 2.0 * x**2, n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n)}), noise  # the model predicts 0


def test_normalized_is_narrower_on_heteroscedastic_data_at_the_same_coverage() -> None:
    rng = np.random.default_rng(6)
    x_fit, r_fit = _heteroscedastic(rng, 4000)
    x_cal, y_cal = _heteroscedastic(rng, 2000)
    x_test, y_test = _heteroscedastic(rng, 5000)
    scale = ScaleModel.fit(features=x_fit, prediction=np.zeros(4000), abs_residual=np.abs(r_fit))
    sigma = scale.predict(features=x_cal, prediction=np.zeros(2000))
    normalized = RegressionCalibrator.from_scores(
        residuals=y_cal, levels=LEVELS, scale=scale, sigma=sigma
    )
    absolute = RegressionCalibrator.from_scores(residuals=y_cal, levels=LEVELS)
    for level in (0.9, 0.95):
        lo_n, hi_n = normalized.interval(np.zeros(5000), level=level, features=x_test)
        lo_a, hi_a = absolute.interval(np.zeros(5000), level=level)
        assert abs(np.mean((y_test >= lo_n) & (y_test <= hi_n)) - level) < 0.02
        assert np.mean(hi_n - lo_n) < 0.85 * np.mean(hi_a - lo_a)


def test_auto_width_ratio_prefers_the_narrower_variant() -> None:
    rng = np.random.default_rng(10)
    x_fit, r_fit = _heteroscedastic(rng, 3000)
    x_cal, y_cal = _heteroscedastic(rng, 1500)
    scale = ScaleModel.fit(features=x_fit, prediction=np.zeros(3000), abs_residual=np.abs(r_fit))
    sigma = scale.predict(features=x_cal, prediction=np.zeros(1500))
    absolute = RegressionCalibrator.from_scores(residuals=y_cal, levels=LEVELS)
    normalized = RegressionCalibrator.from_scores(
        residuals=y_cal, levels=LEVELS, scale=scale, sigma=sigma
    )
    assert width_ratio(normalized, absolute, sigma=sigma) < 0.9
    # homoscedastic residuals: a learnt scale only adds noise, the ratio is not below ~1
    flat = rng.normal(size=1500)
    noisy_sigma = np.exp(rng.normal(0, 0.5, 1500))
    noisy = RegressionCalibrator.from_scores(
        residuals=flat, levels=LEVELS, scale=scale, sigma=noisy_sigma
    )
    plain = RegressionCalibrator.from_scores(residuals=flat, levels=LEVELS)
    assert width_ratio(noisy, plain, sigma=noisy_sigma) > 1.0


def test_normalized_intervals_need_features() -> None:
    rng = np.random.default_rng(7)
    x, r = _heteroscedastic(rng, 500)
    scale = ScaleModel.fit(features=x, prediction=np.zeros(500), abs_residual=np.abs(r))
    cal = RegressionCalibrator.from_scores(
        residuals=r,
        levels=[0.9],
        scale=scale,
        sigma=scale.predict(features=x, prediction=np.zeros(500)),
    )
    with pytest.raises(ConformalError, match="need the model features"):
        cal.interval(np.zeros(3), level=0.9)
    with pytest.raises(ConformalError, match="scale model needs feature"):
        cal.interval(np.zeros(3), level=0.9, features=pd.DataFrame({"x": [0.1, 0.2, 0.3]}))


# --- storage ----------------------------------------------------------------------------------


def test_regression_calibrator_round_trips_with_its_scale_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x, r = _heteroscedastic(rng, 800)
    scale = ScaleModel.fit(features=x, prediction=np.zeros(800), abs_residual=np.abs(r))
    sigma = scale.predict(features=x, prediction=np.zeros(800))
    cal = RegressionCalibrator.from_scores(
        residuals=r, levels=LEVELS, scale=scale, sigma=sigma, info={"strategy": "refit"}
    )
    cal.save(tmp_path)
    loaded = load_calibrator(tmp_path)
    assert isinstance(loaded, RegressionCalibrator) and loaded.info == {"strategy": "refit"}
    for level in LEVELS:
        np.testing.assert_allclose(
            loaded.interval(np.ones(800), level=level, features=x),
            cal.interval(np.ones(800), level=level, features=x),
        )


def test_classification_calibrator_round_trips_including_infinite_quantiles(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    proba, labels = _classification(rng, 60)
    cal = ClassificationCalibrator.from_probabilities(
        proba=proba, labels=labels, classes=["a", "b", "c", "d"], levels=LEVELS, method="aps"
    )
    assert math.isinf(cal.quantiles[0.99])
    cal.save(tmp_path)
    loaded = load_calibrator(tmp_path)
    assert isinstance(loaded, ClassificationCalibrator)
    assert loaded.classes == ["a", "b", "c", "d"] and loaded.quantiles == cal.quantiles
    assert (loaded.prediction_set(proba, level=0.9) == cal.prediction_set(proba, level=0.9)).all()


def test_missing_calibrator_is_none_and_corrupt_one_is_an_error(tmp_path: Path) -> None:
    assert load_calibrator(tmp_path) is None
    (tmp_path / "calibrator.json").write_text('{"format": 1, "kind": "regression"}')
    with pytest.raises(ConformalError, match="unreadable"):
        load_calibrator(tmp_path)


# --- specs and plans ------------------------------------------------------------------------


def test_conformal_spec_validates_with_the_bad_value() -> None:
    with pytest.raises(ValidationError, match=r"strictly between 0 and 1.*\[1\.2\]"):
        ConformalSpec(levels=[0.9, 1.2])
    with pytest.raises(ValidationError, match=r"policy.level \(0\.8\) must be one of"):
        ConformalSpec(policy={"level": 0.8, "max_width": 1.0})
    with pytest.raises(ValidationError, match="at least one threshold"):
        DecisionPolicySpec(level=0.9)
    with pytest.raises(ValidationError, match="Extra inputs"):
        ConformalSpec(method="cqr")  # type: ignore[call-arg]


def test_model_spec_takes_an_optional_conformal_block() -> None:
    from raycore.specs import ModelSpec

    raw = load_catalog().get("mdl-004").model_dump()
    raw["conformal"] = {
        "regression": "absolute",
        "strategy": "split",
        "levels": [0.95, 0.8],
        "policy": {"level": 0.8, "max_relative_width": 0.3},
    }
    spec = ModelSpec.model_validate(raw)
    plan = plan_for(spec)
    assert plan is not None and (plan.method, plan.strategy, plan.levels) == (
        "absolute",
        "split",
        [0.8, 0.95],
    )
    raw["conformal"] = {"regression": "cqr"}
    with pytest.raises(ValidationError, match="regression"):
        ModelSpec.model_validate(raw)


def test_catalog_models_get_a_plan_by_task() -> None:
    catalog = load_catalog()
    plans = {spec.id: plan_for(spec) for spec in catalog}
    assert plans["mdl-004"] is not None and plans["mdl-004"].kind == "regression"
    assert plans["mdl-024"] is not None and plans["mdl-024"].method == "lac"
    assert plans["mdl-007"] is None and plans["mdl-008"] is None  # ranking, clustering
    off = catalog.get("mdl-004").model_copy(update={"conformal": ConformalSpec(enabled=False)})
    assert plan_for(off) is None
    ranking = catalog.get("mdl-007").model_copy(update={"conformal": ConformalSpec()})
    with pytest.raises(ConformalError, match="task 'ranking' has no conformal calibration"):
        plan_for(ranking)


# --- the decision policy ----------------------------------------------------------------------


def test_decide_narrow_high_risk_is_auto_wide_is_review() -> None:
    policy = DecisionPolicySpec(high_risk_above=100.0, max_width=20.0)
    got = decide(
        prediction=np.array([50.0, 150.0, 150.0, np.nan]),
        lower=np.array([0.0, 140.0, 100.0, 0.0]),
        upper=np.array([100.0, 160.0, 200.0, 1.0]),
        policy=policy,
    )
    assert got.tolist() == [AUTO, AUTO, REVIEW, REVIEW]


def test_decide_relative_width_and_set_size() -> None:
    relative = DecisionPolicySpec(max_relative_width=0.5)
    got = decide(
        prediction=np.array([10.0, 10.0, 0.0]),
        lower=np.array([8.0, 2.0, -1.0]),
        upper=np.array([12.0, 18.0, 1.0]),
        policy=relative,
    )
    assert got.tolist() == [AUTO, REVIEW, REVIEW]
    sets = DecisionPolicySpec(high_risk_above=0.5, max_set_size=1)
    got = decide(
        prediction=np.array([0.9, 0.9, 0.2, 0.9]), set_size=np.array([1, 2, 2, 0]), policy=sets
    )
    assert got.tolist() == [AUTO, REVIEW, AUTO, REVIEW]  # an empty set is never confident


def test_decide_refuses_a_policy_it_cannot_judge() -> None:
    with pytest.raises(ConformalError, match="no interval was given"):
        decide(prediction=np.array([1.0]), policy=DecisionPolicySpec(max_width=1.0))
    with pytest.raises(ConformalError, match="no set_size was given"):
        decide(prediction=np.array([1.0]), policy=DecisionPolicySpec(max_set_size=1))
    with pytest.raises(ConformalError, match="shapes differ"):
        decide(
            prediction=np.ones(2),
            lower=np.ones(3),
            upper=np.ones(3),
            policy=DecisionPolicySpec(max_width=1.0),
        )
