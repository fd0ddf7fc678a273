"""Drift check, reference profiles, severity and the Evidently cross-check (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from raycore.errors import DataError
from raycore.monitoring import (
    DriftConfig,
    ReferenceProfile,
    Severity,
    SeverityConfig,
    assess_severity,
    build_reference_profile,
    check_drift,
    evidently_report_for_profile,
    infer_categorical,
    metric_drop,
    parse_evidently_drift,
    run_evidently_drift,
)
from raycore.monitoring.statistics import adjust_p_values
from raycore.specs import MonitoringSpec

CATS = np.array(["a", "b", "c", "d"])


def frame(
    rng: np.random.Generator, n: int, *, shifts: dict[str, float] | None = None
) -> pd.DataFrame:
    """Mixed columns; ``shifts`` moves a numeric column's mean by that many reference std."""
    shifts = shifts or {}
    cols = {
        "normal": rng.normal(10.0, 2.0, n),
        "lognormal": rng.lognormal(3.0, 0.5, n),
        "uniform": rng.uniform(0.0, 1.0, n),
        "count": rng.poisson(4.0, n).astype(float),
        "flag": (rng.random(n) < 0.3).astype(float),
        "channel": rng.choice(CATS, n, p=[0.4, 0.3, 0.2, 0.1]),
    }
    sd = {"normal": 2.0, "lognormal": 11.4, "uniform": 0.2887, "count": 2.0, "flag": 0.4583}
    for name, shift in shifts.items():
        cols[name] = cols[name] + shift * sd[name]
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    ref = frame(rng, 50_000)
    return build_reference_profile(
        features=ref, predictions=ref["normal"] * 3.0, categorical=["channel"]
    )


def test_no_drift_rarely_flags_across_many_windows(profile: ReferenceProfile) -> None:
    # Under no drift a window flags at most alpha of the time (BH controls the family-wise rate
    # under the global null), and large windows never: their effect sizes are measured precisely.
    flagged_small = 0
    for seed in range(60):
        window = frame(np.random.default_rng(1000 + seed), 300)
        report = check_drift(reference=profile, current=window, predictions=window["normal"] * 3.0)
        flagged_small += bool(report.drifted_features) or report.prediction_drift
    assert flagged_small <= 3  # expected <= 0.6 at alpha 0.01
    for seed in range(8):
        window = frame(np.random.default_rng(2000 + seed), 20_000)
        report = check_drift(reference=profile, current=window, predictions=window["normal"] * 3.0)
        assert report.drifted_features == []
        assert not report.prediction_drift
        assert report.severity() is Severity.NONE


def test_big_shift_names_the_right_column(profile: ReferenceProfile) -> None:
    window = frame(np.random.default_rng(5), 2_000, shifts={"lognormal": 0.5})
    report = check_drift(reference=profile, current=window)
    assert report.drifted_features == ["lognormal"]
    found = report.feature("lognormal")
    assert found.method == "wasserstein_norm"
    assert found.effect == pytest.approx(0.5, abs=0.06)
    assert found.p_adjusted < 1e-6
    assert report.share_drifted == pytest.approx(1 / 6)


def test_small_window_does_not_flag_noise_a_large_one_measures() -> None:
    # 0.1 sigma is drift by the default definition, but 200 rows cannot show it: the test holds it back.
    rng = np.random.default_rng(3)
    ref = build_reference_profile(
        features=pd.DataFrame({"x": rng.normal(size=50_000)}), predictions=None, categorical=[]
    )
    small = check_drift(reference=ref, current=pd.DataFrame({"x": rng.normal(0.1, 1.0, 200)}))
    large = check_drift(reference=ref, current=pd.DataFrame({"x": rng.normal(0.1, 1.0, 50_000)}))
    assert small.drifted_features == []
    assert large.drifted_features == ["x"]


