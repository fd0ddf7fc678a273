"""MLflow records of a sweep, written by the driver only (one process writes the SQLite store).

    tune-<model>-<timestamp>            parent run: the sweep config, the best trial, the decision
    ├── trial-<trial id>                one nested run per trial: sampled params, the validation
    │                                   metric per reported iteration (step = rounds/epochs), the
    │                                   final validation metrics, tag tune_status
    │                                   (TERMINATED / EARLY_STOPPED / ERROR)
    └── <sweep>-best                    the best trial's model scored on the holdout (``log_candidate``)

``SweepTracker`` is a ``ray.tune.Callback``: it collects each trial's
intermediate results and logs the trial's run when Tune reports the trial
complete or errored. Tune pickles its callbacks into the experiment folder and
unpickles them on ``Tuner.restore``, so the tracker holds only plain values and
opens its MLflow client lazily; which trials already have a run is read back
from MLflow, so a resumed sweep never logs a finished trial twice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from raycore.training.ray_train_job import PLACEMENT_GROUP_KEY
from raycore.tuning.cleanup import GroupReleaser
from raycore.tuning.config import SweepConfig
from raycore.tuning.space import decode_config
from raycore.tuning.trial import FINAL_KEY

__all__ = [
    "TRIAL_ID_TAG",
    "SweepTracker",
    "TrialRecord",
    "close_parent_run",
    "record_from_trial",
    "start_parent_run",
]

log = logging.getLogger("raycore.tuning")

TRIAL_ID_TAG = "tune_trial_id"
STATUS_TAG = "tune_status"
_MLFLOW_STATUS = {"TERMINATED": "FINISHED", "EARLY_STOPPED": "FINISHED", "ERROR": "FAILED"}


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the leaderboard and MLflow show it.

    ``status``: TERMINATED (trained to the end, scored on validation),
    EARLY_STOPPED (stopped by the scheduler or the time budget; ``value`` is its
    last intermediate validation metric), ERROR, or Tune's PENDING/RUNNING/PAUSED
    for trials an interrupted sweep has not finished.
    """

    trial_id: str
    params: dict[str, Any]
    status: str
    value: float | None
    iterations: int
    seconds: float
    history: list[tuple[int, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status == "TERMINATED"


def trial_status(trial: Any) -> str:
    """TERMINATED only for a trial that reported its final validation score; see ``TrialRecord``."""
    if trial.status == "TERMINATED":
        return "TERMINATED" if (trial.last_result or {}).get(FINAL_KEY) else "EARLY_STOPPED"
    return str(trial.status)


def _iterations(last: dict[str, Any], time_attr: str) -> int:
    if time_attr != "training_iteration" and last.get(time_attr) is not None:
        return int(last[time_attr])
    if last.get("num_boost_round") is not None and last.get(FINAL_KEY):
        return int(last["num_boost_round"])
    return int(last.get("training_iteration") or 0)


def record_from_trial(
    trial: Any,
    *,
    config: SweepConfig,
    time_attr: str,
    history: list[tuple[int, float]] | None = None,
    ended: str | None = None,
) -> TrialRecord:
    """A ``TrialRecord`` from a Tune ``Trial`` (in a callback, or from ``ExperimentAnalysis.trials``).

    ``ended`` is "complete" or "error" inside Tune's ``on_trial_complete``/``on_trial_error``,
    which run before Tune updates ``trial.status``.
    """
    last = dict(trial.last_result or {})
    if ended == "error":
        status = "ERROR"
    elif ended == "complete":
        status = "TERMINATED" if last.get(FINAL_KEY) else "EARLY_STOPPED"
    else:
        status = trial_status(trial)
    value = last.get(config.metric)
    error = ""
    if status == "ERROR":
        try:
            error = str(trial.get_error() or "")[-2000:]  # the end holds the exception
        except Exception:  # the error file may be gone; the status says enough
            error = "trial failed (see the Tune trial folder)"
    final = {
        k: float(v)
        for k, v in last.items()
        if k.startswith("valid_") and isinstance(v, int | float)
    }
    return TrialRecord(
        trial_id=str(trial.trial_id),
        params=decode_config(trial.config or {}, config.space),
        status=status,
        value=None if value is None else float(value),
        iterations=_iterations(last, time_attr),
        seconds=float(last.get("time_total_s") or 0.0),
        history=list(history or []),
        final=final if last.get(FINAL_KEY) else {},
        error=error,
    )


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def start_parent_run(
    *,
    tracking_uri: str,
    experiment_id: str,
    sweep_name: str,
    config: SweepConfig,
    extra_tags: dict[str, str],
) -> str:
    """Create the sweep's parent run (left RUNNING until ``close_parent_run``); return its id."""
    client = _client(tracking_uri)
    run = client.create_run(
        experiment_id,
        run_name=sweep_name,
        tags={"catalog_id": config.model_id, "sweep": sweep_name, "source": "tune", **extra_tags},
    )
    from mlflow.entities import Param

    scheduler = config.scheduler.model_dump()
    params = {
        "tune.metric": config.metric,
        "tune.mode": config.mode,
        "tune.num_samples": config.num_samples,
        "tune.max_concurrent": config.max_concurrent,
        "tune.time_budget_s": config.time_budget_s,
        "tune.report_every": config.report_every,
        "tune.scheduler": json.dumps(scheduler, sort_keys=True),
        "tune.search": json.dumps(config.search.model_dump(), sort_keys=True),
        "tune.space": json.dumps(
            {k: v.model_dump() for k, v in config.space.items()}, sort_keys=True
        )[:6000],
    }
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    return str(run.info.run_id)


def reopen_parent_run(*, tracking_uri: str, run_id: str) -> None:
    """Mark an interrupted sweep's parent run RUNNING again (``--resume``)."""
    _client(tracking_uri).update_run(run_id, status="RUNNING")


def close_parent_run(
    *,
    tracking_uri: str,
    run_id: str,
    status: str,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Log the sweep's summary on its parent run and end it (FINISHED, or KILLED when interrupted)."""
    from mlflow.entities import Metric, RunTag

    client = _client(tracking_uri)
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
        tags=[RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()],
    )
    client.set_terminated(run_id, status=status)


def _tune_callback_base() -> type:
    from ray.tune import Callback

    return Callback


class SweepTracker(_tune_callback_base()):  # type: ignore[misc]
    """Ray Tune callback (driver side): one nested MLflow run per trial under the sweep's parent run.

    It also logs one line per finished trial to the ``raycore.tuning`` logger,
    which the CLI shows as live progress, and releases the Ray Train placement
    group of every trial stopped mid-run (``raycore.tuning.cleanup``).
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        sweep_name: str,
        config: SweepConfig,
        time_attr: str,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.sweep_name = sweep_name
        self.config = config
        self.time_attr = time_attr
        self._history: dict[str, list[tuple[int, float]]] = {}
        self._logged: set[str] | None = None
        self._mlflow: Any = None
        self._groups = GroupReleaser()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks into the experiment folder: keep plain values only.
        state = self.__dict__.copy()
        state.update(_history={}, _logged=None, _mlflow=None, _groups=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._groups = GroupReleaser()

    # ------------------------------------------------------------------ Tune hooks

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._groups.release_due()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._groups.seen(trial.trial_id, result.get(PLACEMENT_GROUP_KEY))
        if result.get(FINAL_KEY) or self.config.metric not in result:
            return
        step = int(result.get(self.time_attr) or result.get("training_iteration") or 0)
        self._history.setdefault(trial.trial_id, []).append(
            (step, float(result[self.config.metric]))
        )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if (trial.last_result or {}).get(FINAL_KEY):
            self._groups.finished(trial.trial_id)
        else:
            self._groups.stopped(trial.trial_id)
        self._log_ended(trial, "complete")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._groups.stopped(trial.trial_id)
        self._log_ended(trial, "error")

    def _log_ended(self, trial: Any, ended: str) -> None:
        history = self._history.pop(trial.trial_id, None)
        self.log_trial(
            record_from_trial(
                trial, config=self.config, time_attr=self.time_attr, history=history, ended=ended
            )
        )

    # ------------------------------------------------------------------ MLflow

    @property
    def client(self) -> Any:
        if self._mlflow is None:
            self._mlflow = _client(self.tracking_uri)
        return self._mlflow

    def logged_trials(self) -> set[str]:
        """Trial ids that already have a finished nested run under the parent (read once from MLflow)."""
        if self._logged is None:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'",
                max_results=10_000,
            )
            self._logged = {
                r.data.tags[TRIAL_ID_TAG]
                for r in runs
                if TRIAL_ID_TAG in r.data.tags and r.data.tags.get(STATUS_TAG) != "ERROR"
            }
        return self._logged

    def log_trial(self, record: TrialRecord) -> str | None:
        """Log ``record`` as a nested run (once per trial; an errored trial that later succeeds gets both)."""
        if record.status not in _MLFLOW_STATUS or record.trial_id in self.logged_trials():
            return None
        from mlflow.entities import Metric, Param

        metric = self.config.metric
        client = self.client
        run = client.create_run(
            self.experiment_id,
            run_name=f"trial-{record.trial_id}",
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                TRIAL_ID_TAG: record.trial_id,
                STATUS_TAG: record.status,
                "catalog_id": self.config.model_id,
                "sweep": self.sweep_name,
                "source": "tune-trial",
                **({"error": record.error[:4000]} if record.error else {}),
            },
        )
        now = int(time.time() * 1000)
        metrics = [Metric(f"valid_{metric}", value, now, step) for step, value in record.history]
        if record.final:
            metrics += [Metric(k, v, now, record.iterations) for k, v in record.final.items()]
        elif record.value is not None and not record.history:
            metrics.append(Metric(f"valid_{metric}", record.value, now, record.iterations))
        metrics += [
            Metric("iterations", float(record.iterations), now, 0),
            Metric("trial_seconds", record.seconds, now, 0),
        ]
        params = [
            Param(f"algo.{k}", json.dumps(v) if isinstance(v, list) else str(v))
            for k, v in record.params.items()
        ]
        for start in range(0, len(metrics), 900):  # MLflow caps one batch at 1000 metrics
            client.log_batch(
                run.info.run_id,
                metrics=metrics[start : start + 900],
                params=params if start == 0 else [],
            )
        client.set_terminated(run.info.run_id, status=_MLFLOW_STATUS[record.status])
        if record.status != "ERROR":
            self.logged_trials().add(record.trial_id)
        shown = "-" if record.value is None else f"{record.value:.4f}"
        log.info(
            "trial %s %s: %s=%s after %d iteration(s), %.1fs",
            record.trial_id,
            record.status,
            metric,
            shown,
            record.iterations,
            record.seconds,
        )
        return str(run.info.run_id)
