"""What the Ray Train backends (LightGBM, XGBoost, PyTorch) share: worker shards, checkpoints, start-up, faults.

- **Shards without Ray Data.** Every worker reads its own rows straight from
  the training parquet file: row ``i`` goes to worker ``i % world``; with a
  group column (ranking) whole groups go to one worker (group ``g`` → worker
  ``g % world`` by sorted group index) and rows come out sorted by group, so each
  group is contiguous. On small boxes Ray Data ingest costs far more than the
  training itself (ENVIRONMENT.md).
- **Checkpoints.** Every worker calls ``ray.train.report`` (it is collective);
  only rank 0 attaches a checkpoint. A restarted worker group resumes from the
  latest one (``restored_checkpoint``).
- **Lean start-up.** A small run's time is Ray Train's fixed cost: each run
  starts ~6 new Python processes (controller, worker(s), synchronization actor,
  placement-group cleaner, dataset manager, preemption watcher), ~1.5 CPU-s
  each, and then idles between controller polls. ``run_trainer`` runs
  ``trainer.fit()`` with the controller polling every 0.25 s instead of 2 s (a
  finished run used to idle ~4 s before returning, and every intermediate
  ``report`` could wait up to 2 s for the next poll) and without the preemption
  watcher, because our loops never read ``ray.train.get_preemption_info()``
  (values set in the environment win). ``lean_trainer`` also skips the dataset
  manager actor, which Ray Train starts even for runs without Ray Datasets.
- **Validation reports (tuning).** With a ``ValidationSpec`` the loops score a
  validation parquet (same columns as the training file, plus ``__scale__``
  for views that scale their label) on rank 0 after every reported chunk and
  add ``{metric: value}`` to the report, in the label's units, with the worker
  group's placement group id (``PLACEMENT_GROUP_KEY``). Ray Tune reads these
  intermediate results (``TuneReportCallback`` in ``run_config``) to stop poor
  trials early. Without it the reports are unchanged.
- **Fault injection (tests only).** ``FaultInjection`` makes a train loop kill
  its own worker process (SIGKILL, like the OOM killer) once, after a given
  round's checkpoint is registered, and records where every attempt started.
  It is an explicit keyword of the ``fit_*`` functions, never read from
  model ``params``.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from raycore.errors import RaycoreError, TrainingError

__all__ = [
    "LABEL_COLUMN",
    "LEAN_TRAIN_ENV",
    "PLACEMENT_GROUP_KEY",
    "VALID_SCALE_COLUMN",
    "FaultInjection",
    "ValidationSet",
    "ValidationSpec",
    "WorkerShard",
    "check_shardable",
    "lean_train_env",
    "lean_trainer",
    "maybe_kill_worker",
    "read_validation",
    "read_worker_shard",
    "record_attempt_start",
    "report_round",
    "restored_checkpoint",
    "run_config",
    "run_trainer",
    "scaling_config",
]

LABEL_COLUMN = "__label__"
# Per-row label scale of a validation file (views with ``scale_column``); predictions and labels are multiplied back.
VALID_SCALE_COLUMN = "__scale__"
# Report key of the worker group's placement group (hex id), sent with validation reports.
PLACEMENT_GROUP_KEY = "placement_group"

# Ray Train settings applied around trainer.fit() unless already set (see module docstring).
LEAN_TRAIN_ENV = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}


# --------------------------------------------------------------------------- shards


@dataclass
class WorkerShard:
    """One worker's training rows: features (model order), labels and group sizes (ranking)."""

    features: pd.DataFrame
    label: np.ndarray
    group_sizes: np.ndarray | None = None


def read_worker_shard(
    path: str | Path, *, rank: int, world: int, group_column: str | None = None
) -> WorkerShard:
    """The rows of ``path`` that belong to worker ``rank`` of ``world`` (see module docstring)."""
    table = pq.read_table(path)
    if group_column is None:
        take = np.arange(rank, table.num_rows, world)
        part = table.take(take) if world > 1 else table
        frame = part.to_pandas()
        sizes = None
    else:
        groups = table.column(group_column).to_numpy(zero_copy_only=False)
        _, index = np.unique(groups, return_inverse=True)
        mine = np.flatnonzero(index % world == rank)
        order = mine[np.argsort(index[mine], kind="stable")]
        frame = table.take(order).to_pandas().drop(columns=[group_column])
        _, counts = np.unique(index[order], return_counts=True)
        sizes = counts
    label = frame.pop(LABEL_COLUMN).to_numpy(dtype="float64")
    return WorkerShard(features=frame, label=label, group_sizes=sizes)


