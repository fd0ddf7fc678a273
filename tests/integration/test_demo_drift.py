"""``foundry demo drift --quick`` end to end: its JSON summary, checked against what the foundry wrote.

The command runs the whole scenario on real parts (data worlds with injected
drift, Ray Train, MLflow, the Serve app over HTTP, the monitor, the retrain
controller as a named detached actor). The test reads its verdicts back from
the summary and cross-checks them against the registry, the audit log, the
alert file and the Ray actor table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import free_port

pytestmark = pytest.mark.integration

STEPS = [
    "worlds",
    "champion",
    "serving",
    "no_drift_replay",
    "covariate_drift",
    "concept_drift",
    "retrain",
    "shadow_promote",
    "rollback",
    "cooldown",
    "corrupted_retrain_refused",
]


def test_demo_drift_quick_holds_every_step(
    ray_session: None, foundry_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray import serve

    from raycore.cli.main import app as foundry_app
    from raycore.registry.store import ModelStore
    from raycore.retraining.controller import CONTROLLER_NAME, NAMESPACE
    from raycore.settings import FoundrySettings

    serve.shutdown()  # a Serve instance of another module keeps its own port
    monkeypatch.setenv("FOUNDRY_SERVE_PORT", str(free_port()))
    out = foundry_home / "drift.json"
    try:
        result = CliRunner().invoke(
            foundry_app, ["demo", "drift", "--quick", "--json", "--seed", "3", "--out", str(out)]
        )
    finally:
        serve.shutdown()
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == summary

    assert summary["passed"] and summary["failed_step"] is None
    assert [s["step"] for s in summary["steps"]] == STEPS
    assert all(s["held"] for s in summary["steps"]), summary["steps"]
    assert summary["false_alarms_no_drift"] == 0 and summary["windows_no_drift"] >= 3
    assert summary["false_alarms_before_shift"] == 0
    assert summary["detection_delay_windows"] == 1
    true = {"log_income", "debt_to_income", "log_loan_to_income"}
    assert set(summary["drifted_features_true"]) == true
    assert true <= set(summary["drifted_features_found"])
    assert summary["drifted_features_recall"] == 1.0
    assert summary["concept_severity"] in ("HIGH", "CRITICAL")
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["concept_drift"]["evidence"]["repeat"]["safeguard"] == "in_progress"
    assert steps["cooldown"]["evidence"]["verdict"]["safeguard"] == "cooldown"
    assert steps["serving"]["evidence"]["controller"] == f"{NAMESPACE}/{CONTROLLER_NAME}"

    # What the foundry wrote agrees with the summary.
    home = Path(summary["home"])
    settings = FoundrySettings.load(home=str(home), catalog_dir=str(home / "catalog"))
    store = ModelStore(settings)
    name = summary["model"]["name"]
    assert store.alias_version(name, "champion") == "1"  # v2 promoted, then rolled back
    assert store.alias_version(name, "challenger") is None
    actions = [e.action for e in store.audit.history(name)]
    for action in ("retrain_deployed", "promote", "rollback", "retrain_refused"):
        assert action in actions, (action, actions)
    blocked = [e.reason for e in store.audit.history(name) if e.action == "retrain_blocked"]
    assert any("already running" in r for r in blocked) and any("cooldown" in r for r in blocked)
    refused = [e for e in store.audit.history(name) if e.action == "retrain_refused"]
    assert any("missed its gate" in e.reason for e in refused), [e.reason for e in refused]
    alerts = [
        json.loads(line) for line in (home / "monitoring" / "alerts.jsonl").read_text().splitlines()
    ]
    assert any(set(a["drifted_features"]) >= true for a in alerts)
    assert any(a["severity"] in ("HIGH", "CRITICAL") and not a["drifted_features"] for a in alerts)

    # The controller the demo started as a detached actor is gone with the demo.
    with pytest.raises(ValueError):
        ray.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)


def test_drift_truth_maps_to_the_features_the_view_derives(tmp_path: Path) -> None:
    """No Ray: the truth a monitor is held against, and the demo's catalog copy, are what they claim."""
    import pandas as pd

    from raycore.catalog import load_catalog
    from raycore.demo.plan import DEMO_MODEL_ID, DemoPlan, demo_catalog
    from raycore.demo.worlds import derived_features, true_drifted_features
    from raycore.errors import DataError
    from raycore.features.registry import get_feature_view

    view = get_feature_view("credit_application_risk")
    raw = pd.DataFrame(
        {
            "application_id": [1, 2, 3],
            "annual_income": [40_000.0, 55_000.0, 90_000.0],
            "employment_years": [1.0, 4.0, 12.0],
            "debt_to_income": [0.1, 0.3, 0.5],
            "credit_history_years": [2.0, 8.0, 20.0],
            "n_delinquencies_2y": [0, 1, 3],
            "revolving_utilization": [0.2, 0.5, 0.9],
            "loan_amount": [5_000.0, 12_000.0, 30_000.0],
            "loan_term_months": [36, 60, 36],
            "loan_purpose": ["car", "medical", "other"],
            "home_ownership": ["rent", "own", "mortgage"],
        }
    )[view.input_names]
    assert derived_features(view, raw, "annual_income") == ["log_income", "log_loan_to_income"]
    assert derived_features(view, raw, "loan_term_months") == ["term_60"]
    truth = pd.DataFrame(
        {
            "table_name": ["credit_applications", "credit_applications", "orders"],
            "column_name": ["annual_income", "debt_to_income", "amount"],
            "rows_affected": [10, 10, 10],
        }
    )
    assert true_drifted_features(view, raw, truth, table="credit_applications") == [
        "debt_to_income",
        "log_income",
        "log_loan_to_income",
    ]
    with pytest.raises(DataError, match="not among the raw rows"):
        derived_features(view, raw, "salary")

    folder = demo_catalog(tmp_path / "catalog", DemoPlan.for_run(quick=True))
    spec = load_catalog(extra_dirs=[folder.parent]).get(DEMO_MODEL_ID)
    assert spec.retrain.auto and spec.gate.metric == "rmse" and spec.gate.op == "<="
    assert spec.conformal is not None and not spec.conformal.enabled
