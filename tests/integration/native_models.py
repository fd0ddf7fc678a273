"""Registered catalog models for serving tests, fitted natively (no Ray Train) through the real pipeline steps.

``register_native`` prepares the model's rows from the data world, fits LightGBM
in-process (optionally with the training path's conformal calibration), logs
and registers it on the settings' MLflow, and materialises its feature tables
to the online store: everything a serving test needs, in a few seconds.
``served`` starts the foundry app on loopback for the duration of a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightgbm as lgb
import pandas as pd

from raycore.conformal import fit_calibrated
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.registry.bundle import ModelBundle
from raycore.registry.store import ModelStore
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.training.pipeline import (
    FittedModel,
    PreparedData,
    evaluate_bundle,
    log_candidate,
    make_bundle,
    materialize_tables,
    prepare_training,
    register_candidate,
    write_training_table,
)
from raycore.training.ray_train_job import LABEL_COLUMN


def register_native(
    spec: ModelSpec,
    *,
    settings: FoundrySettings,
    params: dict[str, Any],
    rounds: int,
    calibrate: bool = False,
    promote: bool = True,
) -> tuple[str, ModelBundle, PreparedData]:
    """Fit, log, register and materialise; return (version, bundle, rows).

    The first version becomes champion; a later one is challenger, promoted only
    with ``promote`` when it beats the champion.
    """
    prepared = prepare_training(spec, settings=settings)

    def fit(rows: PreparedData) -> FittedModel:
        path = settings.home / f"native-{spec.id}-{len(rows.train_rows)}.parquet"
        classes = write_training_table(rows, path)
        table = pd.read_parquet(path)
        label = table.pop(LABEL_COLUMN)
        booster = lgb.train(
            {"verbose": -1, **params}, lgb.Dataset(table, label=label), num_boost_round=rounds
        )
        bundle = make_bundle(rows, LightGBMEstimator(booster, task=spec.task), classes)
        return FittedModel(bundle, params, rounds, 0.0, f"native-{spec.id}")

    fitted = fit_calibrated(prepared, fit=fit) if calibrate else fit(prepared)
    store = ModelStore(settings)
    logged = log_candidate(store, prepared, fitted, evaluate_bundle(prepared, fitted.bundle))
    version, _ = register_candidate(store, prepared, logged, evaluate_champion=promote)
    online = settings.online_store()
    try:
        materialize_tables(prepared.view, prepared.built, store=online)
    finally:
        online.close()
    return version, fitted.bundle, prepared


@contextmanager
def served(settings: FoundrySettings, models: list[str]) -> Iterator[str]:
    """The foundry app on loopback serving ``models``; yields its base URL."""
    from ray import serve

    from raycore.serving.runner import start_serving, stop_serving

    # A Serve instance left by another module keeps its own port: start ours fresh, and leave none behind.
    serve.shutdown()
    try:
        yield start_serving(settings=settings, models=models)
    finally:
        stop_serving()
        serve.shutdown()