def check_shardable(path: Path, *, num_workers: int, group_column: str | None) -> list[str]:
    """Fail before Ray starts if some worker would get no rows; returns the feature names."""
    if not Path(path).is_file():
        raise TrainingError(
            f"training data not found: {path}", hint="the pipeline writes it before fitting"
        )
    schema = pq.read_schema(path)
    columns = list(schema.names)
    if LABEL_COLUMN not in columns:
        raise TrainingError(
            f"{path} has no '{LABEL_COLUMN}' column", hint="write the encoded label as __label__"
        )
    if group_column is not None:
        if group_column not in columns:
            raise TrainingError(
                f"group column '{group_column}' is not in the training data",
                hint="ranking needs the query id column in the training parquet (it is not a feature)",
            )
        units = len(
            np.unique(
                pq.read_table(path, columns=[group_column]).column(0).to_numpy(zero_copy_only=False)
            )
        )
        what = "groups"
    else:
        units = pq.ParquetFile(path).metadata.num_rows
        what = "rows"
    if units < num_workers:
        raise TrainingError(
            f"{units} training {what} cannot feed {num_workers} workers",
            hint="lower resources.num_workers",
        )
    return [c for c in columns if c not in (LABEL_COLUMN, group_column)]


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class ValidationSpec:
    """Score ``path`` with ``metric`` after every reported chunk (rank 0), for Ray Tune's schedulers.

    ``path`` is a parquet file with the training file's columns (features in
    model order, encoded ``__label__``, the group column for ranking) and, when
    the feature view scales its label, ``__scale__``. ``task``/``n_classes``
    shape the predictions as the fitted estimator would (``raycore.models.adapter``).

    Example:
        >>> ValidationSpec(path=Path("valid.parquet"), metric="roc_auc", task="binary").to_config()["metric"]
        'roc_auc'
    """

    path: Path
    metric: str
    task: str
    n_classes: int | None = None
    group_column: str | None = None

    def to_config(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "metric": self.metric,
            "task": self.task,
            "n_classes": self.n_classes,
            "group_column": self.group_column,
        }


@dataclass
class ValidationSet:
    """A validation file in memory; ``score(predict)`` is the metric in the label's units."""

    features: pd.DataFrame
    label: np.ndarray
    metric: str
    scale: np.ndarray | None = None
    groups: np.ndarray | None = None

    @classmethod
    def read(cls, config: dict[str, Any]) -> ValidationSet:
        """Load the file of a ``ValidationSpec.to_config()``."""
        frame = pq.read_table(config["path"]).to_pandas()
        label = frame.pop(LABEL_COLUMN).to_numpy(dtype="float64")
        scale = (
            frame.pop(VALID_SCALE_COLUMN).to_numpy(dtype="float64")
            if VALID_SCALE_COLUMN in frame.columns
            else None
        )
        group = config.get("group_column")
        groups = frame.pop(group).to_numpy() if group and group in frame.columns else None
        return cls(features=frame, label=label, metric=config["metric"], scale=scale, groups=groups)

    def score(self, predict: Callable[[pd.DataFrame], np.ndarray]) -> dict[str, float]:
        """``{metric: value}`` of ``predict(features)`` (an estimator's task-shaped output).

        A probability matrix is compared as class codes (argmax vs the encoded
        label: the same accuracy/F1 as on decoded class labels); a scaled
        view's predictions and labels are multiplied back by ``__scale__``.
        """
        from raycore.training.metrics import compute_metric

        pred = np.asarray(predict(self.features), dtype="float64")
        y = self.label
        if pred.ndim == 2:
            pred = pred.argmax(axis=1).astype("float64")
        elif self.scale is not None:
            pred, y = pred * self.scale, y * self.scale
        value = compute_metric(self.metric, y_true=y, y_pred=pred, groups=self.groups)
        return {self.metric: float(value)}

    def report(self, predict: Callable[[pd.DataFrame], np.ndarray]) -> dict[str, Any]:
        """``score(predict)`` plus the worker group's placement group id (``PLACEMENT_GROUP_KEY``).

        A tuning scheduler may stop a trial mid-run, which kills its Ray Train
        controller; Ray Train's own placement-group cleaner finds the cluster
        through the state API, which fails on hosts running several Ray
        instances. With the id the tuning driver can release the group itself.
        """
        from ray.util.placement_group import get_current_placement_group

        group = get_current_placement_group()
        out: dict[str, Any] = dict(self.score(predict))
        if group is not None:
            out[PLACEMENT_GROUP_KEY] = group.id.hex()
        return out


