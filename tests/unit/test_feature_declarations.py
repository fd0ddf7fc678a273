"""Feature views declared as YAML data, and fitted feature state that travels with the model bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from raycore.errors import DataError, IncompatibleBundleError, RegistryError, SpecError
from raycore.features import feature_views, get_feature_view, load_view_file
from raycore.features.declared import DECLARED_DIR
from raycore.features.registry import FEATURES_DIR_ENV
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.registry.bundle import FEATURE_STATE_FILE, BundleMetadata, ModelBundle

FEATURES_DIR = Path(__file__).resolve().parents[1] / "data" / "features"
PURPOSES = ("debt_consolidation", "home_improvement", "car", "medical")


@pytest.fixture()
def declared(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(FEATURES_DIR_ENV, str(FEATURES_DIR))
    return FEATURES_DIR


def _applications(n: int, seed: int, purposes: tuple[str, ...] = PURPOSES) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "application_id": np.arange(1, n + 1),
            "annual_income": rng.lognormal(10.8, 0.5, n),
            "loan_amount": rng.lognormal(9.5, 0.6, n),
            "debt_to_income": rng.uniform(0.0, 0.6, n),
            "loan_term_months": rng.choice([36, 60], n),
            "loan_purpose": rng.choice(
                list(purposes), n, p=[0.5, 0.3, 0.15, 0.05][: len(purposes)]
            ),
        }
    )


def test_a_shipped_view_declared_in_yaml_is_the_view_its_python_functions_define() -> None:
    view = get_feature_view("store_sales_lags")
    assert (DECLARED_DIR / "store_sales_lags.yaml").is_file()
    # The digest covers fields, bounds, tables and function source: the one every bundle records.
    assert view.digest() == "9ab8761805869f08"
    assert [t.name for t in view.tables] == ["store_weekly_stats"]
    assert (
        view.scale_column == "rev_mean_13"
        and view.check is not None
        and view.label_rows is not None
    )


def test_a_users_folder_of_declarations_is_registered(declared: Path) -> None:
    views = feature_views()
    assert "credit_scaled" in views and "store_sales_lags" in views
    assert views["credit_scaled"].stateful


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "colour: blue\n", r"colour: Extra inputs are not permitted"),
        (
            lambda t: t.replace("tests.feature_state_views:transform", "tests.no_such_module:f"),
            r"transform: module 'tests.no_such_module' cannot be imported",
        ),
        (
            lambda t: t.replace(
                "tests.feature_state_views:transform", "tests.feature_state_views:nope"
            ),
            r"transform: 'tests.feature_state_views' has no function 'nope'",
        ),
        (
            lambda t: t.replace("tests.feature_state_views:transform", "transform_without_module"),
            r"is not an import path",
        ),
        (
            lambda t: t.replace("features: [", "tables:\n  - name: no_such_table\nfeatures: ["),
            r"feature table 'no_such_table' is not declared anywhere",
        ),
        (
            lambda t: t.replace("dtype: int, description: 36", "dtype: integer, description: 36"),
            r"request\.3\.dtype",
        ),
        (
            lambda t: t.replace("name: credit_scaled", "name: Credit Scaled"),
            r"name: String should match",
        ),
        (lambda t: t + "  - [unclosed\n", r"not valid YAML"),
    ],
)
def test_a_bad_declaration_names_the_file_and_what_is_wrong(
    tmp_path: Path, edit, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.yaml"
    path.write_text(edit((FEATURES_DIR / "credit_scaled.yaml").read_text()))
    with pytest.raises(SpecError, match=message) as err:
        load_view_file(path)
    assert str(path) in str(err.value)


def test_a_name_declared_twice_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(DECLARED_DIR / "store_sales_lags.yaml", tmp_path / "mine.yaml")
    monkeypatch.setenv(FEATURES_DIR_ENV, str(tmp_path))
    with pytest.raises(SpecError, match="'store_sales_lags' is declared in both"):
        feature_views()
    monkeypatch.setenv(FEATURES_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(SpecError, match="does not exist"):
        feature_views()


def test_fitted_state_is_learned_from_the_rows_given_and_used_by_compute(declared: Path) -> None:
    view = get_feature_view("credit_scaled")
    train = _applications(2000, seed=1)
    with pytest.raises(DataError, match=r"has fitted state .* that was not fitted"):
        view.compute(train)
    fitted = view.fitted(train)
    state = fitted.state
    assert state is not None and set(state["purposes"]) == set(PURPOSES)
    assert state["scale"]["annual_income"]["median"] == pytest.approx(
        train["annual_income"].median()
    )
    features = fitted.compute(train)
    assert abs(features["annual_income_scaled"].median()) < 1e-9
    # A purpose never seen in training: code -1, share 0 (not an error, not a silent training code).
    new = train.head(3).assign(loan_purpose="bnpl_refinance")
    assert fitted.compute(new)["purpose_code"].tolist() == [-1.0] * 3
    assert fitted.compute(new)["purpose_share"].tolist() == [0.0] * 3
    # The state depends on the rows it was fitted on, and on nothing else.
    other = view.fitted(_applications(2000, seed=2))
    assert other.state_digest() != fitted.state_digest()
    assert view.fitted(train).state_digest() == fitted.state_digest()
    with pytest.raises(DataError, match="zero rows"):
        view.fitted(train.head(0))


def test_state_that_is_not_json_is_refused(declared: Path) -> None:
    view = get_feature_view("credit_scaled")
    with pytest.raises(DataError, match="not JSON"):
        view.with_state({"scale": np.float64("nan")})
    with pytest.raises(DataError, match="has no fitted state"):
        get_feature_view("store_sales_lags").with_state({"a": 1})


def _bundle(view_name: str, train: pd.DataFrame) -> ModelBundle:
    view = get_feature_view(view_name).fitted(train)
    x = view.compute(train)
    y = (train["debt_to_income"] > 0.3).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(x, label=y), num_boost_round=5
    )
    metadata = BundleMetadata(
        model_id="mdl-test",
        model_name="credit_scaled_test",
        task="binary",
        label="high_dti",
        family="lightgbm",
        feature_view=view.name,
        feature_view_version=view.version,
        feature_view_digest=view.digest(),
        input_schema=view.input_schema(),
        feature_state_digest=view.state_digest(),
    )
    return ModelBundle(
        estimator=LightGBMEstimator(booster, task="binary"), view=view, metadata=metadata
    )


def test_the_fitted_state_travels_in_the_bundle_and_serving_computes_the_same_features(
    declared: Path, tmp_path: Path
) -> None:
    train, serving = _applications(1500, seed=3), _applications(200, seed=4)
    bundle = _bundle("credit_scaled", train)
    folder = bundle.save(tmp_path / "bundle")
    assert json.loads((folder / FEATURE_STATE_FILE).read_text()) == bundle.view.state
    loaded = ModelBundle.load(folder)
    pd.testing.assert_frame_equal(
        loaded.view.compute(serving), bundle.view.compute(serving), check_exact=True
    )
    np.testing.assert_array_equal(loaded.predict(serving), bundle.predict(serving))
    assert loaded.metadata.feature_state_digest == bundle.view.state_digest() != ""


def test_a_tampered_or_missing_state_file_is_refused_and_the_bundle_is_left_alone(
    declared: Path, tmp_path: Path
) -> None:
    folder = _bundle("credit_scaled", _applications(800, seed=5)).save(tmp_path / "bundle")
    path = folder / FEATURE_STATE_FILE
    original = path.read_text()
    state = json.loads(original)
    state["scale"]["annual_income"]["median"] *= 2
    path.write_text(json.dumps(state))
    with pytest.raises(RegistryError, match="does not match the bundle"):
        ModelBundle.load(folder)
    path.write_text("{not json")
    with pytest.raises(RegistryError, match="unreadable"):
        ModelBundle.load(folder)
    path.unlink()
    with pytest.raises(IncompatibleBundleError, match="no fitted state"):
        ModelBundle.load(folder)
    path.write_text(original)
    assert ModelBundle.load(folder).view.state == json.loads(original)
