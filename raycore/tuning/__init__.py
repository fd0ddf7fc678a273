"""Hyperparameter sweeps of catalog models with Ray Tune (``foundry tune``).

    config     tune_configs/ YAML → SweepConfig (validated; metric/mode from the catalog gate)
    space      SweepConfig → Ray Tune search space, scheduler (ASHA/FIFO), search (Optuna/random)
    trial      one trial = ``fit_prepared`` (the ``foundry train`` fit) + validation reports
    tracking   MLflow: parent run per sweep, nested run per trial (driver-side Tune callback)
    sweep      tune_model: prepare once, run/resume the Tuner, register the best trial

Importing this package pulls in no Ray or MLflow; ``tune_model`` and
``SweepOutcome`` load the heavy modules on first use.

Example:
    >>> from raycore.tuning import load_sweep_config
    >>> from raycore.catalog import load_catalog
    >>> load_sweep_config(load_catalog().get("mdl-005")).scheduler.kind    # doctest: +SKIP
    'asha'
"""

from typing import Any

from raycore.tuning.config import (
    AshaSpec,
    FamilySweep,
    FifoSpec,
    ModelSweep,
    PbtSpec,
    SearchSpec,
    SweepConfig,
    SweepDefaults,
    default_config_dir,
    load_sweep_config,
    merge_sweep,
)

__all__ = [
    "AshaSpec",
    "FamilySweep",
    "FifoSpec",
    "ModelSweep",
    "PbtSpec",
    "SearchSpec",
    "SweepConfig",
    "SweepDefaults",
    "SweepOutcome",
    "default_config_dir",
    "load_sweep_config",
    "merge_sweep",
    "tune_model",
]


def __getattr__(name: str) -> Any:
    # The sweep itself needs Ray, MLflow and the training pipeline: imported when first asked for.
    if name in {"SweepOutcome", "tune_model"}:
        from raycore.tuning import sweep

        return getattr(sweep, name)
    raise AttributeError(name)