def read_validation(config: dict[str, Any] | None, *, rank: int) -> ValidationSet | None:
    """The validation set of this worker: rank 0 scores, the other ranks get ``None``."""
    if not config or rank != 0:
        return None
    return ValidationSet.read(config)


# --------------------------------------------------------------------------- checkpoints


def report_round(metrics: dict[str, Any], *, rank: int, save: Callable[[Path], None]) -> None:
    """Report ``metrics`` from every worker; rank 0 attaches a checkpoint written by ``save(folder)``."""
    import ray.train

    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        save(Path(folder))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


@contextmanager
def restored_checkpoint() -> Iterator[Path | None]:
    """The folder of the checkpoint this attempt resumes from, or ``None`` on a fresh start."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as folder:
        yield Path(folder)


# --------------------------------------------------------------------------- fault injection


@dataclass(frozen=True)
class FaultInjection:
    """Test-only: kill worker ``rank`` once, right after round ``kill_after_round`` is checkpointed.

    The loop waits until Ray Train has registered that checkpoint
    (``ray.train.get_all_reported_checkpoints``), writes ``folder/killed``, and
    SIGKILLs its own process. With ``FailureConfig(max_failures >= 1)`` Ray Train
    restarts the worker group, which resumes from the checkpoint. Every attempt
    of every worker appends ``{"rank", "start_round", "pid", "time"}`` to
    ``folder/attempts.jsonl`` (``attempts()`` reads it back).

    Example:
        >>> fault = FaultInjection(kill_after_round=10, folder=Path("/tmp/fault"))   # doctest: +SKIP
        >>> fit_lightgbm(..., fault_injection=fault)                                 # doctest: +SKIP
        >>> [a["start_round"] for a in fault.attempts() if a["rank"] == 0]           # doctest: +SKIP
        [0, 10]
    """

    kill_after_round: int
    folder: Path
    rank: int = 0

    def to_config(self) -> dict[str, Any]:
        return {
            "kill_after_round": self.kill_after_round,
            "folder": str(self.folder),
            "rank": self.rank,
        }

    def attempts(self) -> list[dict[str, Any]]:
        path = self.folder / "attempts.jsonl"
        return (
            [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
        )

    @property
    def killed(self) -> bool:
        return (self.folder / "killed").is_file()


def record_attempt_start(fault: dict[str, Any] | None, *, rank: int, start_round: int) -> None:
    """Append this attempt's starting round (only when fault injection is configured)."""
    if not fault:
        return
    folder = Path(fault["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "attempts.jsonl", "a") as out:
        record = {"rank": rank, "start_round": start_round, "pid": os.getpid(), "time": time.time()}
        out.write(json.dumps(record) + "\n")


def maybe_kill_worker(fault: dict[str, Any] | None, *, rank: int, done_round: int) -> None:
    """SIGKILL this worker once when fault injection asks for it (see ``FaultInjection``)."""
    if not fault or rank != fault["rank"] or done_round < fault["kill_after_round"]:
        return
    marker = Path(fault["folder"]) / "killed"
    if marker.exists():
        return
    import ray.train

    ray.train.get_all_reported_checkpoints()  # the checkpoint we resume from is registered before we die
    marker.write_text(str(done_round))
    os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- running a trainer


def scaling_config(resources: Any) -> Any:
    """Ray Train's ScalingConfig from a ``ResourcesSpec``."""
    import ray.train

    return ray.train.ScalingConfig(
        num_workers=resources.num_workers,
        use_gpu=resources.use_gpu,
        resources_per_worker={"CPU": resources.cpus_per_worker},
    )


def run_config(
    *, storage_path: Path, run_name: str, max_failures: int, callbacks: list[Any] | None = None
) -> Any:
    """Ray Train's RunConfig: local storage, only the latest checkpoint kept, ``max_failures`` restarts.

    ``callbacks`` are Ray Train user callbacks, e.g. ``TuneReportCallback()``
    inside a Ray Tune trial (it forwards every report to Tune).
    """
    import ray.train

    return ray.train.RunConfig(
        name=run_name,
        storage_path=str(storage_path),
        failure_config=ray.train.FailureConfig(max_failures=max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        callbacks=list(callbacks or []),
    )


_lean_lock = threading.Lock()
_lean_users = 0
_lean_added: list[str] = []


@contextmanager
def lean_train_env() -> Iterator[None]:
    """Apply ``LEAN_TRAIN_ENV`` (where not set already) while any ``trainer.fit()`` runs.

    Ray Train copies these variables from the driver's environment to its
    controller and workers when the run starts, so they must be set here.
    Reference-counted: fits running in parallel threads share one setting, and
    the variables added here are removed when the last one ends.
    """
    global _lean_users
    with _lean_lock:
        if _lean_users == 0:
            _lean_added[:] = [key for key in LEAN_TRAIN_ENV if key not in os.environ]
            for key in _lean_added:
                os.environ[key] = LEAN_TRAIN_ENV[key]
        _lean_users += 1
    try:
        yield
    finally:
        with _lean_lock:
            _lean_users -= 1
            if _lean_users == 0:
                for key in _lean_added:
                    os.environ.pop(key, None)
                _lean_added.clear()


def lean_trainer(trainer_cls: type) -> type:
    """``trainer_cls`` that skips Ray Train's DatasetManager actor when the run has no Ray Datasets.

    Ray Train 2.60 starts that actor (one more Python process, ~1.5 CPU-s) for
    every run; our workers read parquet shards themselves and never ask it for
    anything. This overrides a private hook of the pinned Ray version
    (``_create_default_callbacks``); runs with ``datasets`` keep every callback.
    """

    if not hasattr(trainer_cls, "_create_default_callbacks"):  # another Ray version: keep it stock
        return trainer_cls

    class Lean(trainer_cls):  # type: ignore[valid-type,misc]
        def _create_default_callbacks(self) -> list[Any]:
            callbacks: list[Any] = super()._create_default_callbacks()
            if self.datasets:
                return callbacks
            return [cb for cb in callbacks if type(cb).__name__ != "DatasetsCallback"]

    Lean.__name__ = Lean.__qualname__ = f"Lean{trainer_cls.__name__}"
    return Lean


def _root_cause(exc: BaseException) -> BaseException:
    """The worker's own exception inside Ray's wrappers (WorkerGroupError, RayTaskError)."""
    failures = getattr(exc, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        exc = next(iter(failures.values()))
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def run_trainer(trainer: Any, *, run_name: str) -> Any:
    """``trainer.fit()`` with lean start-up; a failure becomes a ``TrainingError`` naming the cause."""
    try:
        with lean_train_env():
            result = trainer.fit()
    except Exception as exc:  # Ray wraps worker errors in its own types
        cause = _root_cause(exc)
        if isinstance(cause, RaycoreError):
            raise cause from exc
        raise TrainingError(
            f"Ray Train run '{run_name}' failed: {type(cause).__name__}: {str(cause).strip()[:800]}",
            hint="see the worker traceback in the Ray logs; re-running the same run name resumes from its checkpoint",
        ) from exc
    if result.checkpoint is None:
        raise TrainingError(f"Ray Train run '{run_name}' finished without a checkpoint")
    return result
