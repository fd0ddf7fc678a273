"""Online coverage and recalibration logic: verdicts, exact recompute of served intervals, fresh calibrators.

No Ray, no MLflow: a real LightGBM bundle on a real feature view, the real
prediction log and label files under a temp FOUNDRY_HOME.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.conformal import ClassificationCalibrator, ConformalError, RegressionCalibrator
from raycore.conformal.online import assess_coverage, coverage_hits, track_coverage
from raycore.conformal.recalibrate import new_calibrator
from raycore.features import get_feature_view
from raycore.feedback import record_labels
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.registry.bundle import BundleMetadata, ModelBundle
from raycore.serving.prediction_log import PredictionLog
from raycore.settings import FoundrySettings
from raycore.specs.conformal import ConformalSpec

VIEW = get_feature_view("delivery_leg_eta")
LEVELS = [0.9, 0.95, 0.99]


def _raw(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "depot_id": rng.integers(1, 6, size=n),
            "leg_start_at": pd.Timestamp("2026-03-02")
            + pd.to_timedelta(rng.integers(0, 24 * 60, size=n), unit="min"),
            "leg_distance_km": rng.gamma(2.0, 6.0, size=n),
            "vehicle_type": rng.choice(["van", "truck"], size=n),
            "weather": rng.choice(["dry", "rain"], size=n),
        }
    )
    return VIEW.coerce_inputs(frame)


def _truth(raw: pd.DataFrame, rng: np.random.Generator, noise: float = 1.0) -> np.ndarray:
    x = VIEW.compute(raw)
    return (
        4.0 * x["log_distance"].to_numpy()
        + 3.0 * x["rain"].to_numpy()
        + rng.normal(scale=noise, size=len(raw))
    )


def _bundle(task: str = "regression") -> ModelBundle:
    rng = np.random.default_rng(0)
    raw = _raw(rng, 1500)
    y = _truth(raw, rng)
    if task == "binary":
        y = (y > np.median(y)).astype(int)
    params = {
        "objective": "binary" if task == "binary" else "regression",
        "num_leaves": 7,
        "verbose": -1,
        "seed": 0,
    }
    scale = VIEW.scale(raw)  # the view predicts per unit of scale (bundle.predict multiplies back)
    target = y if scale is None or task == "binary" else y / scale
    booster = lgb.train(params, lgb.Dataset(VIEW.compute(raw), label=target), num_boost_round=20)
    metadata = BundleMetadata(
        model_id="mdl-999", model_name="leg_minutes", task=task, label="minutes", family="lightgbm",
        feature_view=VIEW.name, feature_view_version=VIEW.version, feature_view_digest=VIEW.digest(),
        input_schema=VIEW.input_schema(),
    )  # fmt: skip
    bundle = ModelBundle(
        estimator=LightGBMEstimator(booster, task=task), view=VIEW, metadata=metadata
    )
    cal_raw = _raw(rng, 800)
    cal_y = _truth(cal_raw, rng)
    if task == "binary":
        bundle.calibrator = ClassificationCalibrator.from_probabilities(
            proba=bundle.predict(cal_raw),
            labels=(cal_y > np.median(y)).astype(int),
            classes=[0, 1],
            levels=LEVELS,
        )
    else:
        bundle.calibrator = RegressionCalibrator.from_scores(
            residuals=np.abs(cal_y - bundle.predict(cal_raw)), levels=LEVELS
        )
    return bundle


def test_verdicts_ok_too_few_under_and_over_coverage() -> None:
    ok = assess_coverage(hits={0.9: np.arange(1000) % 10 != 0}, tolerance=0.03, min_labelled=100)
    assert (ok.status, ok.severity, ok.levels[0].realised) == ("ok", "NONE", 0.9)
    few = assess_coverage(hits={0.9: np.zeros(50, bool)}, tolerance=0.03, min_labelled=100)
    assert (few.status, few.severity, few.levels[0].within) == ("too_few_labels", "NONE", True)
    under = assess_coverage(hits={0.9: np.arange(1000) % 5 != 0}, tolerance=0.03, min_labelled=100)
    assert (under.status, under.severity) == ("out_of_tolerance", "HIGH")  # 0.80: 0.10 under
    mild = assess_coverage(
        hits={0.9: np.arange(1000) % 100 >= 14}, tolerance=0.03, min_labelled=100
    )
    assert (mild.status, mild.severity) == ("out_of_tolerance", "MEDIUM")  # 0.86: 0.04 under
    over = assess_coverage(hits={0.9: np.ones(1000, bool)}, tolerance=0.03, min_labelled=100)
    assert (over.status, over.severity) == ("out_of_tolerance", "MEDIUM")  # wider than needed


def test_noise_alone_does_not_alert_on_few_labels() -> None:
    # 100 labels at 90%: sd 0.03; 0.86 is 0.04 off (beyond the tolerance) but within 2 sd
    hits = {0.9: np.arange(100) >= 14}
    report = assess_coverage(hits=hits, tolerance=0.03, min_labelled=100)
    assert report.status == "ok" and report.levels[0].sd == pytest.approx(0.03)


def test_bad_judging_input_is_a_clear_error() -> None:
    with pytest.raises(ConformalError, match="tolerance must lie in"):
        assess_coverage(hits={0.9: np.ones(5, bool)}, tolerance=0.7, min_labelled=1)
    with pytest.raises(ConformalError, match="sizes"):
        assess_coverage(
            hits={0.9: np.ones(5, bool), 0.95: np.ones(6, bool)}, tolerance=0.03, min_labelled=1
        )
    with pytest.raises(ValueError, match="coverage_tolerance"):
        ConformalSpec(coverage_tolerance=0.0)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_recomputed_intervals_are_the_served_ones(task: str) -> None:
    bundle = _bundle(task)
    rng = np.random.default_rng(5)
    raw = _raw(rng, 300)
    y = _truth(raw, rng)
    labels = (y > np.median(y)).astype(int) if task == "binary" else y
    hits = coverage_hits(bundle=bundle, raw=raw, labels=labels)
    for level in LEVELS:
        served = bundle.predict_with_uncertainty(raw, level=level)
        if task == "binary":
            expected = served["set"][np.arange(len(raw)), labels]
        else:
            expected = (y >= served["lower"]) & (y <= served["upper"])
        np.testing.assert_array_equal(hits[level], expected)


def test_fresh_calibrator_restores_coverage_after_a_shift_without_refitting() -> None:
    bundle = _bundle()
    rng = np.random.default_rng(11)
    fresh, later = _raw(rng, 1000), _raw(rng, 2000)
    shift = 2.5  # the world moved: every label is 2.5 higher than the model thinks
    y_fresh, y_later = _truth(fresh, rng) + shift, _truth(later, rng) + shift
    stale = coverage_hits(bundle=bundle, raw=later, labels=y_later)
    assert stale[0.9].mean() < 0.7
    booster_before = bundle.estimator.booster.model_to_string()
    cal = new_calibrator(old=bundle.calibrator, bundle=bundle, raw=fresh, labels=pd.Series(y_fresh))
    assert isinstance(cal, RegressionCalibrator) and cal.n_calibration == 1000
    assert cal.levels == LEVELS and cal.method == "absolute"
    renewed = coverage_hits(bundle=bundle, raw=later, labels=y_later, calibrator=cal)
    for level in LEVELS:
        assert abs(renewed[level].mean() - level) < 3 * np.sqrt(level * (1 - level) / 1000)
    assert bundle.estimator.booster.model_to_string() == booster_before


def test_coverage_from_the_prediction_log_and_late_labels(tmp_path: Path) -> None:
    settings = FoundrySettings(home=tmp_path)
    spec = load_catalog().get("mdl-004")
    spec = spec.model_copy(update={"conformal": ConformalSpec(min_labelled=200)})
    bundle = _bundle()
    rng = np.random.default_rng(3)
    raw = _raw(rng, 600)
    y = _truth(raw, rng)
    plog = PredictionLog(home=tmp_path, replica="unit")
    values = bundle.predict(raw)
    ids = []
    for start in range(0, len(raw), 20):  # 20-row requests: the label's row is its position
        ids += [f"r{start}"] * 20
        plog.append(
            model=spec.name, version="3", alias="champion", route="simple",
            request_id=f"r{start}", latency_ms=1.0,
            rows=raw.iloc[start : start + 20].reset_index(drop=True), values=values[start : start + 20],
        )  # fmt: skip
    plog.close()
    rows = np.arange(len(raw)) % 20
    # only 150 labelled: too few to judge
    record_labels(
        home=tmp_path,
        model=spec.name,
        labels=pd.DataFrame({"request_id": ids[:150], "row": rows[:150], "label": y[:150]}),
    )
    few = track_coverage(settings=settings, spec=spec, version="3", bundle=bundle)
    assert (few.status, few.n_labelled, few.n_answers) == ("too_few_labels", 150, 600)
    # the rest arrive shifted: the intervals stop holding
    record_labels(
        home=tmp_path,
        model=spec.name,
        labels=pd.DataFrame({"request_id": ids[150:], "row": rows[150:], "label": y[150:] + 4.0}),
    )
    out = track_coverage(settings=settings, spec=spec, version="3", bundle=bundle)
    assert (out.status, out.severity, out.n_labelled) == ("out_of_tolerance", "HIGH", 600)
    expected = coverage_hits(bundle=bundle, raw=raw, labels=np.r_[y[:150], y[150:] + 4.0])
    assert out.levels[0].covered == int(expected[0.9].sum())
    other = track_coverage(settings=settings, spec=spec, version="4", bundle=bundle)
    assert other.n_answers == 0 and other.status == "too_few_labels"
    assert other.levels[0].realised is None and json.dumps(other.to_dict(), allow_nan=False)
