"""The walking skeleton on real parts: local Ray Train, MLflow on SQLite, Ray Serve on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.errors import ConfigurationError
from raycore.features import assemble_online
from raycore.settings import FoundrySettings
from raycore.training.pipeline import TrainOutcome, train_model
from tests.conftest import free_port

pytestmark = pytest.mark.integration

SPEC = load_catalog().get("mdl-001")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> FoundrySettings:
    home = tmp_path_factory.mktemp("foundry-home")
    return FoundrySettings(home=home, serve_port=free_port())


@pytest.fixture(scope="module")
def trained(ray_session: None, settings: FoundrySettings) -> TrainOutcome:
    return train_model(SPEC, settings=settings)


@pytest.fixture(scope="module")
def endpoint(trained: TrainOutcome, settings: FoundrySettings) -> Iterator[str]:
    from raycore.serving.runner import start_serving, stop_serving

    yield start_serving(settings=settings, models=[SPEC.name])
    stop_serving()


@pytest.fixture(scope="module")
def sample_rows(trained: TrainOutcome, settings: FoundrySettings) -> list[dict[str, Any]]:
    """Requests as a client sends them: store, target week, promotion flag."""
    store = settings.online_store()
    try:
        rows = []
        for store_id in range(1, 21):
            found = store.read("store_weekly_stats_v1", [(store_id,)])[0]
            assert found is not None, f"store {store_id} was not materialised"
            origin = pd.Timestamp(found["origin_week"])
            week = origin + pd.Timedelta(weeks=1 + store_id % 4)
            rows.append({"store_id": store_id, "week_start": week.date().isoformat(), "on_promo": store_id % 2})
        return rows
    finally:
        store.close()


def test_trains_through_ray_passes_gate_and_becomes_champion(trained: TrainOutcome, settings: FoundrySettings) -> None:
    from raycore.registry.store import ModelStore

    assert trained.passed and trained.version == "1"
    assert trained.metric <= SPEC.gate.threshold
    assert trained.oracle_metric is not None and trained.oracle_metric < trained.metric
    store = ModelStore(settings)
    assert store.alias_version(SPEC.name, "champion") == "1"
    run = store.client.get_run(trained.run_id)
    assert run.data.metrics["holdout_mape"] == pytest.approx(trained.metric)
    assert run.data.tags["catalog_id"] == "mdl-001"
    assert run.data.tags["gate_passed"] == "true"
    assert run.data.params["num_workers"] == "2"
    # lineage: the gold snapshot and the feature table it was trained on
    assert len(run.data.tags["data_digest.gold/store_sales_weekly"]) == 16
    assert run.data.tags["data_digest.feature_table.store_weekly_stats_v1"]
    assert run.data.metrics["online_rows.store_weekly_stats_v1"] == 40
    (event,) = store.audit.history(SPEC.name)
    assert event.alias == "champion" and event.version == "1" and event.previous is None
    # Ray Train left its checkpoint under FOUNDRY_HOME
    assert any(settings.ray_storage.glob("sales_forecasting-*/checkpoint_*"))


def test_mlflow_pyfunc_and_bundle_predict_the_same(
    trained: TrainOutcome, settings: FoundrySettings, sample_rows: list[dict[str, Any]]
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    from raycore.registry.store import ModelStore

    bundle, _ = ModelStore(settings).load_bundle(SPEC.name, alias="champion")
    store = settings.online_store()
    frame = assemble_online(bundle.view, pd.DataFrame(sample_rows), online=store)
    store.close()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{SPEC.name}@champion")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(frame)), bundle.predict(frame), rtol=1e-12)


def test_http_prediction_names_version_and_matches_in_process(
    endpoint: str, settings: FoundrySettings, sample_rows: list[dict[str, Any]]
) -> None:
    import pandas as pd

    from raycore.registry.store import ModelStore

    url = f"{endpoint}/v1/models/{SPEC.name}/predict"
    r = httpx.post(url, json={"inputs": sample_rows, "request_id": "abc"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "1" and body["request_id"] == "abc"
    bundle, _ = ModelStore(settings).load_bundle(SPEC.name, alias="champion")
    store = settings.online_store()
    expected = bundle.predict(assemble_online(bundle.view, pd.DataFrame(sample_rows), online=store))
    store.close()
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9)
    one = httpx.post(url, json={"inputs": sample_rows[0]}, timeout=30).json()
    assert one["predictions"] == pytest.approx([expected[0]], rel=1e-9)


def test_bad_requests_get_4xx_and_the_replica_keeps_serving(endpoint: str, sample_rows: list[dict[str, Any]]) -> None:
    url = f"{endpoint}/v1/models/{SPEC.name}/predict"
    row = dict(sample_rows[0])
    del row["on_promo"]
    r = httpx.post(url, json={"inputs": row}, timeout=30)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "on_promo"
    assert "on_promo" in r.json()["error"]
    unknown = httpx.post(url, json={"inputs": [sample_rows[0], {**sample_rows[0], "store_id": 4242}]}, timeout=30)
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "inputs", 1, "store_id"]
    assert "store_id=4242" in unknown.json()["error"]
    far = httpx.post(url, json={"inputs": {**sample_rows[0], "week_start": "2030-01-07"}}, timeout=30)
    assert far.status_code == 422 and "origin_week" in far.json()["error"]
    assert httpx.post(url, content=b"{oops", timeout=30).status_code == 400
    assert httpx.post(url, json={"inputs": {**sample_rows[0], "on_promo": "x"}}, timeout=30).status_code == 422
    assert httpx.post(f"{endpoint}/v1/models/nope/predict", json={"inputs": row}, timeout=30).status_code == 404
    again = httpx.post(url, json={"inputs": sample_rows[0]}, timeout=30)
    assert again.status_code == 200
    assert httpx.get(f"{endpoint}/v2/health/ready", timeout=5).json() == {"ready": True}
    assert httpx.get(f"{endpoint}/docs", timeout=5).status_code == 200


def test_use_gpu_on_a_cpu_cluster_fails_before_any_work(ray_session: None, tmp_path: Path) -> None:
    from raycore.specs import ResourcesSpec
    from raycore.training.ray_lightgbm import fit_lightgbm

    with pytest.raises(ConfigurationError, match="GPU"):
        fit_lightgbm(
            train_path=tmp_path / "never-read.parquet",
            params={},
            num_boost_round=1,
            resources=ResourcesSpec(num_workers=1, use_gpu=True),
            storage_path=tmp_path,
            run_name="gpu-check",
        )
