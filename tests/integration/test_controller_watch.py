"""The retrain controller watches the automated models: a check finds the drop, the trigger meets the safeguards.

A copy of mdl-027 with ``retrain.auto`` on is registered natively; its answers
go to the real prediction log and labels come back that contradict them. One
``watch()`` runs the monitor over the window since the last check, finds the
metric drop (CRITICAL) and submits a ``performance`` trigger — which the
``min_new_labels`` safeguard (set high here) blocks and the audit log records,
so no retrain job is needed to see the link. A second ``watch()`` right after
is not due yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog, packaged_models_dir
from raycore.feedback import record_labels
from raycore.registry.store import ModelStore
from raycore.retraining import RetrainController
from raycore.retraining.controller import WATCH_FILE
from raycore.settings import FoundrySettings
from tests.integration.native_models import register_native
from tests.integration.test_monitor_estimate import _log

pytestmark = pytest.mark.integration


@pytest.fixture()
def watched_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    text = (packaged_models_dir() / "mdl-027.yaml").read_text()
    text = text.replace("id: mdl-027", "id: mdl-033").replace("name: credit_risk", "name: credit_risk_watched")
    text = text.replace(
        "retrain:\n  cadence: monthly",
        "retrain:\n  cadence: monthly\n  auto: true\n  min_new_labels: 100000",
    )
    assert "min_new_labels: 100000" in text
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "mdl-033.yaml").write_text(text)
    monkeypatch.setenv("FOUNDRY_CATALOG_DIR", str(folder))
    return folder


def test_watch_checks_new_answers_and_submits_what_it_finds(
    ray_session: None, foundry_home: Path, watched_catalog: Path
) -> None:
    settings = FoundrySettings()
    spec = load_catalog(extra_dirs=[watched_catalog]).get("mdl-033")
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 50}
    version, bundle, prepared = register_native(spec, settings=settings, params=params, rounds=150)
    raw = bundle.view.coerce_inputs(prepared.holdout_rows[bundle.view.input_names]).reset_index(drop=True)
    p = np.asarray(bundle.predict(raw), dtype="float64")
    rows = raw.head(400)
    _log(settings, name=spec.name, version=version, raw=rows, values=p[: len(rows)], tag="w")
    # the world turned: the applicants the model trusts default, the others repay
    flipped = (p[: len(rows)] < np.median(p)).astype(int)
    record_labels(
        home=settings.home,
        model=spec.name,
        labels=pd.DataFrame({"request_id": [f"w-{i}" for i in range(len(rows))], "label": flipped}),
    )

    controller = RetrainController(
        home=str(settings.home), tracking_uri=settings.mlflow_tracking_uri,
        catalog_dir=str(watched_catalog), inline=True,
    )  # fmt: skip
    events = controller.watch()
    assert [e["model"] for e in events] == [spec.name], events
    event = events[0]
    assert event["event"] == "checked" and event["severity"] == "CRITICAL", event
    verdict = event["submitted"]["verdict"]
    assert event["submitted"]["job_id"] is None and verdict["safeguard"] == "min_new_labels", verdict
    blocked = [e for e in ModelStore(settings).audit.history(spec.name) if e.action == "retrain_blocked"]
    assert blocked and blocked[-1].evidence["trigger"] == "performance"
    assert blocked[-1].evidence["severity"] == "CRITICAL" and blocked[-1].evidence["new_labels"] == 400
    marks = json.loads((settings.home / "monitoring" / spec.name / WATCH_FILE).read_text())
    assert marks["check_id"] == event["check_id"]

    assert controller.watch() == []  # the next check is due in monitoring.check_every_s
    assert controller.scheduled() == []  # the monthly cadence counts from the champion registered just now

    # What the dashboard shows: the severity gauge and the registration's alias change, from Ray's exporter.
    import time

    import httpx
    import ray

    port = ray._private.worker.global_worker.node.metrics_export_port
    want = (
        'ray_foundry_drift_severity{',
        'ray_foundry_alias_changes_total{',
    )
    lines: list[str] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        lines = [line for line in text.splitlines() if f'model="{spec.name}"' in line]
        if all(any(line.startswith(w) for line in lines) for w in want):
            break
        time.sleep(1)
    severity = [line for line in lines if line.startswith(want[0])]
    assert severity and all(line.endswith(" 3.0") for line in severity), lines
    assert any(line.startswith(want[1]) and 'alias="champion"' in line for line in lines), lines
