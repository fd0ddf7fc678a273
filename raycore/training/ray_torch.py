"""A PyTorch MLP trained with Ray Train's TorchTrainer (DDP), each worker reading its own shard.

- **Fitted state with the model.** Feature mean/std (and, for regression-like
  tasks, the target's) are computed in the driver over all training rows and
  stored in the ``TorchEstimator``; workers and serving scale with the same numbers.
- **DDP.** ``ray.train.torch.prepare_model`` wraps the module in
  ``DistributedDataParallel`` when there is more than one worker. Every worker
  runs the same number of steps per epoch (shards differ by at most one row;
  the short one wraps around), so the gradient all-reduces always pair up.
- **Checkpoints.** Rank 0 reports ``{model, optimizer, epoch}`` after every
  epoch (or every ``checkpoint_every`` epochs, and always after the last); a
  restarted worker group resumes at the epoch after the checkpoint. A report
  can wait for one controller poll (0.25 s, ``ray_train_job.LEAN_TRAIN_ENV``),
  so with many very short epochs set ``checkpoint_every`` higher.
- **Threads.** ``torch.set_num_threads(cpus_per_worker)`` so workers do not
  oversubscribe the box.
- **Validation (tuning).** With ``validation``, rank 0 scores the validation
  file after every reported epoch with the same scaler and output head as the
  ``TorchEstimator`` and adds the metric to the report; ``callbacks`` go to
  Ray Train's RunConfig (``TuneReportCallback`` forwards reports to Ray Tune).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, ValidationError

from raycore.errors import SpecError
from raycore.models.adapter import output_kind
from raycore.runtime import require_gpus
from raycore.specs import ResourcesSpec
from raycore.specs.base import FrozenSpec
from raycore.training.ray_train_job import (
    LABEL_COLUMN,
    FaultInjection,
    ValidationSpec,
    check_shardable,
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

__all__ = ["ARCHITECTURES", "MLPParams", "fit_torch", "torch_loss"]

CHECKPOINT_FILE = "torch_checkpoint.pt"
ARCHITECTURES = ("mlp",)
_REGRESSION_TASKS = {"regression", "forecasting", "count_regression", "causal_regression"}


class MLPParams(FrozenSpec):
    """Hyperparameters of the ``torch`` family's ``mlp`` (``algorithm.params``)."""

    hidden: list[int] = Field(default=[64, 32], min_length=1, description="Hidden layer widths.")
    epochs: int = Field(default=20, ge=1, le=10_000, description="Passes over the training rows.")
    lr: float = Field(default=1e-3, gt=0, le=10, description="AdamW learning rate.")
    batch_size: int = Field(default=256, ge=1, description="Rows per step and worker.")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout after each hidden layer.")
    alpha: float = Field(
        default=0.5, gt=0, lt=1, description="Quantile (quantile_regression only)."
    )
    seed: int = Field(default=7, description="Seed of weight init and shuffling.")


def torch_loss(task: str) -> str:
    """The loss for ``task``: ``mse``, ``pinball`` (quantile), ``bce`` (binary) or ``ce`` (multiclass)."""
    kind = output_kind(task)
    if kind == "probability":
        return "bce"
    if kind == "probabilities":
        return "ce"
    if task == "quantile_regression":
        return "pinball"
    if task in _REGRESSION_TASKS:
        return "mse"
    raise SpecError(
        f"the torch family cannot train a '{task}' model",
        field="task",
        hint="torch fits regression-like, binary and multiclass tasks; use lightgbm for ranking, sklearn otherwise",
    )


def _column_stats(path: Path, columns: list[str]) -> tuple[list[float], list[float]]:
    table = pq.read_table(path, columns=columns)
    means, stds = [], []
    for name in columns:
        col = pc.cast(table.column(name), "float64")
        means.append(float(pc.mean(col).as_py() or 0.0))
        stds.append(float(pc.stddev(col, ddof=0).as_py() or 0.0))
    return means, stds


