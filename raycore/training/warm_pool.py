"""Warm LightGBM training workers: Ray actors kept alive between fits.

A Ray Train run starts a controller, a worker group and helper actors, each a
new Python process that imports Ray Train and LightGBM, then tears them down:
on a 2-core box that is 15-25 s per fit before and after the first boosting
round, whatever the data size (``benchmarks/training.py``). Training many small
models in a row (``foundry train --all``) spends most of its time there.

``warm_training()`` keeps a pool of worker actors for the duration of a batch
of fits. A LightGBM fit inside it runs on the pool instead of starting a Ray
Train run, with the same semantics:

- the same shards (``read_worker_shard``: row ``i`` → worker ``i % world``,
  whole ranking groups on one worker) and the same parameters; with several
  workers LightGBM's own data-parallel network (``machines``,
  ``local_listen_port``, ``num_machines`` — what ``LightGBMTrainer`` sets up),
  so the model is identical to the Ray Train path's;
- checkpoints: rank 0 writes the booster to ``storage_path/run_name/warm``
  every ``checkpoint_every`` rounds (atomically);
- failures: if a worker dies, the survivors are killed too (they would wait on
  the dead peer's socket), a fresh group is started and resumes from the
  latest checkpoint, up to ``max_failures`` times.

The pool reserves its CPUs while it lives, so it exists only inside the
context manager: other Ray work (Serve replicas, Tune trials, Ray Train runs
of other families) gets them back when the batch ends. A pool whose shape
(workers, CPUs, GPU) does not match the next fit is replaced.

Example:
    >>> with warm_training():                                        # doctest: +SKIP
    ...     for spec in specs:
    ...         train_model(spec, settings=settings)
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raycore.errors import TrainingError
from raycore.specs import ResourcesSpec

__all__ = ["WarmPool", "active_pool", "warm_training"]

MODEL_FILE = "model.txt"

_state = threading.local()


@dataclass(frozen=True)
class _Shape:
    workers: int
    cpus: float
    gpu: bool


class _Worker:
    """One warm training process (a Ray actor); LightGBM is imported once, at start."""

    def __init__(self) -> None:
        import lightgbm  # noqa: F401 - the import is the warm-up
        import pyarrow.parquet  # noqa: F401

    def address(self) -> tuple[str, int]:
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = int(s.getsockname()[1])
        return ray.util.get_node_ip_address(), port

    def pid(self) -> int:
        """Answers while ``train`` runs (two concurrent calls): a liveness probe."""
        return os.getpid()

    def train(self, config: dict[str, Any], rank: int, world: int, network: dict[str, Any] | None) -> str | None:
        """Train this worker's shard; rank 0 returns the model as a string."""
        import lightgbm as lgb

        from raycore.training.ray_lightgbm import worker_params
        from raycore.training.ray_train_job import read_worker_shard, record_attempt_start

        shard = read_worker_shard(
            config["train_path"], rank=rank, world=world, group_column=config["group_column"]
        )
        params = worker_params(
            config["params"], threads=config["threads"], use_gpu=config["use_gpu"], network=network
        )
        folder = Path(config["checkpoint_dir"])
        booster: lgb.Booster | None = None
        done = 0
        if (folder / MODEL_FILE).is_file():
            booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
            done = booster.current_iteration()
        fault = config["fault_injection"]
        record_attempt_start(fault, rank=rank, start_round=done)
        total = int(config["num_boost_round"])
        every = int(config["checkpoint_every"]) or total

        def checkpoint(env: Any) -> None:
            # One lgb.train call for the whole fit: the data-parallel network binds its port once.
            rounds = done + env.iteration - env.begin_iteration + 1
            if rank == 0 and (rounds % every == 0 or rounds == total):
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{MODEL_FILE}.{os.getpid()}"
                env.model.save_model(str(tmp))
                os.replace(tmp, folder / MODEL_FILE)
            if rounds % every == 0:
                _maybe_die(fault, rank=rank, done=rounds)

        dataset = lgb.Dataset(shard.features, label=shard.label, group=shard.group_sizes, free_raw_data=False)
        if done < total:
            booster = lgb.train(
                params, dataset, num_boost_round=total - done, init_model=booster,
                keep_training_booster=True, callbacks=[checkpoint],
            )
        assert booster is not None
        return booster.model_to_string() if rank == 0 else None


def _maybe_die(fault: dict[str, Any] | None, *, rank: int, done: int) -> None:
    """Test-only fault injection (``FaultInjection``): SIGKILL this worker once after a checkpoint."""
    if not fault or rank != fault["rank"] or done < fault["kill_after_round"]:
        return
    marker = Path(fault["folder"]) / "killed"
    if marker.exists():
        return
    marker.write_text(str(done))
    os.kill(os.getpid(), signal.SIGKILL)


