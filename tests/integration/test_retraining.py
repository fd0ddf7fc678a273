"""The retrain loop end to end on real parts: catalog → Ray Train → MLflow registry → live evidence → rollback.

A copy of churn_risk (mdl-005) with automation on is the model. Its first
champion is deliberately weak (15 rounds). A HIGH drift trigger retrains it
through the controller's safeguards; the retrained version must beat the
champion on the fresh holdout and is then shadowed. Live evidence is the two
versions' real answers to the holdout customers (shadow comparison records,
as the serving app writes them) with the true outcomes recorded as late labels:
the controller promotes. Then the world changes (the labels of the new
champion's logged answers flip): the rollback window catches the drop and
rolls back. A retrain on corrupted labels is refused before any traffic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog, packaged_models_dir
from raycore.feedback import record_labels
from raycore.registry.store import ModelStore
from raycore.retraining import RetrainController
from raycore.settings import FoundrySettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("FOUNDRY_HEAVY_TESTS") != "1",
        reason="163 s of CI: the same loop (drift trigger -> retrain -> shadow -> promote -> rollback, "
        "corrupted retrain refused) runs end to end over HTTP in test_demo_drift.py; "
        "set FOUNDRY_HEAVY_TESTS=1 to run this library-level version too",
    ),
]


@pytest.fixture()
def auto_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    text = (packaged_models_dir() / "mdl-005.yaml").read_text()
    text = text.replace("id: mdl-005", "id: mdl-031").replace(
        "name: churn_risk", "name: churn_risk_auto"
    )
    text = text.replace(
        "retrain:\n  cadence: monthly",
        "retrain:\n  cadence: monthly\n  auto: true\n  min_live_comparisons: 150\n  rollback_window_hours: 1",
    )
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "mdl-031.yaml").write_text(text)
    monkeypatch.setenv("FOUNDRY_CATALOG_DIR", str(folder))
    return folder


def test_drift_retrain_shadow_promote_rollback_and_a_corrupted_retrain_refused(
    ray_session: None, foundry_home: Path, auto_catalog: Path
) -> None:
    from raycore.monitoring.monitor import DriftMonitor
    from raycore.registry.traffic_state import TrafficStateStore
    from raycore.serving.prediction_log import PredictionLog
    from raycore.serving.traffic import ShadowLog
    from raycore.specs.monitoring import Severity
    from raycore.training.pipeline import prepare_training, train_model

    settings = FoundrySettings.load()
    spec = load_catalog(extra_dirs=[auto_catalog]).get("mdl-031")
    assert spec.retrain.auto
    weak = train_model(spec, settings=settings, num_boost_round=15)
    assert weak.version == "1"
    store = ModelStore(settings)
    rows = prepare_training(spec, settings=settings).holdout_rows.reset_index(drop=True)
    champion, _ = store.load_bundle(spec.name, version="1")

    # The monitor: calm traffic (the holdout customers) is quiet; late deliveries piling up are caught.
    monitor = DriftMonitor(settings=settings, spec=spec)
    raw = rows[champion.view.input_names].sample(3000, random_state=0).reset_index(drop=True)

    def serve_window(frame: pd.DataFrame, replica: str) -> None:
        plog = PredictionLog(home=settings.home, replica=replica)
        scores = np.asarray(champion.predict(frame))
        for start in range(0, len(frame), 50):
            part = frame.iloc[start : start + 50].reset_index(drop=True)
            plog.append(
                model=spec.name,
                version="1",
                alias="champion",
                route="test",
                latency_ms=1.0,
                request_id=f"{replica}-{start}",
                rows=part,
                values=scores[start : start + 50],
            )
        plog.close()

    serve_window(raw, "calm")
    calm = monitor.check()
    assert (calm.severity, calm.drifted_features, calm.rows) == ("NONE", [], len(raw))
    mark = pd.Timestamp.now(tz="UTC")
    serve_window(raw.assign(late_13=raw["late_13"] + 3), "late")
    hot = monitor.check(since=mark, evidently=True)
    assert "late_13" in hot.drifted_features and hot.rows == len(raw), hot
    assert Severity(hot.severity) >= Severity.MEDIUM and hot.alerted
    alerts = [
        json.loads(line)
        for line in (settings.home / "monitoring" / "alerts.jsonl").read_text().splitlines()
    ]
    assert [a["check_id"] for a in alerts] == [hot.check_id]
    assert hot.evidently_html is not None and Path(hot.evidently_html).stat().st_size > 10_000

    ctl = RetrainController(home=str(settings.home), catalog_dir=str(auto_catalog), inline=True)

    low = ctl.submit("mdl-031", kind="drift", severity="MEDIUM", new_labels=500)
    assert low["job_id"] is None and low["verdict"]["safeguard"] == "severity"

    go = ctl.submit(
        "mdl-031", kind="drift", severity="HIGH", new_labels=500, detail="tenure drifted"
    )
    assert go["verdict"]["go"], go
    ctl.tick()
    state = ctl.states.get(spec.name)
    assert state.stage == "live", state.last_result
    assert (state.version, state.champion_version) == ("2", "1")
    assert store.alias_version(spec.name, "champion") == "1"
    active = TrafficStateStore.open(store).active(spec.name).policy
    assert (
        active.kind == "shadow"
        and active.shadow is not None
        and active.shadow.alias == "challenger"
    )

    busy = ctl.submit("mdl-031", kind="drift", severity="CRITICAL", new_labels=500)
    assert busy["verdict"]["safeguard"] == "in_progress"
    assert ctl.tick() == []  # no labelled live evidence yet: nothing moves

    # Live traffic: both versions answer the holdout customers; the true outcomes come back later.
    rows = rows.head(600)
    challenger, _ = store.load_bundle(spec.name, version="2")
    p1, p2 = np.asarray(champion.predict(rows)), np.asarray(challenger.predict(rows))
    shadow_log = ShadowLog(home=settings.home, model=spec.name)
    ids = [f"req-{i}" for i in range(len(rows))]
    for rid, a, b in zip(ids, p1, p2, strict=True):
        shadow_log.write(
            {
                "at": "2099-01-01T00:00:00",
                "request_id": rid,
                "primary": {"predictions": [float(a)]},
                "shadow": {"predictions": [float(b)]},
                "primary_error": None,
                "shadow_error": None,
            }
        )
    record_labels(
        home=settings.home,
        model=spec.name,
        labels=pd.DataFrame({"request_id": ids, "label": rows[spec.label].to_numpy()}),
    )
    events = ctl.tick()
    assert [e["event"] for e in events] == ["promoted"], events
    assert store.alias_version(spec.name, "champion") == "2"
    assert store.alias_version(spec.name, "challenger") is None
    assert TrafficStateStore.open(store).active(spec.name).policy.kind == "single"
    assert ctl.states.get(spec.name).stage == "watching"

    # The world changes after the promotion: v2's logged answers meet flipped outcomes.
    plog = PredictionLog(home=settings.home, replica="test")
    late = [f"late-{i}" for i in range(len(rows))]
    for rid, score, (_, row) in zip(late, p2, rows.iterrows(), strict=True):
        plog.append(
            model=spec.name,
            version="2",
            alias="champion",
            route="test",
            request_id=rid,
            latency_ms=1.0,
            rows=pd.DataFrame([row[["customer_id"]].to_dict()]),
            values=np.array([score]),
        )
    plog.close()
    record_labels(
        home=settings.home,
        model=spec.name,
        labels=pd.DataFrame({"request_id": late, "label": 1 - rows[spec.label].to_numpy()}),
    )
    events = ctl.tick()
    assert [e["event"] for e in events] == ["rolled_back"], events
    assert store.alias_version(spec.name, "champion") == "1"

    cooled = ctl.submit("mdl-031", kind="drift", severity="CRITICAL", new_labels=5000)
    assert cooled["verdict"]["safeguard"] == "cooldown"

    drill = ctl.submit("mdl-031", kind="manual", force=True, corrupt_labels=0.7, actor="user:drill")
    assert drill["verdict"]["go"]
    ctl.tick()
    after = ctl.states.get(spec.name)
    assert after.stage == "idle" and after.last_result["stage"] == "refused", after.last_result
    assert store.alias_version(spec.name, "champion") == "1"

    actions = [e.action for e in store.audit.history(spec.name)]
    for expected in (
        "retrain_blocked",
        "retrain_started",
        "retrain_deployed",
        "promote",
        "rollback",
        "retrain_refused",
        "traffic_set",
    ):
        assert expected in actions, (expected, actions)
    reasons = " | ".join(
        e.reason for e in store.audit.history(spec.name) if e.action == "retrain_blocked"
    )
    assert (
        "below retrain.min_severity" in reasons
        and "already running" in reasons
        and "cooldown" in reasons
    )
