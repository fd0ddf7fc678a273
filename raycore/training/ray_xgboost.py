"""Distributed XGBoost on Ray Train, each worker reading its own shard.

Ray Train's ``XGBoostTrainer`` starts a Rabit tracker and wraps the train loop
in ``xgboost.collective.CommunicatorContext`` when there is more than one
worker, so ``xgb.DMatrix`` and ``xgb.train`` inside the loop are distributed
without further setup. Rows come from the training parquet file per worker
(``ray_train_job.read_worker_shard``). Rank 0 reports the booster (UBJSON) as a
checkpoint every ``checkpoint_every`` rounds; a restarted worker group resumes
from the latest one and trains only the remaining rounds. With ``validation``
(tuning), rank 0 adds the validation metric to every report, predicting
without a DMatrix (``_predict_local``); ``callbacks`` go to Ray Train's
RunConfig (see ``ray_lightgbm``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import xgboost as xgb

from raycore.runtime import require_gpus
from raycore.specs import ResourcesSpec
from raycore.training.ray_train_job import (
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

__all__ = ["fit_xgboost", "worker_params", "xgboost_params"]

MODEL_FILE = "model.ubj"


def xgboost_params(
    params: dict[str, Any], *, objective: str | None = None, n_classes: int | None = None
) -> dict[str, Any]:
    """``params`` with the spec's objective and ``num_class``; multiclass always predicts probabilities.

    Example:
        >>> xgboost_params({"max_depth": 3}, objective="multi:softmax", n_classes=3)
        {'max_depth': 3, 'objective': 'multi:softprob', 'num_class': 3}
    """
    merged = dict(params)
    if objective:
        merged["objective"] = objective
    if n_classes is not None:
        merged["num_class"] = int(n_classes)
        # Same training as softmax; the foundry's multiclass contract is a probability matrix.
        if merged.get("objective") == "multi:softmax":
            merged["objective"] = "multi:softprob"
    return merged


def worker_params(params: dict[str, Any], *, threads: float, use_gpu: bool) -> dict[str, Any]:
    """The params one worker trains with: ``nthread`` = its CPUs, ``device="cuda"`` on GPU.

    Example:
        >>> worker_params({"max_depth": 3}, threads=1, use_gpu=True)
        {'max_depth': 3, 'nthread': 1, 'device': 'cuda'}
    """
    merged = dict(params)
    merged["nthread"] = max(1, int(threads))
    if use_gpu:
        merged.setdefault("device", "cuda")
    return merged


def _save_booster(booster: xgb.Booster, folder: Path) -> None:
    booster.save_model(str(folder / MODEL_FILE))


def _predict_local(booster: xgb.Booster, validation: dict[str, Any], features: Any) -> Any:
    """``XGBoostEstimator.predict`` without a DMatrix, for rank 0's validation score.

    With several workers, building a DMatrix is a collective operation (XGBoost
    agrees on the column count across workers): rank 0 building one alone would
    wait forever. ``inplace_predict`` reads the array directly.
    """
    from raycore.models.adapter import shape_output

    raw = booster.inplace_predict(features.to_numpy(dtype="float64"))
    return shape_output(raw, task=validation["task"], n_classes=validation["n_classes"])


def _train_loop(config: dict[str, Any]) -> None:
    import ray.train

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    shard = read_worker_shard(
        config["train_path"], rank=rank, world=world, group_column=config["group_column"]
    )
    params = worker_params(config["params"], threads=config["threads"], use_gpu=config["use_gpu"])

    booster: xgb.Booster | None = None
    done_rounds = 0
    with restored_checkpoint() as folder:
        if folder is not None:
            booster = xgb.Booster(model_file=str(folder / MODEL_FILE))
            done_rounds = booster.num_boosted_rounds()
    record_attempt_start(config["fault_injection"], rank=rank, start_round=done_rounds)

    total = int(config["num_boost_round"])
    every = int(config["checkpoint_every"]) or total
    dtrain = xgb.DMatrix(shard.features, label=shard.label)
    if shard.group_sizes is not None:
        dtrain.set_group(shard.group_sizes)
    valid = read_validation(config.get("validation"), rank=rank)
    while done_rounds < total:
        step = min(every, total - done_rounds)
        booster = xgb.train(params, dtrain, num_boost_round=step, xgb_model=booster)
        done_rounds += step
        metrics: dict[str, Any] = {"rounds": done_rounds}
        if valid is not None:
            metrics.update(valid.report(partial(_predict_local, booster, config["validation"])))
        report_round(
            metrics,
            rank=rank,
            save=partial(_save_booster, booster),
        )
        maybe_kill_worker(config["fault_injection"], rank=rank, done_round=done_rounds)


def fit_xgboost(
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
) -> xgb.Booster:
    """Train an XGBoost booster with Ray Train's XGBoostTrainer.

    ``train_path`` is a parquet file of numeric model features plus
    ``__label__`` (and ``group_column`` for ranking objectives such as
    ``rank:ndcg``). ``objective`` overrides ``params['objective']``
    (e.g. ``binary:logistic``, ``reg:squarederror``, ``multi:softprob`` with
    ``n_classes``); other params pass through (``monotone_constraints="(1,-1,0)"``,
    ``max_depth``, ``eta``...). ``nthread`` is ``cpus_per_worker``; ``use_gpu``
    trains with ``device="cuda"``. ``fault_injection`` is for tests only.
    ``validation`` adds the validation metric to every report; ``callbacks``
    are Ray Train user callbacks (tuning).

    Example:
        >>> booster = fit_xgboost(train_path=path, params={"max_depth": 4}, objective="binary:logistic",
        ...                       num_boost_round=50, resources=ResourcesSpec(), storage_path=tmp,
        ...                       run_name="demo")  # doctest: +SKIP
    """
    from ray.train.xgboost import XGBoostTrainer

    if resources.use_gpu:
        require_gpus(resources.num_workers)
    trainer = lean_trainer(XGBoostTrainer)(
        _train_loop,
        train_loop_config={
            "train_path": str(train_path),
            "params": xgboost_params(params, objective=objective, n_classes=n_classes),
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
        return xgb.Booster(model_file=str(Path(d) / MODEL_FILE))
