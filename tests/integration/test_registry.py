"""The registry on a real MLflow (SQLite) store: promotion gate, rollback, audit history, lineage, concurrency.

Candidates are real LightGBM models of mdl-001 on the data world, fitted in
this process (the registry is under test here, not Ray Train), logged and
registered through the same pipeline functions ``foundry train`` uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import lightgbm as lgb
import pandas as pd
import pytest
from typer.testing import CliRunner

from raycore.catalog import load_catalog
from raycore.errors import PromotionRefusedError, RegistryError
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.registry.lineage import version_lineage
from raycore.registry.promotion import promote_version, rollback_champion
from raycore.registry.store import ModelStore
from raycore.settings import FoundrySettings
from raycore.training.pipeline import (
    FittedModel,
    PreparedData,
    evaluate_bundle,
    log_candidate,
    make_bundle,
    prepare_training,
    register_candidate,
    write_training_table,
)
from raycore.training.ray_train_job import LABEL_COLUMN

pytestmark = pytest.mark.integration

SPEC = load_catalog().get("mdl-001")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> FoundrySettings:
    return FoundrySettings(home=tmp_path_factory.mktemp("registry-home"))


@pytest.fixture(scope="module")
def prepared(settings: FoundrySettings) -> PreparedData:
    return prepare_training(SPEC, settings=settings)


def _candidate(prepared: PreparedData, settings: FoundrySettings, *, rounds: int, leaves: int) -> tuple[str, str]:
    """Fit, evaluate, log and register one mdl-001 candidate; return (version, decision)."""
    path = settings.home / f"train-{rounds}-{leaves}.parquet"
    write_training_table(prepared, path)
    table = pd.read_parquet(path)
    label = table.pop(LABEL_COLUMN)
    params = {"objective": "regression", "num_leaves": leaves, "learning_rate": 0.05, "seed": 7, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(table, label=label), num_boost_round=rounds)
    bundle = make_bundle(prepared, LightGBMEstimator(booster, task=SPEC.task), [])
    fitted = FittedModel(bundle, params, rounds, 0.0, f"test-{rounds}-{leaves}")
    store = ModelStore(settings)
    logged = log_candidate(store, prepared, fitted, evaluate_bundle(prepared, bundle))
    return register_candidate(store, prepared, logged)


@pytest.fixture(scope="module")
def story(prepared: PreparedData, settings: FoundrySettings) -> dict[str, tuple[str, str]]:
    """A modest champion, then a deliberately worse candidate, then a better one."""
    return {
        "first": _candidate(prepared, settings, rounds=40, leaves=4),
        "worse": _candidate(prepared, settings, rounds=12, leaves=3),
        "better": _candidate(prepared, settings, rounds=200, leaves=31),
    }


def test_worse_candidate_is_refused_better_promoted_rollback_restores(
    story: dict[str, tuple[str, str]], prepared: PreparedData, settings: FoundrySettings
) -> None:
    store = ModelStore(settings)
    assert story["first"][0] == "1" and "champion" in story["first"][1]
    assert story["worse"][0] == "2" and "stays challenger" in story["worse"][1]
    assert "refused" in story["worse"][1] and "mape" in story["worse"][1]
    assert story["better"][0] == "3" and "promoted" in story["better"][1]
    assert store.alias_version(SPEC.name, "champion") == "3"
    assert store.alias_version(SPEC.name, "challenger") is None  # v3 left challenger when promoted

    # asking again explicitly: the refusal carries the comparison in the error
    with pytest.raises(PromotionRefusedError) as err:
        promote_version(store, prepared, version="2", reason="try again")
    assert "candidate v2 vs champion v3" in err.value.message
    assert {c["metric"] for c in err.value.comparison} == {"mape"}
    assert store.alias_version(SPEC.name, "champion") == "3"

    new, old = rollback_champion(store, SPEC.name, reason="v3 misbehaves in production")
    assert (new, old) == ("1", "3")
    assert store.alias_version(SPEC.name, "champion") == "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback_champion(store, SPEC.name)

    events = [(e.action, e.alias, e.version, e.previous) for e in store.audit.history(SPEC.name)]
    assert events == [
        ("promote", "champion", "1", None),
        ("candidate", "challenger", "2", None),
        ("promotion_refused", "champion", "2", "1"),
        ("candidate", "challenger", "3", "2"),
        ("promote", "champion", "3", "1"),
        ("remove_alias", "challenger", None, "3"),
        ("promotion_refused", "champion", "2", "3"),
        ("rollback", "champion", "1", "3"),
    ]
    history = store.audit.history(SPEC.name)
    promoted = history[4]
    assert promoted.evidence["comparisons"][0]["metric"] == "mape"
    assert promoted.evidence["comparisons"][0]["ok"] is True
    assert history[-1].reason == "v3 misbehaves in production"
    assert history[6].reason.startswith("try again: ")


def test_cli_history_lineage_and_refusal(story: dict[str, tuple[str, str]], settings: FoundrySettings,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from raycore.cli.main import app

    monkeypatch.setenv("FOUNDRY_HOME", str(settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()
    shown = runner.invoke(app, ["registry", "history", "mdl-001", "--json"])
    assert shown.exit_code == 0, shown.output
    actions = [e["action"] for e in json.loads(shown.output)]
    assert actions[:5] == ["promote", "candidate", "promotion_refused", "candidate", "promote"]

    lineage = runner.invoke(app, ["registry", "lineage", "mdl-001:3", "--json"])
    assert lineage.exit_code == 0, lineage.output
    info = json.loads(lineage.output)
    assert info["version"] == "3"
    assert info["feature_view"].startswith("store_sales_lags:v")
    assert any(k.startswith("gold/") for k in info["data_digests"])
    assert info["params"]["num_boost_round"] == "200"

    bad = runner.invoke(app, ["registry", "lineage", "mdl-001:99"])
    assert bad.exit_code == 1
    assert "no version 99" in bad.output

    explained = runner.invoke(app, ["explain", "mdl-001:3", "--top", "3"], terminal_width=200)
    assert explained.exit_code == 0, explained.output
    assert "mean_abs_contribution" in explained.output
    import mlflow

    logged = mlflow.artifacts.load_dict(f"runs:/{info['run_id']}/importance.json")
    assert logged["kind"] == "mean_abs_contribution"
    assert len(logged["importance"]) >= 2
    first = next(iter(logged["importance"]))
    assert first in explained.output

    refused = runner.invoke(app, ["registry", "promote", "mdl-001", "--version", "2"])
    assert refused.exit_code == 1
    assert "refused" in refused.output and "mape" in refused.output


def test_two_processes_changing_aliases_at_once_keep_alias_and_audit_consistent(
    story: dict[str, tuple[str, str]], settings: FoundrySettings
) -> None:
    """Two processes start together and each flip champion or roll back 30 times."""
    store = ModelStore(settings)
    before = len(store.audit.history(SPEC.name))
    start_holder = store.alias_version(SPEC.name, "champion")
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from raycore.registry.store import ModelStore
        from raycore.registry.promotion import rollback_champion
        from raycore.settings import FoundrySettings
        store = ModelStore(FoundrySettings(home={str(settings.home)!r}))
        me = sys.argv[1]
        barrier = Path({str(settings.home)!r})
        (barrier / f"ready-{{me}}").touch()
        while not all((barrier / f"ready-{{n}}").exists() for n in (0, 1)):
            time.sleep(0.01)
        for i in range(30):
            if i % 3 == 2:
                try:
                    rollback_champion(store, {SPEC.name!r}, actor=f"proc:{{me}}", reason=f"{{me}} rollback {{i}}")
                except Exception as exc:
                    if "no previous champion" not in str(exc) and "already the champion" not in str(exc):
                        raise
            else:
                store.set_alias(name={SPEC.name!r}, alias="champion", version=str(1 + (i + int(me)) % 3),
                                action="promote", actor=f"proc:{{me}}", reason=f"{{me}} step {{i}}")
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in (0, 1)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err

    events = [e for e in store.audit.history(SPEC.name)[before:] if e.alias == "champion"]
    assert len(events) >= 40  # every set_alias is recorded (rollbacks may find nothing to do)
    assert {e.actor for e in events} == {"proc:0", "proc:1"}
    current = start_holder
    for event in events:  # each change saw the previous one: no lost update
        assert event.previous == current, (event, current)
        current = event.version
    assert store.alias_version(SPEC.name, "champion") == current


def test_registered_bundle_reloads_identically_with_its_metadata(
    story: dict[str, tuple[str, str]], prepared: PreparedData, settings: FoundrySettings
) -> None:
    store = ModelStore(settings)
    bundle, _ = store.load_bundle(SPEC.name, version="3")
    info = version_lineage(store, SPEC.name, version="3")
    md = bundle.metadata
    assert (md.model_id, md.task, md.run_id) == ("mdl-001", SPEC.task, info["run_id"])
    columns = list(prepared.view.compute(prepared.holdout_rows.head(3)).columns)
    assert [f["name"] for f in md.features] == columns
    assert md.data_digests == prepared.data_digests and md.code_version
    # scored again from the downloaded artifact: the metric logged at training time
    again = evaluate_bundle(prepared, bundle).metrics["mape"]
    assert again == pytest.approx(info["metrics"]["holdout_mape"], rel=1e-9)


def test_a_champion_the_code_can_no_longer_run_is_replaced_by_a_passing_candidate(
    prepared: PreparedData, settings: FoundrySettings
) -> None:
    """A champion built on a retired feature view version cannot be re-scored (or served)."""
    import dataclasses

    legacy_spec = SPEC.model_copy(update={"name": "sales_forecasting_legacy"})
    legacy = dataclasses.replace(prepared, spec=legacy_spec)
    store = ModelStore(settings)

    path = settings.home / "legacy.parquet"
    write_training_table(legacy, path)
    table = pd.read_parquet(path)
    label = table.pop(LABEL_COLUMN)
    booster = lgb.train({"objective": "regression", "verbose": -1, "seed": 7}, lgb.Dataset(table, label=label), 50)
    old = make_bundle(legacy, LightGBMEstimator(booster, task=SPEC.task), [])
    old.metadata = dataclasses.replace(old.metadata, feature_view_version=old.metadata.feature_view_version - 1)
    fitted = FittedModel(old, {}, 50, 0.0, "legacy")
    logged = log_candidate(store, legacy, fitted, evaluate_bundle(legacy, old))
    assert register_candidate(store, legacy, logged)[0] == "1"

    fresh = make_bundle(legacy, LightGBMEstimator(booster, task=SPEC.task), [])
    logged = log_candidate(store, legacy, FittedModel(fresh, {}, 50, 0.0, "fresh"), evaluate_bundle(legacy, fresh))
    version, decision = register_candidate(store, legacy, logged)
    assert version == "2" and "cannot run with this code" in decision
    assert store.alias_version("sales_forecasting_legacy", "champion") == "2"
    last = store.audit.history("sales_forecasting_legacy")[-2]
    assert (last.action, last.version, last.previous) == ("promote", "2", "1")
    assert "feature view" in last.reason


def test_opening_a_store_does_not_redirect_later_settings(settings: FoundrySettings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ModelStore(settings)
    other = FoundrySettings(home=tmp_path / "other")
    assert other.tracking_uri == f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
