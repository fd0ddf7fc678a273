"""Distributed LightGBM on Ray Train, each worker reading its own shard.

Workers read their rows straight from a parquet file (row ``i`` goes to
worker ``i % world_size``) instead of going through Ray Data: on small boxes
Ray Data ingest costs far more than the training itself (ENVIRONMENT.md).
Rank 0 reports the booster as a checkpoint; a restarted worker group resumes
from the latest checkpoint and trains only the remaining rounds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pyarrow.parquet as pq

from raycore.errors import TrainingError
from raycore.runtime import require_gpus
from raycore.specs import ResourcesSpec

__all__ = ["LABEL_COLUMN", "fit_lightgbm"]

LABEL_COLUMN = "__label__"
MODEL_FILE = "model.txt"


def _train_loop(config: dict[str, Any]) -> None:
    import numpy as np
    import ray.train
    from ray.train.lightgbm import get_network_params

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    table = pq.read_table(config["train_path"])
    idx = np.arange(rank, table.num_rows, world)
    frame = table.take(idx).to_pandas()
    y = frame.pop(LABEL_COLUMN)
    params = dict(config["params"])
    params.setdefault("verbose", -1)
    params["num_threads"] = max(1, int(config["threads"]))
    if config["use_gpu"]:
        params.setdefault("device_type", "gpu")
    if world > 1:
        params.update({"tree_learner": "data_parallel", "pre_partition": True, **get_network_params()})

    init_model = None
    done_rounds = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            init_model = lgb.Booster(model_file=str(Path(d) / MODEL_FILE))
            done_rounds = init_model.current_iteration()
    total = int(config["num_boost_round"])
    every = int(config["checkpoint_every"]) or total
    booster = init_model
    dataset = lgb.Dataset(frame, label=y, free_raw_data=False)
    while done_rounds < total:
        step = min(every, total - done_rounds)
        booster = lgb.train(params, dataset, num_boost_round=step, init_model=booster, keep_training_booster=True)
        done_rounds += step
        metrics = {"rounds": done_rounds}
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                booster.save_model(str(Path(d) / MODEL_FILE))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
        else:
            ray.train.report(metrics)


def fit_lightgbm(
    *,
    train_path: Path,
    params: dict[str, Any],
    num_boost_round: int,
    resources: ResourcesSpec,
    storage_path: Path,
    run_name: str,
    checkpoint_every: int = 0,
    max_failures: int = 1,
) -> lgb.Booster:
    """Train a LightGBM booster with Ray Train's LightGBMTrainer.

    ``train_path`` is a parquet file of model features plus ``__label__``.
    ``checkpoint_every`` rounds (0 = only at the end) a checkpoint is reported.
    """
    import ray.train
    from ray.train.lightgbm import LightGBMTrainer

    if resources.use_gpu:
        require_gpus(resources.num_workers)
    trainer = LightGBMTrainer(
        _train_loop,
        train_loop_config={
            "train_path": str(train_path),
            "params": params,
            "num_boost_round": num_boost_round,
            "threads": resources.cpus_per_worker,
            "use_gpu": resources.use_gpu,
            "checkpoint_every": checkpoint_every,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=resources.num_workers,
            use_gpu=resources.use_gpu,
            resources_per_worker={"CPU": resources.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=str(storage_path),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # Ray wraps worker errors in its own types
        raise TrainingError(
            f"Ray Train run '{run_name}' failed: {exc}",
            hint="see the worker traceback above; `foundry train` re-runs from the last checkpoint",
        ) from exc
    if result.checkpoint is None:
        raise TrainingError(f"Ray Train run '{run_name}' finished without a checkpoint")
    with result.checkpoint.as_directory() as d:
        return lgb.Booster(model_file=str(Path(d) / MODEL_FILE))