class WarmPool:
    """Warm worker actors of one shape, created on first use and reused by every later fit."""

    def __init__(self) -> None:
        self.shape: _Shape | None = None
        self.actors: list[Any] = []
        self.fits = 0
        self.restarts = 0

    def _ensure(self, shape: _Shape) -> list[Any]:
        import ray

        if self.shape == shape and self.actors:
            return self.actors
        self.close()
        # max_concurrency is an actor option the typed overloads of ray.remote do not list.
        remote = ray.remote(  # type: ignore[call-overload]
            num_cpus=shape.cpus, num_gpus=1 if shape.gpu else 0, max_restarts=0, max_concurrency=2
        )(_Worker)
        strategy = "SPREAD" if shape.workers > 1 else "DEFAULT"
        self.actors = [
            remote.options(scheduling_strategy=strategy).remote() for _ in range(shape.workers)
        ]
        self.shape = shape
        return self.actors

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors, self.shape = [], None

    def fit_lightgbm(
        self,
        *,
        train_path: Path,
        params: dict[str, Any],
        num_boost_round: int,
        resources: ResourcesSpec,
        storage_path: Path,
        run_name: str,
        group_column: str | None = None,
        checkpoint_every: int = 0,
        max_failures: int = 1,
        fault_injection: Any = None,
    ) -> Any:
        """Fit on the warm workers (see module docstring); returns an ``lgb.Booster``."""
        import lightgbm as lgb
        from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

        shape = _Shape(resources.num_workers, float(resources.cpus_per_worker), resources.use_gpu)
        config = {
            "train_path": str(train_path),
            "params": params,
            "num_boost_round": num_boost_round,
            "threads": resources.cpus_per_worker,
            "use_gpu": resources.use_gpu,
            "checkpoint_every": checkpoint_every,
            "checkpoint_dir": str(Path(storage_path) / run_name / "warm"),
            "group_column": group_column,
            "fault_injection": fault_injection.to_config() if fault_injection else None,
        }
        failures = 0
        while True:
            actors = self._ensure(shape)
            try:
                model = self._run(actors, config)
                self.fits += 1
                return lgb.Booster(model_str=model)
            except RayTaskError as exc:
                # A survivor fails on its dead peer's socket, often before the death is reported.
                if self._all_alive(actors):
                    self.close()  # peers may be blocked on the failed worker's socket
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    raise TrainingError(
                        f"warm LightGBM fit '{run_name}' failed: {type(cause).__name__}: {str(cause).strip()[:800]}",
                        hint="see the worker traceback in the Ray logs",
                    ) from exc
                failures = self._lost_worker(exc, failures, max_failures, run_name)
            except (RayActorError, WorkerCrashedError) as exc:
                failures = self._lost_worker(exc, failures, max_failures, run_name)

    def _lost_worker(self, exc: BaseException, failures: int, max_failures: int, run_name: str) -> int:
        self.close()  # survivors would block on the dead peer's socket
        failures += 1
        self.restarts += 1
        if failures > max_failures:
            raise TrainingError(
                f"warm LightGBM fit '{run_name}' lost a worker {failures} time(s): {exc}",
                hint="raise max_failures, or check the Ray logs for why the worker died (OOM?)",
            ) from exc
        return failures

    @staticmethod
    def _all_alive(actors: list[Any]) -> bool:
        import ray
        from ray.exceptions import RayActorError

        try:
            ray.get([a.pid.remote() for a in actors], timeout=30)
        except (RayActorError, ray.exceptions.GetTimeoutError):
            return False
        return True

    @staticmethod
    def _run(actors: list[Any], config: dict[str, Any]) -> str:
        import ray

        world = len(actors)
        network = None
        addresses = ray.get([a.address.remote() for a in actors])
        refs = []
        for rank, actor in enumerate(actors):
            if world > 1:
                network = {
                    "num_machines": world,
                    "local_listen_port": addresses[rank][1],
                    "machines": ",".join(f"{ip}:{port}" for ip, port in addresses),
                }
            refs.append(actor.train.remote(config, rank, world, network))
        pending = list(refs)
        while pending:  # fail fast: one dead worker must not leave the driver waiting on the others
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done[0])
        model = ray.get(refs[0])
        assert isinstance(model, str)
        return model


def active_pool() -> WarmPool | None:
    """The pool of the innermost ``warm_training()`` in this thread, or None."""
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


@contextmanager
def warm_training() -> Iterator[WarmPool]:
    """Fits of LightGBM models inside this block run on warm workers; they are freed at the end."""
    pool = WarmPool()
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    stack.append(pool)
    try:
        yield pool
    finally:
        stack.pop()
        pool.close()
