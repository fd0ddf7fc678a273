"""A monitor check on a binary model reports the label-free estimate of its gate metric.

mdl-027 (credit risk, gate roc_auc) is registered natively; its answers are
written to the real prediction log. A window drawn like the holdout estimates
the holdout's AUC; a window of applicants the model is unsure about estimates
a clear drop — before any label has come back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.monitoring.monitor import DriftMonitor
from raycore.serving.prediction_log import PredictionLog
from raycore.settings import FoundrySettings
from tests.integration.native_models import register_native

pytestmark = pytest.mark.integration


def _log(settings: FoundrySettings, *, name: str, version: str, raw: pd.DataFrame, values: np.ndarray, tag: str) -> None:
    plog = PredictionLog(home=settings.home, replica=tag)
    for i in range(len(raw)):
        plog.append(
            model=name, version=version, alias="champion", route="simple", request_id=f"{tag}-{i}",
            latency_ms=1.0, rows=raw.iloc[[i]].reset_index(drop=True), values=values[[i]],
        )  # fmt: skip
    plog.close()


def test_a_window_of_unsure_answers_shows_an_estimated_drop_without_labels(
    ray_session: None, foundry_home: Path
) -> None:
    settings = FoundrySettings()
    spec = load_catalog().get("mdl-027")
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 50}
    version, bundle, prepared = register_native(spec, settings=settings, params=params, rounds=150)
    raw = bundle.view.coerce_inputs(prepared.holdout_rows[bundle.view.input_names]).reset_index(drop=True)
    p = np.asarray(bundle.predict(raw), dtype="float64")
    monitor = DriftMonitor(settings=settings, spec=spec)

    steady = raw.sample(min(600, len(raw)), random_state=1).index
    _log(settings, name=spec.name, version=version, raw=raw.loc[steady], values=p[steady], tag="steady")
    calm = monitor.check()
    assert calm.estimated is not None and calm.estimated["metric"] == "roc_auc"
    assert abs(calm.estimated["estimated_drop"]) < 0.05, calm.estimated
    assert calm.live_n == 0  # no label came back: the estimate is all there is

    mark = pd.Timestamp.now(tz="UTC")
    unsure = np.flatnonzero(np.abs(p - np.median(p)) < np.quantile(np.abs(p - np.median(p)), 0.3))
    _log(settings, name=spec.name, version=version, raw=raw.loc[unsure], values=p[unsure], tag="unsure")
    moved = monitor.check(since=mark)
    assert moved.estimated is not None and moved.rows == len(unsure)
    assert moved.estimated["estimated_drop"] > 0.1, moved.estimated
    assert moved.estimated["reference"] == pytest.approx(calm.estimated["reference"])
