"""``tune_model``: a Ray Tune sweep of one catalog model, its MLflow records, and the best trial's candidate.

    prepare_training (once, in the driver) ──► validation_split ──► validation.parquet
    Tuner(run_trial, the prepared rows shipped once with tune.with_parameters)
        trial i: fit_prepared(...) on Ray Train; the workers report the validation
                 metric every `report_every` rounds ──► ASHA stops the laggards;
                 the others report a final validation score + the bundle as a checkpoint
    SweepTracker (driver-side Tune callback) ──► MLflow: parent run + one nested run per trial
    best finished trial ──► evaluate_bundle on the real holdout ──► log_candidate (nested)
                        ──► register_candidate(source="tune") if the gate passes

State lives in ``settings.ray_storage/tune/<sweep>`` (``raycore.tuning.state``).
An interrupted sweep (Ctrl-C, a killed driver) is resumed with
``tune_model(..., resume=True)``: the latest unfinished sweep of the model is
restored with ``Tuner.restore(resume_unfinished=True, resume_errored=True)``;
finished trials are kept, not rerun; trials that were running start again (a
Ray Train run continues from its last checkpoint: its name is stable per trial).

Example:
    >>> outcome = tune_model(load_catalog().get("mdl-005"), settings=FoundrySettings.load())  # doctest: +SKIP
    >>> outcome.best.trial_id, outcome.decision                                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from raycore.data.world import WorldConfig
from raycore.errors import GateFailedError, TrainingError
from raycore.registry import ModelBundle
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.training.pipeline import (
    FittedModel,
    PreparedData,
    algorithm_params,
    evaluate_bundle,
    log_candidate,
    prepare_training,
    register_candidate,
)
from raycore.tuning.cleanup import job_placement_groups, release_new_groups
from raycore.tuning.config import SweepConfig, load_sweep_config
from raycore.tuning.space import (
    build_scheduler,
    build_search,
    full_length,
    progress_attr,
    split_rounds,
    tune_space,
)
from raycore.tuning.state import SweepState, find_resumable, sweeps_root
from raycore.tuning.tracking import (
    SweepTracker,
    TrialRecord,
    close_parent_run,
    record_from_trial,
    reopen_parent_run,
    start_parent_run,
)
from raycore.tuning.trial import BUNDLE_DIR, FINAL_KEY, TrialContext, run_trial
from raycore.tuning.validation import lean_for_trials, supports_intermediate, write_validation_table

__all__ = ["SweepOutcome", "trial_resources", "tune_model"]

log = logging.getLogger("raycore.tuning")
Progress = Callable[[str], None]
TRIAL_MEMORY = 256 * 1024**2
# Seconds between saves of Tune's experiment state (trial statuses), which ``--resume`` reads.
# Tune's default (>= 10 s) lets a driver killed a few seconds after a trial ended rerun that
# trial on resume; one small JSON file a second is cheap next to a trial.
EXPERIMENT_STATE_PERIOD_S = "1"
_ENDED = ("TERMINATED", "EARLY_STOPPED", "ERROR")


def trial_resources(spec: ModelSpec) -> Any:
    """What Tune reserves per trial (a placement group: the trial actor first, then what it runs).

    A Ray Train trial only drives the run; the run's workers reserve their CPUs in
    their own placement group. So the trial actor reserves no CPU (a 2-worker model
    still fits a 2-CPU box), only some memory, because Ray needs a non-empty
    request. An sklearn fit is a Ray task that Tune schedules inside the trial's
    placement group, so the group also holds that task's CPUs.
    """
    from ray.tune import PlacementGroupFactory

    bundles: list[dict[str, float]] = [{"CPU": 0, "memory": TRIAL_MEMORY}]
    if spec.algorithm.family == "sklearn":
        bundles.append({"CPU": spec.resources.cpus_per_worker})
    return PlacementGroupFactory(bundles)


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep produced: the leaderboard (best first), the best trial and what happened to its model."""

    model_id: str
    model_name: str
    sweep_name: str
    path: Path
    parent_run_id: str
    config: SweepConfig
    trials: list[TrialRecord]
    best: TrialRecord | None = None
    holdout_metric: float | None = None
    oracle_metric: float | None = None
    candidate_run_id: str | None = None
    passed: bool = False
    version: str | None = None
    decision: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    iterations: int = 0
    trial_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Sweep:
    """One sweep being run: its spec, config, folder, state and data."""

    spec: ModelSpec
    settings: FoundrySettings
    config: SweepConfig
    path: Path
    state: SweepState
    prepared: PreparedData
    time_attr: str
    started: float
    store: Any

    @property
    def name(self) -> str:
        return self.path.name


