"""One entry point that fits any algorithm family through Ray: ``fit_estimator``.

    lightgbm   Ray Train LightGBMTrainer   (ray_lightgbm)   → LightGBMEstimator
    xgboost    Ray Train XGBoostTrainer    (ray_xgboost)    → XGBoostEstimator
    torch      Ray Train TorchTrainer, DDP (ray_torch)      → TorchEstimator
    sklearn    one Ray task                (ray_sklearn)    → SklearnEstimator

Every returned estimator predicts in the task's shape (``raycore.models.adapter``):
a float per row for regression-like tasks and ranking, P(class 1) for ``binary``,
an (n, n_classes) probability matrix for ``multiclass``/``text_classification``.
Inside ``warm_pool.warm_training()`` LightGBM fits run on warm worker actors
(same shards, network and checkpoints, no per-run start-up; see that module).
Checks that need no data run first: an unknown family, a task the family cannot
fit, or ``use_gpu`` on a cluster without GPUs fail before any Ray work starts.

Tuning (``raycore.tuning``) passes ``valid_path``/``valid_metric`` so the Ray
Train families report a validation metric with every checkpoint, and
``callbacks`` (``TuneReportCallback``) so those reports reach Ray Tune. The
sklearn family is one Ray task without intermediate reports: it ignores both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raycore.errors import SpecError, TrainingError
from raycore.models import Estimator
from raycore.models.adapter import PROBABILITY_MATRIX_TASKS
from raycore.runtime import require_gpus
from raycore.specs import ResourcesSpec
from raycore.training.metrics import GROUPED, METRICS
from raycore.training.ray_train_job import ValidationSpec, check_shardable
from raycore.training.warm_pool import active_pool

__all__ = ["FAMILIES", "fit_estimator"]

FAMILIES = ("lightgbm", "xgboost", "sklearn", "torch")
# Tasks fit without labels; only custom sklearn estimators know how.
_UNSUPERVISED_TASKS = {"anomaly", "clustering"}
_BOOSTER_RANKING = {"lightgbm", "xgboost"}


def fit_estimator(
    *,
    family: str,
    task: str,
    objective: str,
    params: dict[str, Any],
    num_boost_round: int,
    train_path: Path,
    resources: ResourcesSpec,
    storage_path: Path,
    run_name: str,
    n_classes: int | None = None,
    group_column: str | None = None,
    checkpoint_every: int = 0,
    max_failures: int = 1,
    valid_path: Path | None = None,
    valid_metric: str | None = None,
    callbacks: list[Any] | None = None,
) -> Estimator:
    """Fit ``family``/``objective`` on ``train_path`` through Ray and return the fitted Estimator.

    ``train_path`` is a parquet file: the feature columns in model order, the
    encoded label ``__label__`` (binary 0/1, multiclass 0..n_classes-1, ranking
    graded relevance) and, for ranking, ``group_column`` (kept together on one
    worker; not a feature). ``objective`` is the library objective (lightgbm,
    xgboost), the factory name (sklearn) or the architecture (torch: ``mlp``).
    ``num_boost_round`` applies to the boosters (torch uses ``params['epochs']``).
    ``checkpoint_every`` rounds (torch: epochs) a checkpoint is reported (0 = at
    the end; torch: every epoch) and a worker failure restarts from the latest
    one, up to ``max_failures`` times.

    ``valid_path`` (a parquet file with the training file's columns, plus
    ``__scale__`` for scaled labels) and ``valid_metric`` (a name in
    ``raycore.training.metrics``) make rank 0 add ``{valid_metric: value}``
    to every report, in the label's units; ``callbacks`` are Ray Train user
    callbacks (e.g. ``TuneReportCallback()`` inside a Ray Tune trial). All
    three default to None, which leaves training exactly as before; the
    sklearn family ignores them (it reports nothing before the end).

    Example:
        >>> est = fit_estimator(family="lightgbm", task="binary", objective="binary", params={},
        ...                     num_boost_round=100, train_path=Path("train.parquet"),
        ...                     resources=ResourcesSpec(), storage_path=Path("/tmp/ray"),
        ...                     run_name="churn-1")    # doctest: +SKIP
        >>> est.predict(features).shape                # doctest: +SKIP
        (1000,)
    """
    _check_request(
        family=family,
        task=task,
        n_classes=n_classes,
        group_column=group_column,
        resources=resources,
    )
    if resources.use_gpu:
        require_gpus(resources.num_workers)
    workers = 1 if family == "sklearn" else resources.num_workers
    features = check_shardable(train_path, num_workers=workers, group_column=group_column)
    classes = n_classes if task in PROBABILITY_MATRIX_TASKS else None
    validation = _validation(
        valid_path, valid_metric, task=task, n_classes=classes, group_column=group_column
    )

    pool = active_pool()
    warm = pool is not None and family == "lightgbm" and validation is None and not callbacks
    if pool is not None and not warm:
        pool.close()  # give its CPUs to this fit; the next warm fit starts the workers again
    if family == "lightgbm":
        from raycore.models.lightgbm_model import LightGBMEstimator
        from raycore.training.ray_lightgbm import fit_lightgbm, lightgbm_params

        if warm:
            assert pool is not None
            # Inside warm_training(): the same fit on warm worker processes (no per-run start-up).
            booster = pool.fit_lightgbm(
                train_path=train_path,
                params=lightgbm_params(params, objective=objective, n_classes=classes),
                num_boost_round=num_boost_round,
                resources=resources,
                storage_path=storage_path,
                run_name=run_name,
                group_column=group_column,
                checkpoint_every=checkpoint_every,
                max_failures=max_failures,
            )
            return LightGBMEstimator(booster, task=task, n_classes=classes)
        booster = fit_lightgbm(
            train_path=train_path,
            params=params,
            objective=objective,
            n_classes=classes,
            group_column=group_column,
            num_boost_round=num_boost_round,
            resources=resources,
            storage_path=storage_path,
            run_name=run_name,
            checkpoint_every=checkpoint_every,
            max_failures=max_failures,
            validation=validation,
            callbacks=callbacks,
        )
        return LightGBMEstimator(booster, task=task, n_classes=classes)
    if family == "xgboost":
        from raycore.models.xgboost_model import XGBoostEstimator
        from raycore.training.ray_xgboost import fit_xgboost

        xgb_booster = fit_xgboost(
            train_path=train_path,
            params=params,
            objective=objective,
            n_classes=classes,
            group_column=group_column,
            num_boost_round=num_boost_round,
            resources=resources,
            storage_path=storage_path,
            run_name=run_name,
            checkpoint_every=checkpoint_every,
            max_failures=max_failures,
            validation=validation,
            callbacks=callbacks,
        )
        return XGBoostEstimator(xgb_booster, task=task, n_classes=classes)
    if family == "torch":
        from raycore.training.ray_torch import fit_torch

        torch_estimator: Estimator = fit_torch(
            train_path=train_path,
            task=task,
            objective=objective,
            params=params,
            n_classes=classes,
            resources=resources,
            storage_path=storage_path,
            run_name=run_name,
            checkpoint_every=checkpoint_every,
            max_failures=max_failures,
            validation=validation,
            callbacks=callbacks,
        )
        return torch_estimator
    from raycore.models.sklearn_model import SklearnEstimator
    from raycore.training.ray_sklearn import fit_sklearn

    model = fit_sklearn(
        train_path=train_path,
        objective=objective,
        params=params,
        resources=resources,
        group_column=group_column,
        max_failures=max_failures,
    )
    return SklearnEstimator(
        model, feature_names=features, task=task, n_classes=classes, name=objective
    )


def _validation(
    path: Path | None,
    metric: str | None,
    *,
    task: str,
    n_classes: int | None,
    group_column: str | None,
) -> ValidationSpec | None:
    """The per-report validation of a fit, or None; a half-given or unknown request fails here."""
    if path is None and metric is None:
        return None
    if path is None or metric is None:
        raise SpecError(
            f"valid_path and valid_metric go together, got valid_path={path!r}, valid_metric={metric!r}",
            field="valid_metric",
            hint="pass both (the validation file and the metric to report) or neither",
        )
    if metric not in METRICS and metric not in GROUPED:
        known = sorted([*METRICS, *GROUPED])
        raise SpecError(
            f"valid_metric '{metric}' is not a metric the workers can compute",
            field="valid_metric",
            hint=f"use one of: {', '.join(known)}",
        )
    if metric in GROUPED and not group_column:
        raise SpecError(
            f"valid_metric '{metric}' needs the query groups",
            field="group_column",
            hint="pass group_column (and keep that column in the validation file)",
        )
    if not Path(path).is_file():
        raise TrainingError(
            f"validation data not found: {path}",
            hint="write it with the training file's columns before fitting",
        )
    return ValidationSpec(
        path=Path(path), metric=metric, task=task, n_classes=n_classes, group_column=group_column
    )


def _check_request(
    *,
    family: str,
    task: str,
    n_classes: int | None,
    group_column: str | None,
    resources: ResourcesSpec,
) -> None:
    """Everything about a fit request that can be wrong without looking at data."""
    if family not in FAMILIES:
        raise SpecError(
            f"unknown algorithm family '{family}'",
            field="algorithm.family",
            hint=f"use one of: {', '.join(FAMILIES)}",
        )
    if family == "sklearn" and resources.use_gpu:
        raise SpecError(
            "the sklearn family runs on CPU only",
            field="resources.use_gpu",
            hint="set resources.use_gpu: false (or pick lightgbm/xgboost/torch for GPU training)",
        )
    if task in _UNSUPERVISED_TASKS and family != "sklearn":
        raise SpecError(
            f"a {task} model needs the sklearn family (an estimator that fits without labels)",
            field="algorithm.family",
            hint="use family: sklearn with a factory such as isolation_forest, kmeans or gaussian_mixture",
        )
    if task in PROBABILITY_MATRIX_TASKS and (n_classes is None or n_classes < 2):
        raise SpecError(
            f"a {task} model needs n_classes >= 2, got {n_classes}",
            field="task",
            hint="the pipeline passes the number of distinct training labels",
        )
    if task == "ranking":
        if family == "torch":
            raise SpecError(
                "the torch family cannot train a ranking model",
                field="algorithm.family",
                hint="use family: lightgbm with objective: lambdarank",
            )
        if family in _BOOSTER_RANKING and not group_column:
            raise SpecError(
                "a ranking model needs group_column (the query id)",
                field="group_column",
                hint="name the column whose rows form one ranked list",
            )
