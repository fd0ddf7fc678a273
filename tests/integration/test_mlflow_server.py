"""The foundry against a real MLflow tracking server on loopback instead of the embedded SQLite file.

A real ``mlflow server`` (SQL backend store, proxied artifact store) runs as a
subprocess; ``MLFLOW_TRACKING_URI`` points at it, the way a cluster's nodes are
configured (cluster/README.md). One mdl-001 model goes through the training
pipeline's own steps (prepare, fit, evaluate, log, register, materialise the
online features) with a native LightGBM fit, as tests/integration/test_registry.py
does to stay small: what is under test is the tracking server, not Ray Train.
Then the real Serve app loads the champion from the server and answers over HTTP.

The version, its alias and its artifacts must be on the server (the artifacts in
the server's ``--artifacts-destination``, reached through ``mlflow-artifacts:``),
and nothing may fall back to a local path under FOUNDRY_HOME.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.features import assemble_online
from raycore.registry.store import ModelStore
from raycore.settings import FoundrySettings
from tests.conftest import free_port
from tests.integration.native_models import register_native, served

pytestmark = pytest.mark.integration

SPEC = load_catalog().get("mdl-001")
NAME = SPEC.name
SERVER_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TrackingServer:
    url: str
    backend_db: Path
    artifacts: Path
    log: Path
    proc: subprocess.Popen  # type: ignore[type-arg]

    def wait_ready(self, *, timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
        """Block until /health answers; fail with the server's log if it exits or stays down."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not up in {timeout_s:.0f}s:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.25)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """`mlflow server` with a SQLite backend store and a local artifact destination, on loopback.

    Started here, waited for by its first user: it boots while the training data is prepared.
    """
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log_path = folder / "server.log"
    backend, artifacts = folder / "srv.db", folder / "art"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{backend}",
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    # The server's background job runner (a pool of huey consumers) is nothing the foundry uses;
    # without it the server starts in half the time on two cores.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log_path, "w") as log:
        # Its own session: teardown ends the server and every process it forks, nothing else.
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        yield TrackingServer(f"http://127.0.0.1:{port}", backend, artifacts, log_path, proc)
    finally:
        # The group is this server's alone (start_new_session): end it, then whatever of it lingers.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="module")
def foundry(
    mlflow_server: TrackingServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FoundrySettings]:
    """An mdl-001 champion logged and registered on the server, its features in the online store."""
    home = tmp_path_factory.mktemp("foundry-on-server")
    # ModelStore exports MLFLOW_TRACKING_URI (mlflow.set_tracking_uri): set it to the server, as a
    # cluster node's environment does, and leave it as we found it for the modules that run after us.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        settings = FoundrySettings(home=home, serve_port=free_port(), online_store_uri=None)
        assert settings.tracking_uri == mlflow_server.url  # read from the environment
        mlflow_server.wait_ready()
        params = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.1, "seed": 7}
        version, _, _ = register_native(SPEC, settings=settings, params=params, rounds=40)
        assert version == "1"
        yield settings


@pytest.fixture(scope="module")
def endpoint(ray_session: None, foundry: FoundrySettings) -> Iterator[str]:
    with served(foundry, [NAME]) as url:
        yield url


def _request_row(settings: FoundrySettings) -> dict[str, Any]:
    """What a client sends for mdl-001: store, target week, promotion flag."""
    store = settings.online_store()
    try:
        found = store.read("store_weekly_stats_v1", [(3,)])[0]
    finally:
        store.close()
    assert found is not None
    week = pd.Timestamp(found["origin_week"]) + pd.Timedelta(weeks=2)
    return {"store_id": 3, "week_start": week.date().isoformat(), "on_promo": 1}


def test_version_alias_and_artifacts_live_on_the_server(
    mlflow_server: TrackingServer, foundry: FoundrySettings
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"
    run = client.get_run(client.get_model_version(NAME, "1").run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    assert run.data.metrics, "the run's metrics were not logged to the server"

    # The bytes sit in the server's artifact destination, and only there.
    stored = [p for p in mlflow_server.artifacts.rglob("*") if p.is_file()]
    assert any(p.name == "MLmodel" for p in stored), sorted(str(p) for p in stored)[:20]
    assert not (foundry.home / "mlartifacts").exists()
    assert not (foundry.home / "mlflow.db").exists()
    assert mlflow_server.backend_db.stat().st_size > 0

    # The registry answers through the server: the bundle downloads from it and loads.
    bundle, version = ModelStore(foundry).load_bundle(NAME, alias="champion")
    assert version == "1" and bundle.metadata.model_name == NAME


def test_serving_loads_the_champion_from_the_server_and_predicts(
    endpoint: str, foundry: FoundrySettings, mlflow_server: TrackingServer
) -> None:
    row = _request_row(foundry)
    response = httpx.post(f"{endpoint}/v1/models/{NAME}/predict", json={"inputs": row}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers.get("x-model-version") == "1"
    answer = response.json()
    assert answer["model_version"] == "1"

    bundle, _ = ModelStore(foundry).load_bundle(NAME, alias="champion")
    store = foundry.online_store()
    try:
        expected = np.asarray(
            bundle.predict(assemble_online(bundle.view, pd.DataFrame([row]), online=store))
        )
    finally:
        store.close()
    np.testing.assert_allclose(
        np.asarray(answer["predictions"], dtype=float), expected.astype(float), rtol=1e-9
    )