def test_tiny_shift_at_100k_is_significant_but_not_drift() -> None:
    rng = np.random.default_rng(4)
    n = 100_000
    ref = pd.DataFrame(
        {"tiny": rng.normal(size=n), "real": rng.normal(size=n), "none": rng.normal(size=n)}
    )
    cur = pd.DataFrame(
        {
            "tiny": rng.normal(0.03, 1.0, n),
            "real": rng.normal(0.1, 1.0, n),
            "none": rng.normal(size=n),
        }
    )
    report = check_drift(
        reference=build_reference_profile(features=ref, predictions=None, categorical=[]),
        current=cur,
    )
    tiny = report.feature("tiny")
    assert tiny.p_adjusted < 0.01  # a p-value alone would flag this harmless shift
    assert tiny.effect < 0.045 and not tiny.drifted
    assert report.drifted_features == ["real"]
    exact = stats.wasserstein_distance(ref["real"], cur["real"]) / ref["real"].std(ddof=0)
    assert report.feature("real").effect == pytest.approx(exact, rel=0.02)


def test_shift_inside_the_bins_of_a_discrete_feature_is_measured() -> None:
    # An integer feature moved by 0.3 stays in the same quantile bins; the bin means and the mean test see it.
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"count": rng.poisson(6.0, 50_000).astype(float)})
    cur = pd.DataFrame({"count": rng.poisson(6.0, 50_000) + 0.3})
    report = check_drift(
        reference=build_reference_profile(features=ref, predictions=None, categorical=[]),
        current=cur,
    )
    exact = stats.wasserstein_distance(ref["count"], cur["count"]) / ref["count"].std(ddof=0)
    assert report.feature("count").effect == pytest.approx(exact, rel=0.02)
    assert report.drifted_features == ["count"]


@pytest.mark.parametrize(
    "make",
    [
        lambda r, n: r.normal(5.0, 2.0, n),
        lambda r, n: r.lognormal(1.0, 1.0, n),
        lambda r, n: r.exponential(3.0, n),
        lambda r, n: r.integers(0, 5, n).astype(float),
    ],
)
def test_wasserstein_matches_scipy(make) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    ref, cur = make(rng, 30_000), make(rng, 20_000) * 1.2 + 0.1
    profile = build_reference_profile(
        features=pd.DataFrame({"x": ref}), predictions=None, categorical=[]
    )
    ours = (
        check_drift(reference=profile, current=pd.DataFrame({"x": cur}))
        .feature("x")
        .wasserstein_norm
    )
    exact = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert ours == pytest.approx(exact, rel=0.02, abs=0.002)


def test_new_category_is_flagged_and_named(profile: ReferenceProfile) -> None:
    window = frame(np.random.default_rng(8), 5_000)
    window.loc[window.index[:500], "channel"] = "marketplace"
    report = check_drift(reference=profile, current=window)
    channel = report.feature("channel")
    assert report.drifted_features == ["channel"]
    assert channel.method == "jensenshannon" and channel.effect >= 0.1
    assert channel.new_categories == ["marketplace"]


def test_missing_values_appearing_is_drift(profile: ReferenceProfile) -> None:
    window = frame(np.random.default_rng(9), 5_000)
    window.loc[window.index[:750], "uniform"] = np.nan
    report = check_drift(reference=profile, current=window)
    assert report.drifted_features == ["uniform"]
    assert report.feature("uniform").missing_share_current == pytest.approx(0.15)


