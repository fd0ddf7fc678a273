"""The feature layer at scale-out: views computed on Ray Data, fitted state through training and the registry.

- ``compute_features(engine="ray")`` gives the frame ``view.compute`` gives in
  process — same values, dtypes and row order — for views with feature tables,
  request-only views, the slowest view of the catalog and a view with fitted state.
- A catalog model on a YAML-declared view with fitted state trains through the
  real pipeline: the state is learned from the training rows only, logged with
  the bundle to MLflow, named in the version's lineage, and the registered
  bundle loaded back computes the features training computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.catalog import packaged_models_dir
from raycore.data.world import World, WorldConfig
from raycore.data.world.marketing import generate_marketing
from raycore.data.world.retail import generate_retail
from raycore.data.world.risk import generate_risk
from raycore.errors import DataError
from raycore.features import compute_features, get_feature_view
from raycore.features.registry import FEATURES_DIR_ENV
from raycore.registry.lineage import version_lineage
from raycore.registry.store import ModelStore
from raycore.settings import FoundrySettings

from .native_models import register_native

pytestmark = pytest.mark.integration

FEATURES_DIR = Path(__file__).resolve().parents[1] / "data" / "features"


@pytest.fixture(scope="module")
def world() -> World:
    config = WorldConfig(seed=7, scale="small")
    out = World(config=config)
    generate_retail(config, out)
    out.truth["customers_truth"] = pd.DataFrame(
        {"customer_id": np.arange(1, config.size("n_customers") + 1)}
    )
    generate_marketing(config, out)
    generate_risk(config, out)
    return out


def _rows(name: str, world: World) -> pd.DataFrame:
    view = get_feature_view(name)
    t = {k: v.drop_duplicates() for k, v in world.tables.items()}
    if name == "store_sales_lags":
        tables = {"store_weekly_stats": view.tables[0].materialize(t["store_sales_weekly"])}
        return view.training_frame(view.label_rows(t["store_sales_weekly"]), tables).rows  # type: ignore[misc]
    if name in ("credit_application_risk", "credit_scaled"):
        apps = t["credit_applications"].drop_duplicates("application_id")
        apps = apps[
            apps["annual_income"].between(1, 600_000)
            & apps["home_ownership"].isin(["rent", "mortgage", "own"])
        ]
        labels = view.label_rows(apps, {"credit_outcomes": t["credit_outcomes"]})  # type: ignore[misc]
        return view.training_frame(labels, {}).rows
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["store_sales_lags", "credit_application_risk", "credit_scaled"])
def test_ray_data_computes_the_frame_the_process_computes(
    ray_session: None, world: World, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FEATURES_DIR_ENV, str(FEATURES_DIR))
    view = get_feature_view(name)
    rows = _rows(name, world)
    if view.stateful:
        view = view.fitted(rows)
    rows = rows.sample(frac=1.0, random_state=0)  # a shuffled index must come back as it went in
    assert len(rows) > 2000
    in_process = compute_features(view, rows, engine="pandas")
    on_ray = compute_features(view, rows, engine="ray", block_rows=max(1, len(rows) // 5))
    pd.testing.assert_frame_equal(on_ray, in_process, check_exact=True)
    assert on_ray.index.equals(rows.index)


def test_an_error_in_a_ray_task_reaches_the_caller_with_the_views_message(
    ray_session: None, world: World
) -> None:
    view = get_feature_view("store_sales_lags")
    rows = _rows("store_sales_lags", world).head(500).copy()
    rows.loc[rows.index[-1], "week_start"] = rows["origin_week"].iloc[-1] + pd.Timedelta(days=9 * 7)
    with pytest.raises(DataError, match="cannot be scored by view 'store_sales_lags'"):
        compute_features(view, rows, engine="ray", block_rows=100)


@pytest.fixture()
def scaled_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """mdl-027 credit risk re-declared on the stateful credit_scaled view, as a user would."""
    text = (packaged_models_dir() / "mdl-027.yaml").read_text()
    text = text.replace("id: mdl-027", "id: mdl-032").replace(
        "name: credit_risk", "name: credit_risk_scaled"
    )
    text = text.replace("features: [credit_application_risk]", "features: [credit_scaled]")
    # Six features instead of eighteen: a weaker model, with a gate to match (it is not the subject).
    text = text.replace("threshold: 0.80", "threshold: 0.60").replace("threshold: 0.40", "threshold: 0.20")
    lines = []
    for (
        line
    ) in text.splitlines():  # the monotone constraints belong to the original view's features
        if line.strip().startswith("monotone_constraints"):
            continue
        lines.append(line)
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "mdl-032.yaml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("FOUNDRY_CATALOG_DIR", str(folder))
    monkeypatch.setenv(FEATURES_DIR_ENV, str(FEATURES_DIR))
    return folder


def test_fitted_state_is_learned_on_training_rows_and_registered_with_the_bundle(
    ray_session: None, foundry_home: Path, scaled_catalog: Path
) -> None:
    from raycore.catalog import load_catalog

    settings = FoundrySettings()
    spec = load_catalog(extra_dirs=[scaled_catalog]).get("mdl-032")
    version, bundle, prepared = register_native(
        spec, settings=settings, params={"objective": "binary", "learning_rate": 0.1}, rounds=20
    )
    state = bundle.view.state
    assert state is not None
    # Learned from the training rows only: the holdout does not move it.
    train_only = get_feature_view("credit_scaled").fitted(prepared.train_rows)
    assert train_only.state == state
    everything = pd.concat([prepared.train_rows, prepared.holdout_rows])
    assert get_feature_view("credit_scaled").fitted(everything).state != state

    store = ModelStore(settings)
    lineage = version_lineage(store, spec.name, version=version)
    assert lineage["feature_state_digest"] == bundle.view.state_digest() != ""
    loaded, _ = store.load_bundle(spec.name, version=version, dst=foundry_home / "download")
    sample = prepared.holdout_rows.head(300)
    pd.testing.assert_frame_equal(
        loaded.view.compute(sample), bundle.view.compute(sample), check_exact=True
    )
    np.testing.assert_allclose(loaded.predict(sample), bundle.predict(sample), rtol=0, atol=1e-12)
