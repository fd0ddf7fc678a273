"""Online coverage end to end on real parts: prediction log → late labels → coverage alert → recalibrate → back.

A calibrated regression model is registered in MLflow (fitted natively). Its
answers to the holdout rows are logged as a replica logs them; the labels
arrive shifted (the world moved), so the served 90% intervals stop holding:
the drift monitor's check carries a ``coverage`` block out of tolerance and
alerts. ``recalibrate`` registers the same model with a calibrator from those
labelled answers, moves the champion alias and audits it; the next window,
answered by the new version, is back within tolerance. Bad input changes nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from raycore.catalog import load_catalog
from raycore.conformal import ConformalError
from raycore.conformal.recalibrate import recalibrate
from raycore.feedback import record_labels
from raycore.monitoring.monitor import DriftMonitor
from raycore.registry.store import ModelStore
from raycore.serving.prediction_log import PredictionLog
from raycore.settings import FoundrySettings
from tests.conftest import free_port
from tests.integration.native_models import register_native

pytestmark = pytest.mark.integration

SPEC = load_catalog().get(
    "mdl-015"
)  # campaign response: LightGBM on ~2,000 campaigns, request features only
DATASETS = [
    "regions",
    "campaigns",
]  # only what mdl-015 reads is ingested (as `foundry data ingest` does)


def _serve(
    settings: FoundrySettings, *, bundle, version: str, raw: pd.DataFrame, tag: str
) -> list[str]:  # type: ignore[no-untyped-def]
    """Log the version's answers to ``raw`` as single-row requests; return their request ids."""
    plog = PredictionLog(home=settings.home, replica=tag)
    values = np.asarray(bundle.predict(raw))
    ids = [f"{tag}-{i}" for i in range(len(raw))]
    for i, rid in enumerate(ids):
        plog.append(
            model=SPEC.name, version=version, alias="champion", route="simple", request_id=rid,
            latency_ms=1.0, rows=raw.iloc[[i]].reset_index(drop=True), values=values[[i]],
        )  # fmt: skip
    plog.close()
    return ids