def _save_state(state: dict[str, Any], folder: Path) -> None:
    import torch

    torch.save(state, folder / CHECKPOINT_FILE)


def _train_loop(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    import torch
    import torch.nn.functional as F

    from raycore.models.torch_model import MLPArchitecture, standardise

    torch.set_num_threads(max(1, int(config["threads"])))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    shard = read_worker_shard(config["train_path"], rank=rank, world=world)
    x_all = torch.from_numpy(
        standardise(shard.features.to_numpy(dtype="float64"), config["mean"], config["std"])
    )
    loss_name = config["loss"]
    if loss_name == "ce":
        y_all = torch.from_numpy(shard.label.astype("int64"))
    else:
        y_all = torch.from_numpy(
            ((shard.label - config["target_mean"]) / config["target_std"]).astype("float32")
        )

    hp = config["params"]
    torch.manual_seed(hp["seed"])
    arch = MLPArchitecture.from_dict(config["arch"])
    module = arch.build()
    start_epoch = 0
    optimizer_state = None
    with restored_checkpoint() as folder:
        if folder is not None:
            state = torch.load(folder / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
            module.load_state_dict(state["model"])
            optimizer_state = state["optimizer"]
            start_epoch = int(state["epoch"]) + 1
    record_attempt_start(config["fault_injection"], rank=rank, start_round=start_epoch)

    model = ray.train.torch.prepare_model(
        module
    )  # DDP when world > 1; moves to the worker's device
    device = ray.train.torch.get_device()
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)

    # Same number of steps on every worker: pad the shorter shards by wrapping around.
    rows_per_worker = math.ceil(config["n_rows"] / world)
    batch = hp["batch_size"]
    alpha = hp["alpha"]
    n = len(y_all)

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if loss_name == "ce":
            return F.cross_entropy(out, target)
        if loss_name == "bce":
            return F.binary_cross_entropy_with_logits(out[:, 0], target)
        if loss_name == "pinball":
            diff = target - out[:, 0]
            return torch.mean(torch.maximum(alpha * diff, (alpha - 1) * diff))
        return F.mse_loss(out[:, 0], target)

    every = max(1, int(config["checkpoint_every"]))
    valid = read_validation(config.get("validation"), rank=rank)
    for epoch in range(start_epoch, hp["epochs"]):
        model.train()
        generator = torch.Generator().manual_seed(hp["seed"] * 100_003 + epoch * 101 + rank)
        order = torch.randperm(n, generator=generator)
        if n < rows_per_worker:
            order = torch.cat([order, order[: rows_per_worker - n]])
        total, seen = 0.0, 0
        for start in range(0, rows_per_worker, batch):
            idx = order[start : start + batch]
            xb, yb = x_all[idx].to(device), y_all[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        if (epoch + 1) % every and epoch + 1 < hp["epochs"]:
            continue
        unwrapped: torch.nn.Module = getattr(model, "module", model)
        state = {
            "model": unwrapped.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
        }
        metrics: dict[str, Any] = {"epoch": epoch + 1, "train_loss": total / max(seen, 1)}
        if valid is not None:
            estimator = _estimator_for(unwrapped, config, list(shard.features.columns))
            metrics.update(valid.report(estimator.predict))
        report_round(
            metrics,
            rank=rank,
            save=partial(_save_state, state),
        )
        maybe_kill_worker(config["fault_injection"], rank=rank, done_round=epoch + 1)


def _estimator_for(module: Any, config: dict[str, Any], features: list[str]) -> Any:
    """A ``TorchEstimator`` over a copy of the training module (the estimator switches to eval mode on CPU)."""
    import copy

    from raycore.models.torch_model import MLPArchitecture, TorchEstimator

    vconf = config["validation"]
    return TorchEstimator(
        copy.deepcopy(module),
        arch=MLPArchitecture.from_dict(config["arch"]),
        mean=config["mean"],
        std=config["std"],
        feature_names=features,
        task=vconf["task"],
        n_classes=vconf["n_classes"] if config["loss"] == "ce" else None,
        target_mean=config["target_mean"],
        target_std=config["target_std"],
    )


def fit_torch(
    *,
    train_path: Path,
    task: str,
    objective: str,
    params: dict[str, Any],
    resources: ResourcesSpec,
    storage_path: Path,
    run_name: str,
    n_classes: int | None = None,
    checkpoint_every: int = 0,
    max_failures: int = 1,
    fault_injection: FaultInjection | None = None,
    validation: ValidationSpec | None = None,
    callbacks: list[Any] | None = None,
) -> Any:
    """Train an MLP (``objective: mlp``) with Ray Train's TorchTrainer; returns a ``TorchEstimator``.

    ``params`` are ``MLPParams`` (hidden, epochs, lr, batch_size, weight_decay,
    dropout, alpha, seed); the loss follows the task (``torch_loss``).
    A checkpoint is reported every ``checkpoint_every`` epochs (0 = every epoch).
    ``fault_injection`` is for tests only (rounds are epochs here).
    ``validation`` adds the validation metric to every epoch's report;
    ``callbacks`` are Ray Train user callbacks (tuning).

    Example:
        >>> est = fit_torch(train_path=path, task="binary", objective="mlp", params={"epochs": 10},
        ...                 resources=ResourcesSpec(), storage_path=tmp, run_name="demo")  # doctest: +SKIP
        >>> est.predict(features).shape                                                   # doctest: +SKIP
        (1000,)
    """
    if objective not in ARCHITECTURES:
        raise SpecError(
            f"unknown torch architecture '{objective}'",
            field="algorithm.objective",
            hint=f"use one of: {', '.join(ARCHITECTURES)}",
        )
    try:
        hp = MLPParams(**{k: v for k, v in params.items() if k != "objective"})
    except ValidationError as exc:
        raise SpecError(
            f"bad torch mlp parameters: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}",
            field="algorithm.params",
            hint=f"allowed: {', '.join(MLPParams.model_fields)}",
        ) from exc
    loss = torch_loss(task)
    if loss == "ce" and (n_classes is None or n_classes < 2):
        raise SpecError(f"a {task} torch model needs n_classes >= 2, got {n_classes}", field="task")
    if resources.use_gpu:
        require_gpus(resources.num_workers)
    import torch
    from ray.train.torch import TorchTrainer

    from raycore.models.torch_model import MLPArchitecture, TorchEstimator

    features = check_shardable(train_path, num_workers=resources.num_workers, group_column=None)
    mean, std = _column_stats(train_path, features)
    target_mean, target_std = 0.0, 1.0
    if loss in ("mse", "pinball"):
        (target_mean,), (target_std,) = _column_stats(train_path, [LABEL_COLUMN])
        target_std = target_std or 1.0
    arch = MLPArchitecture(
        input_dim=len(features),
        hidden=tuple(hp.hidden),
        output_dim=n_classes if loss == "ce" and n_classes else 1,
        dropout=hp.dropout,
    )
    trainer = lean_trainer(TorchTrainer)(
        _train_loop,
        train_loop_config={
            "train_path": str(train_path),
            "n_rows": pq.ParquetFile(train_path).metadata.num_rows,
            "params": hp.model_dump(),
            "arch": arch.to_dict(),
            "loss": loss,
            "mean": np.asarray(mean),
            "std": np.asarray(std),
            "target_mean": target_mean,
            "target_std": target_std,
            "threads": resources.cpus_per_worker,
            "checkpoint_every": checkpoint_every,
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
        state = torch.load(Path(d) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    module = arch.build()
    module.load_state_dict(state["model"])
    return TorchEstimator(
        module,
        arch=arch,
        mean=mean,
        std=std,
        feature_names=features,
        task=task,
        n_classes=n_classes if loss == "ce" else None,
        target_mean=target_mean,
        target_std=target_std,
    )
