"""Distributed LightGBM on Ray Train, each worker reading its own shard.

Workers read their rows straight from a parquet file (``ray_train_job``):
row ``i`` goes to worker ``i % world_size``; for ranking (``group_column``)
whole query groups go to one worker, sorted so each group is contiguous, and
their sizes are passed to ``lgb.Dataset(group=...)``. Rank 0 reports the
booster as a checkpoint every ``checkpoint_every`` rounds, from a callback of
one ``lgb.train`` call (a data-parallel network is opened once per call and
cannot bind its port twice); a restarted worker group resumes from the latest
checkpoint and trains only the remaining rounds.
With ``validation`` (tuning), rank 0 adds the validation metric to every
report (``ray_train_job.ValidationSpec``); ``callbacks`` go to Ray Train's
RunConfig (``TuneReportCallback`` forwards the reports to Ray Tune).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightgbm as lgb

from raycore.runtime import require_gpus
from raycore.specs import ResourcesSpec
from raycore.training.ray_train_job import (
    LABEL_COLUMN,
    FaultInjection,
    ValidationSpec,
    lean_trainer,
    maybe_kill_worker,
    read_validation,
    read_worker_shard,
    record_attempt_start,
    report_round,
    restored_checkpoint,
    run_config,
    run_trainer,
    scaling_config,
)

__all__ = ["LABEL_COLUMN", "fit_lightgbm", "lightgbm_params", "worker_params"]

MODEL_FILE = "model.txt"


def lightgbm_params(
    params: dict[str, Any], *, objective: str | None = None, n_classes: int | None = None
) -> dict[str, Any]:
    """``params`` with the spec's objective (it wins over ``params['objective']``) and ``num_class``.

    Example:
        >>> lightgbm_params({"objective": "regression", "alpha": 0.9}, objective="quantile")
        {'objective': 'quantile', 'alpha': 0.9}
        >>> lightgbm_params({}, objective="multiclass", n_classes=3)
        {'objective': 'multiclass', 'num_class': 3}
    """
    merged = dict(params)
    if objective:
        merged["objective"] = objective
    if n_classes is not None:
        merged["num_class"] = int(n_classes)
    return merged


def worker_params(
    params: dict[str, Any], *, threads: float, use_gpu: bool, network: dict[str, Any] | None
) -> dict[str, Any]:
    """The params one worker trains with: threads, GPU device, data-parallel network (``network``).

    Example:
        >>> worker_params({"objective": "binary"}, threads=2, use_gpu=True, network=None)
        {'objective': 'binary', 'verbose': -1, 'num_threads': 2, 'device_type': 'gpu'}
    """
    merged = dict(params)
    merged.setdefault("verbose", -1)
    merged["num_threads"] = max(1, int(threads))
    if use_gpu:
        merged.setdefault("device_type", "gpu")
    if network:
        merged.update({"tree_learner": "data_parallel", "pre_partition": True, **network})
    return merged


def _save_booster(booster: lgb.Booster, folder: Path) -> None:
    booster.save_model(str(folder / MODEL_FILE))


def _train_loop(config: dict[str, Any]) -> None:
    import ray.train
    from ray.train.lightgbm import get_network_params

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    shard = read_worker_shard(
        config["train_path"], rank=rank, world=world, group_column=config["group_column"]
    )
    network = get_network_params() if world > 1 else None
    params = worker_params(
        config["params"], threads=config["threads"], use_gpu=config["use_gpu"], network=network
    )

    booster: lgb.Booster | None = None
    done_rounds = 0
    with restored_checkpoint() as folder:
        if folder is not None:
            booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
            done_rounds = booster.current_iteration()
    record_attempt_start(config["fault_injection"], rank=rank, start_round=done_rounds)

    total = int(config["num_boost_round"])
    every = int(config["checkpoint_every"]) or total
    dataset = lgb.Dataset(
        shard.features, label=shard.label, group=shard.group_sizes, free_raw_data=False
    )
    valid = read_validation(config.get("validation"), rank=rank)
    if done_rounds >= total:
        return

    def report(env: lgb.callback.CallbackEnv) -> None:
        # Reports from inside one lgb.train call: a second call would open the data-parallel
        # network again on the same port, which LightGBM cannot bind twice ("Binding port failed").
        rounds = env.iteration + 1  # counts the restored rounds too
        if rounds % every and rounds < total:
            return
        model = env.model
        assert isinstance(model, lgb.Booster)  # lgb.train, not lgb.cv
        metrics: dict[str, Any] = {"rounds": rounds}
        if valid is not None:
            from raycore.models.lightgbm_model import LightGBMEstimator

            vconf = config["validation"]
            estimator = LightGBMEstimator(
                model,
                task=vconf["task"],
                n_classes=vconf["n_classes"],
                num_threads=params["num_threads"],
            )
            metrics.update(valid.report(estimator.predict))
        report_round(metrics, rank=rank, save=partial(_save_booster, model))
        maybe_kill_worker(config["fault_injection"], rank=rank, done_round=rounds)

    lgb.train(
        params,
        dataset,
        num_boost_round=total - done_rounds,
        init_model=booster,
        callbacks=[report],
    )


def fit_lightgbm(
    *,
    train_path: Path,
    params: dict[str, Any],
    num_boost_round: int,
    resources: ResourcesSpec,
    storage_path: Path,
    run_name: str,
    objective: str | None = None,
    n_classes: int | None = None,
    group_column: str | None = None,
    checkpoint_every: int = 0,
    max_failures: int = 1,
    fault_injection: FaultInjection | None = None,
    validation: ValidationSpec | None = None,
    callbacks: list[Any] | None = None,
) -> lgb.Booster:
    """Train a LightGBM booster with Ray Train's LightGBMTrainer.

    ``train_path`` is a parquet file of model features plus ``__label__`` (and
    ``group_column`` for ranking, not a feature). ``objective`` overrides
    ``params['objective']``; ``n_classes`` sets ``num_class`` (multiclass).
    A checkpoint is reported every ``checkpoint_every`` rounds (0 = only at the
    end). ``fault_injection`` is for tests only (``ray_train_job.FaultInjection``).
    ``validation`` adds the validation metric to every report; ``callbacks``
    are Ray Train user callbacks (both for tuning, see the module docstring).

    Example:
        >>> booster = fit_lightgbm(train_path=path, params={"objective": "binary"}, num_boost_round=50,
        ...                        resources=ResourcesSpec(), storage_path=tmp, run_name="demo")  # doctest: +SKIP
    """
    from ray.train.lightgbm import LightGBMTrainer

    if resources.use_gpu:
        require_gpus(resources.num_workers)
    trainer = lean_trainer(LightGBMTrainer)(
        _train_loop,
        train_loop_config={
            "train_path": str(train_path),
            "params": lightgbm_params(params, objective=objective, n_classes=n_classes),
            "num_boost_round": num_boost_round,
            "threads": resources.cpus_per_worker,
            "use_gpu": resources.use_gpu,
            "checkpoint_every": checkpoint_every,
            "group_column": group_column,
            "fault_injection": fault_injection.to_config() if fault_injection else None,
            "validation": validation.to_config() if validation else None,
        },
        scaling_config=scaling_config(resources),
        run_config=run_config(
            storage_path=storage_path,
            run_name=run_name,
            max_failures=max_failures,
            callbacks=callbacks,
        ),
    )
    result = run_trainer(trainer, run_name=run_name)
    with result.checkpoint.as_directory() as d:
        return lgb.Booster(model_file=str(Path(d) / MODEL_FILE))