def test_log_labels_alert_recalibrate_and_coverage_back(
    ray_session: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from raycore.data.lake import Lake
    from raycore.data.layers import dataset_specs, run_pipeline
    from raycore.data.sources import ensure_world
    from raycore.data.world import WorldConfig

    home = tmp_path_factory.mktemp("coverage-home")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        settings = FoundrySettings(
            home=home, serve_port=free_port(), mlflow_tracking_uri=uri, online_store_uri=None
        )
        lake = Lake(settings.lake)
        ensure_world(lake, WorldConfig())
        specs = dataset_specs()
        run_pipeline([specs[n] for n in DATASETS], lake=lake, world=WorldConfig(), engine="pandas")
        params = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.1, "seed": 7}
        version, bundle, prepared = register_native(
            SPEC, settings=settings, params=params, rounds=60, calibrate=True
        )
        assert version == "1" and bundle.calibrator is not None
        store = ModelStore(settings)
        every = pd.concat([prepared.train_rows, prepared.holdout_rows], ignore_index=True)
        rows = every.sample(1800, random_state=0).reset_index(drop=True)
        raw = bundle.view.coerce_inputs(rows[bundle.view.input_names])
        y = rows[SPEC.label].to_numpy(dtype="float64")
        # the world moved: every outcome is now higher by about the 90% interval's half width
        shift = float(np.median(bundle.calibrator.half_width(bundle.predict(raw), level=0.9,
                                                             features=bundle.view.compute(raw))))  # fmt: skip
        first, second = slice(0, 900), slice(900, 1800)

        ids = _serve(settings, bundle=bundle, version="1", raw=raw.iloc[first], tag="a")
        record_labels(
            home=home, model=SPEC.name, labels=pd.DataFrame({"request_id": ids, "label": y[first] + shift})
        )  # fmt: skip
        monitor = DriftMonitor(settings=settings, spec=SPEC)
        hot = monitor.check()
        cov = hot.coverage
        assert cov is not None and cov["status"] == "out_of_tolerance", cov
        assert cov["severity"] == "HIGH" and cov["n_labelled"] == 900
        at90 = next(lv for lv in cov["levels"] if lv["level"] == 0.9)
        assert at90["realised"] < 0.9 - 2 * cov["tolerance"]
        assert hot.alerted and hot.severity in ("HIGH", "CRITICAL")
        drift = json.loads((monitor.folder / hot.check_id / "drift.json").read_text())
        assert drift["coverage"]["status"] == "out_of_tolerance"
        latest = json.loads((monitor.folder / "latest.json").read_text())
        assert latest["coverage"]["levels"][0]["covered"] == cov["levels"][0]["covered"]
        alert = json.loads((home / "monitoring" / "alerts.jsonl").read_text().splitlines()[-1])
        assert alert["check_id"] == hot.check_id and alert["coverage"]["severity"] == "HIGH"

        # bad input changes nothing: too few fresh rows, no reason, an unknown version
        with pytest.raises(ConformalError, match="needs at least 100"):
            recalibrate(settings=settings, spec=SPEC, reason="x", rows=rows.head(20))
        with pytest.raises(ConformalError, match="reason"):
            recalibrate(settings=settings, spec=SPEC, reason=" ")
        assert [v.version for v in store.versions(SPEC.name)] == ["1"]

        result = recalibrate(settings=settings, spec=SPEC, reason="coverage fell after a shift")
        assert (result.from_version, result.version, result.aliases_moved) == (
            "1",
            "2",
            ["champion"],
        )
        assert result.source == "prediction_log" and result.n_rows == 900
        assert result.coverage_before[0.9] == pytest.approx(at90["realised"])
        assert abs(result.coverage_next_half[0.9] - 0.9) < 0.06
        assert store.alias_version(SPEC.name, "champion") == "2"
        event = next(e for e in store.audit.history(SPEC.name) if e.id == result.audit_id)
        assert (event.action, event.version, event.previous) == ("conformal_recalibrate", "2", "1")
        assert event.reason == "coverage fell after a shift" and event.evidence["n_rows"] == 900
        assert event.evidence["coverage_before"]["0.9"] == pytest.approx(at90["realised"])
        renewed, _ = store.load_bundle(SPEC.name, alias="champion")
        assert renewed.calibrator.info["recalibrated_from"] == "1"
        # same model (no retraining), new calibrator
        np.testing.assert_allclose(renewed.predict(raw.head(50)), bundle.predict(raw.head(50)))
        assert renewed.calibrator.quantiles[0.9] > bundle.calibrator.quantiles[0.9]
        tags = store.client.get_model_version(SPEC.name, "2").tags
        assert tags["recalibrated_from"] == "1" and tags.get("metric_value") == store.client.get_model_version(SPEC.name, "1").tags.get("metric_value")  # fmt: skip

        # the next window is answered by v2 and holds again
        mark = pd.Timestamp.now(tz="UTC")
        ids = _serve(settings, bundle=renewed, version="2", raw=raw.iloc[second], tag="b")
        record_labels(
            home=home, model=SPEC.name, labels=pd.DataFrame({"request_id": ids, "label": y[second] + shift})
        )  # fmt: skip
        calm = monitor.check(since=mark)
        assert calm.version == "2" and calm.coverage is not None
        assert calm.coverage["status"] == "ok", calm.coverage
        assert calm.coverage["n_labelled"] == 900

        from raycore.cli.conformal_cmds import conformal_app

        env.setenv("FOUNDRY_HOME", str(home))
        out = CliRunner().invoke(conformal_app, ["status", SPEC.id, "--json"])
        assert out.exit_code == 0, out.output
        shown = json.loads(
            out.stdout.strip().splitlines()[-1]
        )  # MLflow's download bars go to stderr
        assert (shown["version"], shown["status"], shown["n_labelled"]) == ("2", "ok", 900)
        refused = CliRunner().invoke(conformal_app, ["recalibrate", SPEC.id, "--reason", "again", "--since", str(pd.Timestamp.now(tz="UTC"))])  # fmt: skip
        assert refused.exit_code == 1 and "needs at least 100" in refused.output
        assert [v.version for v in store.versions(SPEC.name)] == ["1", "2"]
