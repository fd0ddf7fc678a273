"""A real sweep of mdl-005 (churn_risk, LightGBM) on the shared local Ray: interrupted, resumed, registered.

Two trials of 20 boosting rounds, one worker each, ASHA with a rung at 10 rounds and Optuna.
The sweep is interrupted the way Ctrl-C does it (SIGINT, caught by Tune) when the second
trial starts, then resumed: the finished trial is not rerun, the interrupted one runs,
every trial has one nested MLflow run under the sweep's parent run, and the best trial's
model is scored on the holdout and registered (the first version: champion).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.settings import FoundrySettings
from raycore.tuning import SweepConfig, load_sweep_config, tune_model

pytestmark = pytest.mark.integration


def _interrupt_once_base() -> type:
    import ray.tune

    return ray.tune.Callback


class InterruptAtSecondTrial(_interrupt_once_base()):  # type: ignore[misc]
    """Sends SIGINT (Ctrl-C) when the second trial starts, once: the marker file survives the resume.

    Not at a result: ASHA may stop that trial on the same result, and then nothing is left to resume.
    """

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)
        self.started: list[str] = []

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.started.append(trial.trial_id)
        if len(self.started) >= 2 and not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            signal.raise_signal(signal.SIGINT)


def tiny_sweep(spec: Any) -> SweepConfig:
    data = load_sweep_config(spec).model_dump()
    data.update(
        num_samples=2,
        max_concurrent=1,
        report_every=10,
        scheduler={"kind": "asha", "grace_period": 10, "reduction_factor": 2},
    )
    data["space"] = {
        "learning_rate": {"type": "loguniform", "low": 0.05, "high": 0.2},
        "num_leaves": {"type": "randint", "low": 7, "high": 31},
        "num_boost_round": {"type": "choice", "values": [20]},
    }
    return SweepConfig.model_validate(data)


def _result_lines(sweep_dir: Path, trial_id: str) -> int:
    [folder] = [p for p in sweep_dir.iterdir() if p.is_dir() and f"_{trial_id}_" in p.name]
    return len((folder / "result.json").read_text().splitlines())


def test_sweep_interrupt_resume_nested_runs_and_registration(
    ray_session: None, foundry_home: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from raycore.registry.store import ModelStore
    from raycore.training.pipeline import prepare_training

    spec = load_catalog().get("mdl-005")
    settings = FoundrySettings.load()
    marker = tmp_path / "interrupted"

    first = tune_model(
        spec, settings=settings, config=tiny_sweep(spec), callbacks=[InterruptAtSecondTrial(marker)]
    )
    assert marker.exists() and first.interrupted
    assert first.best is None and first.version is None
    manifest = json.loads((first.path / "sweep.json").read_text())
    assert manifest["status"] == "interrupted"
    done_first = {r.trial_id for r in first.trials if r.status == "TERMINATED"}
    assert len(done_first) == 1
    [finished_id] = done_first
    interrupted_id = marker.read_text()
    lines_before = _result_lines(first.path, finished_id)

    # Trials were scored on the validation split cut from the training rows, never on the holdout.
    prepared = prepare_training(spec, settings=settings)
    validation = prepared.validation_split()
    valid_file = pd.read_parquet(first.path / "validation.parquet")
    assert len(valid_file) == len(validation.holdout_rows)
    time_col = spec.holdout.time_column
    assert validation.holdout_rows[time_col].max() < prepared.holdout_rows[time_col].min()

    second = tune_model(spec, settings=settings, resume=True)
    assert not second.interrupted and second.path == first.path
    assert len(second.trials) == 2
    assert {r.trial_id for r in second.trials} == {finished_id, interrupted_id}
    assert all(r.status in ("TERMINATED", "EARLY_STOPPED") for r in second.trials)
    assert (
        _result_lines(first.path, finished_id) == lines_before
    )  # the finished trial was not rerun
    restarted = next(r for r in second.trials if r.trial_id == interrupted_id)
    assert restarted.iterations == 20 or restarted.status == "EARLY_STOPPED"

    finished = [r for r in second.trials if r.status == "TERMINATED"]
    assert (
        second.best is not None
        and second.best.trial_id == max(finished, key=lambda r: r.value).trial_id
    )
    assert second.passed and second.version == "1"  # first passing version of churn_risk: champion
    assert "champion" in second.decision

    # MLflow: the parent run, one nested run per trial (history + final metric), the best trial's candidate.
    store = ModelStore(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    parent = client.get_run(second.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == first.sweep_name
    assert parent.data.tags["best_trial"] == second.best.trial_id
    children = client.search_runs(
        [store.experiment_id(spec.name)],
        filter_string=f"tags.mlflow.parentRunId = '{second.parent_run_id}'",
    )
    trial_runs = [
        r
        for r in children
        if "tune_trial_id" in r.data.tags and r.data.tags.get("source") == "tune-trial"
    ]
    assert sorted(r.data.tags["tune_trial_id"] for r in trial_runs) == sorted(
        [finished_id, interrupted_id]
    )
    for run in trial_runs:
        history = client.get_metric_history(run.info.run_id, "valid_roc_auc")
        assert history and {m.step for m in history} <= {10, 20}
        assert run.data.tags["tune_status"] in ("TERMINATED", "EARLY_STOPPED")
        assert any(k.startswith("algo.") for k in run.data.params)
    first_trial = next(r for r in trial_runs if r.data.tags["tune_trial_id"] == finished_id)
    assert sorted(
        m.step for m in client.get_metric_history(first_trial.info.run_id, "valid_roc_auc")
    )[:2] == [10, 20]
    [candidate] = [r for r in children if r.info.run_id == second.candidate_run_id]
    assert candidate.data.metrics["holdout_roc_auc"] == pytest.approx(second.holdout_metric)
    assert candidate.data.tags["tune_trial_id"] == second.best.trial_id

    [version] = store.versions(spec.name)
    assert version.run_id == second.candidate_run_id and version.tags["source"] == "tune"
    assert "champion" in version.aliases
