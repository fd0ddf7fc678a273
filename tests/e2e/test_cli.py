"""End to end through the `foundry` CLI and HTTP, as a new user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from raycore.catalog import packaged_models_dir
from tests.conftest import free_port

FOUNDRY = shutil.which("foundry", path=str(Path(sys.executable).parent)) or "foundry"


def run_cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FOUNDRY, *args], capture_output=True, text=True, env=env, timeout=timeout)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"RAY_ADDRESS", "MLFLOW_TRACKING_URI"}}
    env.update({"FOUNDRY_HOME": str(home), "COLUMNS": "200", **extra})
    return env


def test_catalog_list_shows_models(tmp_path: Path) -> None:
    out = run_cli("catalog", "list", env=cli_env(tmp_path / "h"))
    assert out.returncode == 0, out.stderr
    assert "mdl-001" in out.stdout and "sales_forecasting" in out.stdout and "untrained" in out.stdout


def test_malformed_catalog_yaml_fails_naming_file_and_field(tmp_path: Path) -> None:
    extra = tmp_path / "catalog"
    extra.mkdir()
    text = (packaged_models_dir() / "mdl-001.yaml").read_text()
    bad = text.replace("id: mdl-001", "id: mdl-031").replace("name: sales_forecasting", "name: broken")
    bad = bad.replace("  threshold: 0.15", "  threshold: fifteen")
    (extra / "mdl-031.yaml").write_text(bad)
    out = run_cli("catalog", "list", env=cli_env(tmp_path / "h", FOUNDRY_CATALOG_DIR=str(extra)))
    assert out.returncode == 2
    err = " ".join(out.stderr.split())
    assert "mdl-031.yaml" in err and "gate.threshold" in err and "fifteen" in err

    (extra / "mdl-031.yaml").write_text("id: mdl-031\nname: [broken\n")
    out = run_cli("catalog", "list", env=cli_env(tmp_path / "h", FOUNDRY_CATALOG_DIR=str(extra)))
    assert out.returncode == 2 and "malformed YAML" in out.stderr


@pytest.mark.e2e
def test_foundry_up_once_then_status_and_mlflow_ui(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    # Direct ingress here: the ingress replica answers on the port itself. (The proxy path, the
    # default, is what tests/integration/test_skeleton.py serves through.)
    env = cli_env(home, FOUNDRY_SERVE_PORT=str(port), FOUNDRY_SERVE_INGRESS="direct")
    out = run_cli("up", "--once", env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "sample prediction:" in out.stdout
    assert "HTTP 422 naming" in out.stdout
    assert (home / "mlflow.db").exists()

    status = run_cli("status", env=env)
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if "mdl-001" in ln)
    assert "champion" in line and "mape=" in line

    # What `mlflow ui --backend-store-uri sqlite:///.foundry/mlflow.db` shows, through its REST API.
    ui_port = free_port()
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen(
        [mlflow_bin, "ui", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
         "--host", "127.0.0.1", "--port", str(ui_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{ui_port}/api/2.0/mlflow"
        deadline = time.monotonic() + 90
        model = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}/registered-models/get", params={"name": "sales_forecasting"}, timeout=2)
                if r.status_code == 200:
                    model = r.json()["registered_model"]
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert model is not None, "mlflow ui did not answer"
        assert {"alias": "champion", "version": "1"} in model["aliases"]
        exps = httpx.get(f"{base}/experiments/get-by-name", params={"experiment_name": "foundry/sales_forecasting"}, timeout=5)
        exp_id = exps.json()["experiment"]["experiment_id"]
        runs = httpx.post(f"{base}/runs/search", json={"experiment_ids": [exp_id]}, timeout=5).json()["runs"]
        assert len(runs) == 1
        assert any(m["key"] == "holdout_mape" for m in runs[0]["data"]["metrics"])
    finally:
        server.terminate()
        server.wait(timeout=30)
