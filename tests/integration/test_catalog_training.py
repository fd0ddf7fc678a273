"""Catalog models of every kind through the real pipeline: Ray fit, evaluator, gate, MLflow registry.

One model per family and task shape (sklearn text classifier, LightGBM ranking,
XGBoost binary, LightGBM multiclass, a decision model with its own evaluator),
then the registered champion is loaded back from MLflow and must predict
exactly what the trained bundle predicted. A model that misses its gate is
logged and not registered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from raycore.catalog import load_catalog
from raycore.errors import GateFailedError
from raycore.registry import ModelStore
from raycore.settings import FoundrySettings
from raycore.training.pipeline import train_model
from raycore.training.portfolio import train_portfolio, write_portfolio
from tests.conftest import free_port

pytestmark = pytest.mark.integration

CATALOG = load_catalog()
MODELS = ["mdl-002", "mdl-007", "mdl-014", "mdl-023", "mdl-024"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> FoundrySettings:
    return FoundrySettings(home=tmp_path_factory.mktemp("catalog-home"), serve_port=free_port())


@pytest.fixture(scope="module")
def portfolio(ray_session: None, settings: FoundrySettings) -> list:  # type: ignore[type-arg]
    """Trained as `foundry train --all` does: LightGBM on warm workers, which step aside for the
    other families' Ray Train runs and Ray tasks (a pool that kept its CPUs would deadlock them)."""
    from raycore.training.warm_pool import warm_training

    specs = [CATALOG.get(m) for m in MODELS]
    with warm_training() as pool:
        rows = train_portfolio(
            specs, train=lambda spec, say: train_model(spec, settings=settings, progress=say)
        )
    from raycore.conformal import plan_for

    # conformal calibration fits each calibrated model once more, on the inner training rows
    assert pool.fits == sum(
        1 + (plan_for(CATALOG.get(m)) is not None) for m in MODELS if CATALOG.get(m).algorithm.family == "lightgbm"
    )
    return rows


def test_every_kind_passes_its_gate_and_is_registered(
    portfolio: list, settings: FoundrySettings
) -> None:  # type: ignore[type-arg]
    failures = {r.model_id: r.error for r in portfolio if not r.passed}
    assert not failures, failures
    store = ModelStore(settings)
    for row in portfolio:
        spec = CATALOG.get(row.model_id)
        assert spec.gate.passes(row.metric)
        versions = store.versions(spec.name)
        assert [v.version for v in versions if "champion" in v.aliases] == [row.version]
    json_path, _html = write_portfolio(portfolio, Path(settings.home) / "report")
    assert '"passed": 5' in json_path.read_text()


def test_registered_champion_predicts_like_the_trained_bundle(
    portfolio: list, settings: FoundrySettings
) -> None:  # type: ignore[type-arg]
    import mlflow

    from raycore.data.lake import Lake
    from raycore.data.sources import read_source
    from raycore.data.world import WorldConfig
    from raycore.specs import DataSourceSpec
    from raycore.training.pipeline import build_training_rows

    store = ModelStore(settings)
    lake = Lake(settings.lake)

    def table(name: str):  # type: ignore[no-untyped-def]
        return read_source(DataSourceSpec(table=name), lake=lake, world=WorldConfig()).frame

    for model_id in ("mdl-002", "mdl-024"):
        spec = CATALOG.get(model_id)
        bundle, _version = store.load_bundle(spec.name, alias="champion")
        view = bundle.view
        source = read_source(spec.data, lake=lake, world=WorldConfig())
        rows = build_training_rows(
            spec,
            view,
            source.frame,
            tables=table,
        ).rows.tail(50)
        direct = bundle.predict(rows)
        assert direct.dtype == object and set(direct) <= set(
            bundle.metadata.classes
        )  # class labels, not codes
        pyfunc = mlflow.pyfunc.load_model(f"models:/{spec.name}@champion")
        served = np.asarray(pyfunc.predict(view.coerce_inputs(rows)))
        assert list(served) == list(direct)


def test_a_model_that_misses_its_gate_is_logged_not_registered(
    ray_session: None, settings: FoundrySettings
) -> None:
    spec = CATALOG.get("mdl-008")
    strict = spec.model_copy(update={"gate": spec.gate.model_copy(update={"threshold": 0.9999})})
    with pytest.raises(GateFailedError) as info:
        train_model(strict, settings=settings)
    assert "adjusted_rand" in str(info.value) and info.value.run_id
    assert ModelStore(settings).versions(spec.name) == []