def tune_model(
    spec: ModelSpec,
    *,
    settings: FoundrySettings,
    world: WorldConfig | None = None,
    config: SweepConfig | None = None,
    config_file: str | Path | None = None,
    num_samples: int | None = None,
    resume: bool = False,
    register: bool = True,
    progress: Progress | None = None,
    callbacks: Sequence[Any] = (),
    name: str | None = None,
) -> SweepOutcome:
    """Sweep ``spec``'s hyperparameters with Ray Tune, log every trial, register the best if it passes the gate.

    ``config`` (or ``config_file``, or ``tune_configs/``) declares the sweep;
    ``num_samples`` overrides its trial count. With ``resume`` the latest
    unfinished sweep of the model continues instead, with its own config and
    data world. ``callbacks`` are extra Ray Tune callbacks (Tune stores them
    with the experiment and brings them back on resume). ``register=False``
    logs the best trial's candidate run without registering it (benchmarks).
    """
    from raycore.registry.store import ModelStore
    from raycore.runtime import connect_ray

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    if resume and (config is not None or config_file is not None or num_samples is not None):
        raise TrainingError(
            "a resumed sweep keeps its own config", hint="drop --config/--num-samples with --resume"
        )
    if resume:
        connect_ray(settings)
        path = find_resumable(settings, spec)
        state = SweepState.load(path)
        sweep, world = state.sweep_config, state.world_config
        say(f"resuming sweep {path.name}")
    else:
        sweep = config or load_sweep_config(
            spec, override_file=config_file, num_samples=num_samples
        )
        world = world or WorldConfig()
        path = sweeps_root(settings) / (
            name or f"tune-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if path.exists():
            raise TrainingError(
                f"sweep folder {path} exists already", hint="pick another sweep name"
            )
    prepared = prepare_training(spec, settings=settings, world=world, progress=say)
    validation = prepared.validation_split()
    if validation.holdout_rows.empty or validation.train_rows.empty:
        raise TrainingError(
            f"{spec.id}: cutting a validation split off the training rows leaves "
            f"{len(validation.train_rows)} train / {len(validation.holdout_rows)} validation rows",
            hint="the holdout rule cuts too little to cut twice; use more data or a larger holdout",
        )
    intermediate, why_not = supports_intermediate(spec)
    if sweep.early_stopping and not intermediate:
        log.warning(
            "%s: %s; trials report once, at the end, so nothing is stopped early", spec.id, why_not
        )
    path.mkdir(parents=True, exist_ok=True)
    valid_path = (
        write_validation_table(validation, path / "validation.parquet") if intermediate else None
    )

    store = ModelStore(settings)
    if resume:
        reopen_parent_run(tracking_uri=store.uri, run_id=state.parent_run_id)
        state = state.with_status("running")
    else:
        parent_run_id = start_parent_run(
            tracking_uri=store.uri,
            experiment_id=store.experiment_id(spec.name),
            sweep_name=path.name,
            config=sweep,
            extra_tags={
                "data_world": f"{world.seed}-{world.scale}",
                "intermediate_reports": str(intermediate).lower(),
            },
        )
        state = SweepState.new(
            spec=spec, sweep=path.name, parent_run_id=parent_run_id, world=world, config=sweep
        )
    state.save(path)
    run = _Sweep(
        spec=spec,
        settings=settings,
        config=sweep,
        path=path,
        state=state,
        prepared=prepared,
        time_attr=progress_attr(spec.algorithm.family, intermediate=intermediate),
        started=started,
        store=store,
    )
    connect_ray(settings)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", EXPERIMENT_STATE_PERIOD_S)
    tuner = _tuner(
        run, validation=validation, valid_path=valid_path, resume=resume, callbacks=callbacks
    )
    say(
        f"sweeping {sweep.num_samples} trial(s) of {spec.id} ({sweep.scheduler.kind}, {sweep.search.kind})"
    )
    groups_before = job_placement_groups()
    fit_started = time.perf_counter()
    try:
        tuner.fit()
    finally:
        # Ray Train runs of trials stopped mid-run (Ctrl-C, time budget) may still hold their CPUs.
        release_new_groups(groups_before)
    budget_hit = sweep.time_budget_s is not None and (
        time.perf_counter() - fit_started >= 0.99 * sweep.time_budget_s
    )
    return _finish(run, register=register, budget_hit=budget_hit, say=say)


def _tuner(
    run: _Sweep,
    *,
    validation: PreparedData,
    valid_path: Path | None,
    resume: bool,
    callbacks: Sequence[Any],
) -> Any:
    """A new ``ray.tune.Tuner`` for the sweep, or the restored one (same trainable, fresh data refs)."""
    import ray.tune

    sweep = run.config
    context = TrialContext(
        prepared=lean_for_trials(validation),
        settings=run.settings,
        config=sweep,
        sweep_name=run.name,
        sweep_dir=run.path,
        time_attr=run.time_attr,
        valid_path=valid_path,
    )
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(run_trial, context=context), trial_resources(run.spec)
    )
    if resume:
        return ray.tune.Tuner.restore(
            str(run.path), trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    if valid_path is not None:
        scheduler = build_scheduler(
            sweep, time_attr=run.time_attr, max_t=full_length(run.spec, sweep)
        )
    else:  # nothing reports before the end: ASHA would have nothing to compare
        scheduler = build_scheduler(
            sweep.model_copy(update={"scheduler": {"kind": "fifo"}}), time_attr="", max_t=1
        )
    tracker = SweepTracker(
        tracking_uri=run.store.uri,
        experiment_id=run.store.experiment_id(run.spec.name),
        parent_run_id=run.state.parent_run_id,
        sweep_name=run.name,
        config=sweep,
        time_attr=run.time_attr,
    )
    return ray.tune.Tuner(
        trainable,
        param_space=tune_space(sweep.space),
        tune_config=ray.tune.TuneConfig(
            metric=sweep.metric,
            mode=sweep.mode,
            num_samples=sweep.num_samples,
            time_budget_s=sweep.time_budget_s,
            scheduler=scheduler,
            search_alg=build_search(sweep),
        ),
        run_config=ray.tune.RunConfig(
            name=run.name,
            storage_path=str(run.path.parent),
            callbacks=[tracker, *callbacks],
            verbose=0,
        ),
    )


def _finish(run: _Sweep, *, register: bool, budget_hit: bool, say: Progress) -> SweepOutcome:
    """Read every trial back, log the ones no callback logged, then score and register the best."""
    from ray.tune import ExperimentAnalysis

    sweep = run.config
    analysis = ExperimentAnalysis(
        str(run.path), default_metric=sweep.metric, default_mode=sweep.mode
    )
    trials = {str(t.trial_id): t for t in analysis.trials}
    records = _ranked(_log_missing(run, analysis), sweep.mode)
    outcome = SweepOutcome(
        model_id=run.spec.id,
        model_name=run.spec.name,
        sweep_name=run.name,
        path=run.path,
        parent_run_id=run.state.parent_run_id,
        config=sweep,
        trials=records,
        iterations=sum(r.iterations for r in records),
        trial_seconds=sum(r.seconds for r in records),
    )

    def close(status: str, state: SweepState, **extra: Any) -> None:
        state.save(run.path)
        close_parent_run(
            tracking_uri=run.store.uri, run_id=run.state.parent_run_id, status=status, **extra
        )

    unfinished = [r for r in records if r.status not in _ENDED]
    # Fewer trials than asked is an interruption too (stopped between trials), unless the budget ran out.
    if unfinished or (len(records) < sweep.num_samples and not budget_hit):
        done = len(records) - len(unfinished)
        close(
            "KILLED",
            run.state.with_status("interrupted"),
            tags={"decision": f"interrupted after {done} trial(s)"},
        )
        return dataclasses.replace(
            outcome, interrupted=True, seconds=time.perf_counter() - run.started
        )

    finished = [r for r in records if r.finished and r.value is not None and np.isfinite(r.value)]
    if not finished:
        close("FAILED", run.state.with_status("finished", decision="no trial finished"))
        errors = "; ".join(f"{r.trial_id}: {_last_line(r.error) or r.status}" for r in records[:3])
        raise TrainingError(
            f"no trial of sweep {run.name} finished with a validation score ({errors})",
            hint="see the trials' nested MLflow runs or the Tune folder",
        )
    best = finished[0]
    say(f"scoring the best trial {best.trial_id} on the holdout")
    outcome = _promote(run, best, trials[best.trial_id], outcome, register=register, say=say)
    close(
        "FINISHED",
        run.state.with_status("finished", best_trial=best.trial_id, decision=outcome.decision),
        metrics={
            f"best_valid_{sweep.metric}": float(best.value or 0.0),
            f"holdout_{sweep.metric}": float(outcome.holdout_metric or 0.0),
            "trials_finished": float(len(finished)),
            "trials_early_stopped": float(sum(r.status == "EARLY_STOPPED" for r in records)),
            "trials_errored": float(sum(r.status == "ERROR" for r in records)),
            "iterations_total": float(outcome.iterations),
            "trial_seconds_total": outcome.trial_seconds,
        },
        tags={
            "best_trial": best.trial_id,
            "decision": outcome.decision,
            "gate_passed": str(outcome.passed).lower(),
        },
    )
    return dataclasses.replace(outcome, seconds=time.perf_counter() - run.started)


def _promote(
    run: _Sweep,
    best: TrialRecord,
    trial: Any,
    outcome: SweepOutcome,
    *,
    register: bool,
    say: Progress,
) -> SweepOutcome:
    """The best trial's bundle (no retraining) on the real holdout: log it, register it if it passes the gate."""
    spec, sweep = run.spec, run.config
    bundle = _load_bundle(trial)
    result = evaluate_bundle(run.prepared, bundle)
    params, rounds = split_rounds(best.params)
    fitted = FittedModel(
        bundle=bundle,
        params=algorithm_params(spec, params),
        num_boost_round=int(rounds or spec.algorithm.num_boost_round),
        fit_seconds=float((trial.last_result or {}).get("fit_seconds", 0.0)),
        run_name=f"{run.name}-best",
    )
    oracle = result.oracle.get(spec.gate.metric)
    outcome = dataclasses.replace(
        outcome,
        best=best,
        holdout_metric=float(result.metrics[spec.gate.metric]),
        oracle_metric=None if oracle is None else float(oracle),
    )
    try:
        logged = log_candidate(
            run.store,
            run.prepared,
            fitted,
            result,
            extra_metrics={f"valid_{sweep.metric}": float(best.value or 0.0)},
            seconds=time.perf_counter() - run.started,
            parent_run_id=run.state.parent_run_id,
            tags={"source": "tune", "sweep": run.name, "tune_trial_id": best.trial_id},
        )
    except GateFailedError as exc:
        return dataclasses.replace(
            outcome,
            candidate_run_id=exc.run_id,
            decision=f"best trial {best.trial_id} missed the gate: {exc.message}",
        )
    outcome = dataclasses.replace(outcome, candidate_run_id=logged.run_id, passed=True)
    if not register:
        return dataclasses.replace(
            outcome, decision=f"best trial {best.trial_id} passes the gate (not registered)"
        )
    say("registering")
    version, decision = register_candidate(run.store, run.prepared, logged, source="tune")
    return dataclasses.replace(outcome, version=version, decision=decision)


def _log_missing(run: _Sweep, analysis: Any) -> list[TrialRecord]:
    """Every trial as a record; ended trials that no callback logged (time budget) get their run now."""
    tracker = SweepTracker(
        tracking_uri=run.store.uri,
        experiment_id=run.store.experiment_id(run.spec.name),
        parent_run_id=run.state.parent_run_id,
        sweep_name=run.name,
        config=run.config,
        time_attr=run.time_attr,
    )
    records = []
    for trial in analysis.trials:
        record = record_from_trial(trial, config=run.config, time_attr=run.time_attr)
        if record.status in _ENDED and record.trial_id not in tracker.logged_trials():
            tracker.log_trial(dataclasses.replace(record, history=_history(analysis, trial, run)))
        records.append(record)
    return records


def _ranked(records: list[TrialRecord], mode: str) -> list[TrialRecord]:
    """Finished trials by validation metric (best first), then early-stopped ones, then the rest."""
    order = {"TERMINATED": 0, "EARLY_STOPPED": 1}
    sign = -1.0 if mode == "max" else 1.0

    def key(r: TrialRecord) -> tuple[int, float]:
        value = r.value if r.value is not None and np.isfinite(r.value) else None
        return (order.get(r.status, 2), sign * value if value is not None else float("inf"))

    return sorted(records, key=key)


def _history(analysis: Any, trial: Any, run: _Sweep) -> list[tuple[int, float]]:
    """A trial's intermediate validation metric from its Tune results (for trials logged after the fact)."""
    metric = run.config.metric
    try:
        frame = analysis.trial_dataframes.get(trial.trial_id)
    except Exception:  # a missing or unreadable result file: log without history
        return []
    if frame is None or metric not in frame.columns:
        return []
    if FINAL_KEY in frame.columns:
        frame = frame[frame[FINAL_KEY].isna() | (frame[FINAL_KEY] == 0)]
    step = run.time_attr if run.time_attr in frame.columns else "training_iteration"
    frame = frame.dropna(subset=[metric])
    return [(int(s), float(v)) for s, v in zip(frame[step], frame[metric], strict=True)]


def _last_line(text: str) -> str:
    """The exception line of a traceback."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _load_bundle(trial: Any) -> ModelBundle:
    checkpoint = trial.checkpoint
    if checkpoint is None:
        raise TrainingError(
            f"trial {trial.trial_id} finished without a model checkpoint",
            hint="the trial folder is incomplete; re-run the sweep",
        )
    with checkpoint.as_directory() as folder:
        return ModelBundle.load(Path(folder) / BUNDLE_DIR)
