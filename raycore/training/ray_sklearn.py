"""scikit-learn style estimators fitted as one Ray task.

The estimator is built in the driver from a registered factory
(``raycore.models.factories.make_sklearn``), so an unknown name or bad
parameters fail before any work starts. The task reads the training parquet
file itself, fits on the feature frame as it is (text columns stay text) and
returns the fitted object, which Ray ships back with cloudpickle.
Unsupervised estimators (anomaly, clustering) receive ``y`` like every other
estimator and must ignore it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raycore.errors import RaycoreError, SpecError, TrainingError
from raycore.models.factories import make_sklearn
from raycore.specs import ResourcesSpec
from raycore.training.ray_train_job import LABEL_COLUMN

__all__ = ["fit_sklearn"]


def _fit(model: Any, train_path: str, group_column: str | None) -> Any:
    import pyarrow.parquet as pq

    frame = pq.read_table(train_path).to_pandas()
    y = frame.pop(LABEL_COLUMN).to_numpy()
    if group_column is not None:
        frame = frame.drop(columns=[group_column])
    fitted = model.fit(frame, y)
    # sklearn's fit returns self; a custom estimator that forgets to is still usable.
    return model if fitted is None else fitted


def fit_sklearn(
    *,
    train_path: Path,
    objective: str,
    params: dict[str, Any],
    resources: ResourcesSpec,
    group_column: str | None = None,
    max_failures: int = 1,
) -> Any:
    """Fit factory ``objective`` with ``params`` on ``train_path`` as a Ray task; returns the fitted object.

    ``max_failures`` retries the task when its worker process dies (not when
    ``fit`` raises: that is a bug in the estimator or its data, and raises
    ``TrainingError`` naming the estimator and the cause).

    Example:
        >>> model = fit_sklearn(train_path=path, objective="ridge", params={"alpha": 1.0},
        ...                     resources=ResourcesSpec())   # doctest: +SKIP
    """
    import ray

    if resources.use_gpu:
        raise SpecError(
            "the sklearn family runs on CPU only",
            field="resources.use_gpu",
            hint="set resources.use_gpu: false (or pick lightgbm/xgboost/torch for GPU training)",
        )
    model = make_sklearn(objective, params)
    task = ray.remote(num_cpus=resources.cpus_per_worker, max_retries=max_failures)(_fit)
    try:
        return ray.get(task.remote(model, str(train_path), group_column))
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
        if isinstance(cause, RaycoreError):
            raise cause from exc
        raise TrainingError(
            f"sklearn estimator '{objective}' ({type(model).__name__}) failed to fit: "
            f"{type(cause).__name__}: {str(cause).strip()[:800]}",
            hint="check the estimator's parameters and that its features suit it (numeric vs text columns)",
        ) from exc
    except ray.exceptions.RayError as exc:
        raise TrainingError(
            f"sklearn estimator '{objective}' could not be fitted on Ray: {type(exc).__name__}: {exc}",
            hint="the worker process died (out of memory?); retry, or lower the data size",
        ) from exc
