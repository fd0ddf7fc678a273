"""Conformal calibration through the real pipeline: Ray fit, calibration cut, MLflow, registry, load.

A small catalog regression model is trained with ``train_model``; the champion
loaded back from the registry carries its calibrator, whose intervals cover
the untouched holdout about as often as promised.
"""

from __future__ import annotations

import numpy as np
import pytest

from raycore.catalog import load_catalog
from raycore.conformal import RegressionCalibrator
from raycore.registry import ModelStore
from raycore.settings import FoundrySettings
from raycore.training.pipeline import prepare_training, train_model
from tests.conftest import free_port

pytestmark = pytest.mark.integration

MODEL = "mdl-030"  # media mix regression: an sklearn estimator on ~700 weekly rows (one Ray task per fit)
# Only the datasets mdl-030 reads are ingested (as `foundry data ingest` does): the full lake is not needed.
DATASETS = ["regions", "media_sales_weekly", "marketing_spend_weekly"]


def test_trained_model_carries_a_calibrator_that_covers_the_holdout(
    ray_session: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from raycore.data.lake import Lake
    from raycore.data.layers import dataset_specs, run_pipeline
    from raycore.data.sources import ensure_world
    from raycore.data.world import WorldConfig

    settings = FoundrySettings(
        home=tmp_path_factory.mktemp("conformal-home"), serve_port=free_port()
    )
    lake = Lake(settings.lake)
    ensure_world(lake, WorldConfig())
    specs = dataset_specs()
    run_pipeline(
        [specs[name] for name in DATASETS], lake=lake, world=WorldConfig(), engine="pandas"
    )
    spec = load_catalog().get(MODEL)
    outcome = train_model(spec, settings=settings)
    assert outcome.passed and outcome.version is not None

    bundle, _version = ModelStore(settings).load_bundle(spec.name, alias="champion")
    calibrator = bundle.calibrator
    assert isinstance(calibrator, RegressionCalibrator)
    assert calibrator.levels == [0.9, 0.95, 0.99]
    assert calibrator.info["strategy"] == "refit" and calibrator.n_calibration > 0
    prepared = prepare_training(spec, settings=settings)
    # the calibration rows were cut from the training rows, never from the holdout
    assert calibrator.info["n_inner_train"] + calibrator.n_calibration == len(prepared.train_rows)

    holdout = prepared.holdout_rows
    served = bundle.predict_with_uncertainty(holdout, level=0.9)
    np.testing.assert_allclose(served["prediction"], bundle.predict(holdout))
    y = holdout[spec.label].to_numpy(dtype="float64")
    inside = (y >= served["lower"]) & (y <= served["upper"])
    assert (served["lower"] <= served["prediction"]).all() and (
        served["prediction"] <= served["upper"]
    ).all()
    # ~150 holdout rows: 0.9 ± 3 binomial standard errors
    assert abs(inside.mean() - 0.9) < 3 * np.sqrt(0.09 / len(y)), inside.mean()
    wider = bundle.predict_with_uncertainty(holdout, level=0.99)
    assert (wider["upper"] - wider["lower"] >= served["upper"] - served["lower"] - 1e-9).all()