def test_prediction_drift_numeric_and_categorical(profile: ReferenceProfile) -> None:
    window = frame(np.random.default_rng(10), 5_000)
    report = check_drift(
        reference=profile, current=window, predictions=window["normal"] * 3.0 + 2.0
    )
    assert report.drifted_features == []
    assert report.prediction_drift and report.prediction is not None
    reference_pred = frame(np.random.default_rng(0), 50_000)["normal"] * 3.0
    exact = stats.wasserstein_distance(
        reference_pred, window["normal"] * 3.0 + 2.0
    ) / reference_pred.std(ddof=0)
    assert report.prediction.effect == pytest.approx(exact, rel=0.02)
    assert report.severity() is Severity.MEDIUM

    rng = np.random.default_rng(11)
    x = pd.DataFrame({"x": rng.normal(size=20_000)})
    labels = np.where(rng.random(20_000) < 0.8, "keep", "churn")
    cat_profile = build_reference_profile(features=x, predictions=labels, categorical=[])
    same = check_drift(reference=cat_profile, current=x.iloc[:5_000], predictions=labels[:5_000])
    moved = check_drift(
        reference=cat_profile,
        current=x.iloc[:5_000],
        predictions=np.where(rng.random(5_000) < 0.6, "keep", "churn"),
    )
    assert not same.prediction_drift
    assert (
        moved.prediction_drift
        and moved.prediction is not None
        and moved.prediction.kind == "categorical"
    )


@pytest.mark.parametrize(
    ("share", "pred", "drop", "expected"),
    [
        (0.0, False, None, Severity.NONE),
        (0.0, False, 0.04, Severity.NONE),
        (0.0, False, 0.05, Severity.MEDIUM),
        (0.0, False, 0.12, Severity.HIGH),
        (0.0, False, 0.25, Severity.CRITICAL),
        (0.1, False, None, Severity.MEDIUM),
        (0.3, False, 0.06, Severity.HIGH),
        (0.5, False, None, Severity.CRITICAL),
        (0.05, True, None, Severity.MEDIUM),
        (0.6, True, 0.01, Severity.CRITICAL),
    ],
)
def test_severity_mapping(share: float, pred: bool, drop: float | None, expected: Severity) -> None:
    got = assess_severity(
        drifted_share=share, prediction_drift=pred, metric_drop=drop, config=SeverityConfig()
    )
    assert got is expected


def test_severity_from_catalog_block_and_metric_drop() -> None:
    config = SeverityConfig.from_monitoring(
        MonitoringSpec(drifted_feature_share=0.2, metric_drop_high=0.15)
    )
    assert (
        config.drifted_share_medium,
        config.drifted_share_high,
        config.drifted_share_critical,
    ) == (0.1, 0.2, 0.5)
    assert (
        assess_severity(drifted_share=0.0, prediction_drift=False, metric_drop=0.12, config=config)
        is Severity.MEDIUM
    )
    assert metric_drop(baseline=0.80, current=0.72, higher_is_better=True) == pytest.approx(0.1)
    assert metric_drop(baseline=10.0, current=9.0, higher_is_better=False) == 0.0
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.NONE
    with pytest.raises(DataError, match="metric_drop must be"):
        assess_severity(drifted_share=0.0, prediction_drift=False, metric_drop=-0.1, config=config)


def test_config_validation_errors_name_the_bad_value() -> None:
    with pytest.raises(ValidationError, match="alpha"):
        DriftConfig(alpha=1.5)
    with pytest.raises(ValidationError, match="extra"):
        DriftConfig(treshold=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"0\.2 / 0\.1 / 0\.3"):
        SeverityConfig(metric_drop_medium=0.2, metric_drop_high=0.1, metric_drop_critical=0.3)
    with pytest.raises(ValidationError, match=r"0\.4 / 0\.3 / 0\.5"):
        SeverityConfig(drifted_share_medium=0.4)
    spec = MonitoringSpec.model_validate(
        {"drifted_feature_share": 0.3, "drift": {"wasserstein_threshold": 0.08}}
    )
    assert spec.drift.wasserstein_threshold == 0.08
    with pytest.raises(ValidationError, match="correction"):
        MonitoringSpec.model_validate({"drift": {"correction": "holm"}})


