"""A real sweep of mdl-005 (churn_risk, LightGBM): its driver killed mid-sweep, resumed, registered.

`foundry tune mdl-005 --config tiny.yaml` runs in a subprocess with its own local Ray: two
trials of 20 boosting rounds, one worker each, ASHA with a rung at 10 rounds, Optuna. Once
Tune's experiment state records the first trial as finished, the driver's process group is
SIGKILLed (no cleanup code runs). `tune_model(resume=True)` (what `foundry tune mdl-005
--resume` calls) then finishes the sweep on the test's Ray: the finished trial is not rerun,
the other one runs, every trial has exactly one nested MLflow run under the sweep's parent
run, and the best trial's model is scored on the holdout and registered (first version:
champion).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.settings import FoundrySettings
from raycore.tuning import tune_model

pytestmark = pytest.mark.integration

FOUNDRY = str(Path(sys.executable).with_name("foundry"))
TINY_SWEEP = """\
model: mdl-005
num_samples: 2
max_concurrent: 1
report_every: 10
scheduler: {kind: asha, grace_period: 10, reduction_factor: 2}
space:
  learning_rate: {type: loguniform, low: 0.05, high: 0.2}
  num_leaves: {type: randint, low: 7, high: 31}
  num_boost_round: {type: choice, values: [20]}