def test_bad_input_gets_clear_errors(profile: ReferenceProfile) -> None:
    window = frame(np.random.default_rng(12), 500)
    with pytest.raises(DataError, match=r"lacks profiled feature columns \['count'\]"):
        check_drift(reference=profile, current=window.drop(columns=["count"]))
    with pytest.raises(DataError, match="fewer than min_current_rows"):
        check_drift(reference=profile, current=window.iloc[:10])
    with pytest.raises(DataError, match=r"\['normal'\] are not numeric"):
        check_drift(reference=profile, current=window.assign(normal="x"))
    with pytest.raises(DataError, match="one value per current row"):
        check_drift(reference=profile, current=window, predictions=np.zeros(3))
    with pytest.raises(DataError, match=r"categorical columns \['nope'\]"):
        build_reference_profile(features=window, predictions=None, categorical=["nope"])
    with pytest.raises(DataError, match="not numeric"):
        build_reference_profile(features=window, predictions=None, categorical=[])


def test_profile_round_trip_is_small_and_exact(profile: ReferenceProfile, tmp_path: Path) -> None:
    folder = profile.save(tmp_path / "reference")
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 3_000_000
    loaded = ReferenceProfile.load(folder)
    window = frame(np.random.default_rng(13), 3_000, shifts={"count": 0.4})
    preds = window["normal"] * 3.0
    before = check_drift(reference=profile, current=window, predictions=preds).to_dict()
    after = check_drift(reference=loaded, current=window, predictions=preds).to_dict()
    assert json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
    assert loaded.sample.shape == (5_000, 7)
    with pytest.raises(DataError, match="no reference profile"):
        ReferenceProfile.load(tmp_path / "elsewhere")


def test_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    bh = adjust_p_values(p, method="bh")
    expected = np.minimum.accumulate((p * 10 / np.arange(1, 11))[::-1])[::-1]
    np.testing.assert_allclose(bh, expected)
    assert bh[0] == pytest.approx(0.01) and bh[4] == pytest.approx(0.084)
    np.testing.assert_allclose(adjust_p_values(p, method="bonferroni"), np.minimum(p * 10, 1))


def test_evidently_report_written_parsed_and_agrees(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    n = 3_000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(CATS, n)})
    cur = pd.DataFrame(
        {
            "a": rng.normal(0.6, 1.0, n),
            "b": rng.normal(size=n),
            "c": np.where(rng.random(n) < 0.15, "z", rng.choice(CATS, n)),
        }
    )
    result = run_evidently_drift(
        reference=ref,
        current=cur,
        numeric=["a", "b"],
        categorical=["c"],
        folder=tmp_path,
        name="w-1",
        config=DriftConfig(),
    )
    assert (
        result.html_path.stat().st_size > 10_000
        and "<html" in result.html_path.read_text()[:2000].lower()
    )
    parsed = parse_evidently_drift(json.loads(result.json_path.read_text()))
    assert parsed == result.columns
    assert set(parsed) == {"a", "b", "c"}
    assert parsed["a"].method == "wasserstein" and parsed["a"].threshold == 0.05
    ours = check_drift(
        reference=build_reference_profile(features=ref, predictions=None, categorical=["c"]),
        current=cur,
    )
    assert result.drifted_columns == ours.drifted_features == ["a", "c"]
    assert parsed["a"].score == pytest.approx(ours.feature("a").effect, rel=0.03)
    by_profile = evidently_report_for_profile(
        profile=build_reference_profile(
            features=ref, predictions=ref["a"] * 2, categorical=infer_categorical(ref)
        ),
        current=cur,
        predictions=cur["a"] * 2,
        folder=tmp_path,
        name="w-2",
        config=DriftConfig(),
    )
    assert by_profile.drifted_columns == ["a", "prediction", "c"]
    assert by_profile.json_path.is_file() and by_profile.html_path.is_file()
    with pytest.raises(DataError, match="not an Evidently snapshot"):
        parse_evidently_drift({"metrics": "nope"})
    with pytest.raises(DataError, match="plain file name"):
        run_evidently_drift(
            reference=ref, current=cur, numeric=["a"], categorical=[], folder=tmp_path, name="../x"
        )