drop: [min_data_in_leaf, feature_fraction, lambda_l2]
"""


def _recorded_statuses(root: Path) -> tuple[Path | None, dict[str, str]]:
    """The sweep folder under ``root`` and its trials' statuses as Tune's saved experiment state has them."""
    for state_file in root.glob("*/experiment_state-*.json"):
        try:
            trials = json.loads(state_file.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):  # being rewritten: read it again next time
            continue
        statuses = {}
        for trial_json, _meta in trials:
            trial = json.loads(trial_json)
            statuses[trial["trial_id"]] = trial["status"]
        return state_file.parent, statuses
    return None, {}


def _kill_after_first_trial(home: Path, config_file: Path, sweeps: Path) -> tuple[Path, str]:
    """Run `foundry tune` in a subprocess; SIGKILL its process group once one trial is recorded finished."""
    env = {k: v for k, v in os.environ.items() if k not in {"RAY_ADDRESS", "MLFLOW_TRACKING_URI"}}
    env.update(FOUNDRY_HOME=str(home), RAY_AIR_NEW_OUTPUT="0")
    log = config_file.with_suffix(".log")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [FOUNDRY, "tune", "mdl-005", "--config", str(config_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the driver and the Ray it started
        )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            folder, statuses = _recorded_statuses(sweeps)
            finished = [t for t, s in statuses.items() if s == "TERMINATED"]
            if folder is not None and finished:
                assert len(finished) == 1, statuses
                return folder, finished[0]
            if proc.poll() is not None:
                pytest.fail(f"foundry tune ended before it was killed:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        pytest.fail(f"no trial finished within 300 s:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    raise AssertionError("unreachable")


def _result_lines(sweep_dir: Path, trial_id: str) -> int:
    [folder] = [p for p in sweep_dir.iterdir() if p.is_dir() and f"_{trial_id}_" in p.name]
    return len((folder / "result.json").read_text().splitlines())


def _trial_runs(client: Any, store: Any, model_name: str, parent_id: str) -> dict[str, int]:
    """Nested trial runs under ``parent_id``: how many runs each trial id has."""
    runs = client.search_runs(
        [store.experiment_id(model_name)],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and tags.source = 'tune-trial'",
    )
    counts: dict[str, int] = {}
    for run in runs:
        trial_id = run.data.tags["tune_trial_id"]
        counts[trial_id] = counts.get(trial_id, 0) + 1
    return counts


def test_killed_sweep_resumes_without_rerunning_and_registers(
    ray_session: None, foundry_home: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from raycore.registry.store import ModelStore
    from raycore.training.pipeline import prepare_training

    spec = load_catalog().get("mdl-005")
    settings = FoundrySettings.load()
    prepared = prepare_training(spec, settings=settings)  # the data world, once, for both drivers
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(TINY_SWEEP)

    sweep_dir, finished_id = _kill_after_first_trial(
        foundry_home, config_file, settings.ray_storage / "tune"
    )
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["status"] == "running"  # the driver died: nothing closed the sweep
    lines_before = _result_lines(sweep_dir, finished_id)
    store = ModelStore(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    parent_id = manifest["parent_run_id"]
    assert client.get_run(parent_id).info.status == "RUNNING"
    assert _trial_runs(client, store, spec.name, parent_id) == {finished_id: 1}

    # Trials were scored on the validation split cut from the training rows, never on the holdout.
    validation = prepared.validation_split()
    valid_file = pd.read_parquet(sweep_dir / "validation.parquet")
    assert len(valid_file) == len(validation.holdout_rows)
    time_col = spec.holdout.time_column
    assert validation.holdout_rows[time_col].max() < prepared.holdout_rows[time_col].min()

    second = tune_model(spec, settings=settings, resume=True)
    assert not second.interrupted and second.path == sweep_dir
    assert second.parent_run_id == parent_id
    [other_id] = {r.trial_id for r in second.trials} - {finished_id}
    assert len(second.trials) == 2
    assert all(r.status in ("TERMINATED", "EARLY_STOPPED") for r in second.trials)
    assert _result_lines(sweep_dir, finished_id) == lines_before  # the finished trial was not rerun
    resumed = next(r for r in second.trials if r.trial_id == other_id)
    assert resumed.iterations == 20 or resumed.status == "EARLY_STOPPED"
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "finished"

    finished = [r for r in second.trials if r.status == "TERMINATED"]
    assert (
        second.best is not None
        and second.best.trial_id == max(finished, key=lambda r: r.value).trial_id
    )
    assert second.passed and second.version == "1"  # first passing version of churn_risk: champion
    assert "champion" in second.decision

    # `mlflow ui`: the parent sweep run, one nested run per trial (never two), the best trial's candidate.
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == sweep_dir.name
    assert parent.data.tags["best_trial"] == second.best.trial_id
    assert parent.data.params["tune.num_samples"] == "2"
    assert _trial_runs(client, store, spec.name, parent_id) == {finished_id: 1, other_id: 1}
    children = client.search_runs(
        [store.experiment_id(spec.name)],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
    )
    assert all(r.data.tags["mlflow.parentRunId"] == parent_id for r in children)
    trial_runs = [r for r in children if r.data.tags.get("source") == "tune-trial"]
    for run in trial_runs:
        history = client.get_metric_history(run.info.run_id, "valid_roc_auc")
        assert history and {m.step for m in history} <= {10, 20}
        assert run.data.tags["tune_status"] in ("TERMINATED", "EARLY_STOPPED")
    first_trial = next(r for r in trial_runs if r.data.tags["tune_trial_id"] == finished_id)
    assert first_trial.data.tags["tune_status"] == "TERMINATED"
    assert {"algo.learning_rate", "algo.num_leaves", "algo.num_boost_round"} <= set(
        first_trial.data.params
    )
    history = client.get_metric_history(first_trial.info.run_id, "valid_roc_auc")
    assert sorted(m.step for m in history)[:2] == [10, 20] and len(history) >= 2
    assert "iterations" in first_trial.data.metrics
    [candidate] = [r for r in children if r.info.run_id == second.candidate_run_id]
    assert candidate.data.metrics["holdout_roc_auc"] == pytest.approx(second.holdout_metric)
    assert candidate.data.tags["tune_trial_id"] == second.best.trial_id

    [version] = store.versions(spec.name)
    assert version.run_id == second.candidate_run_id and version.tags["source"] == "tune"
    assert "champion" in version.aliases
