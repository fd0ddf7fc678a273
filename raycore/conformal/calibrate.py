"""Calibration at training time: cut the calibration rows, fit, score, attach the calibrator to the bundle.

The calibration rows are cut from the TRAINING rows by the model's own holdout
rule (``PreparedData.validation_split()``: the latest periods for time
holdouts), so the evaluation holdout stays untouched for the gate and for
measuring coverage. A model is fitted on the inner training rows and scored on
the calibration rows; then, by strategy:

    refit   ship the model fitted on all training rows (as without conformal) with
            the calibrator of the inner model: one extra fit, no exact guarantee
            (the shipped model has seen more, and more recent, rows)
    split   ship the inner model itself: the split-conformal guarantee holds
            exactly and there is no extra fit, but the shipped (and gated) model
            never saw the calibration rows, the most recent ones for time holdouts

Defaults (``plan_for``), chosen with ``benchmarks/conformal.py`` over the 23
regression/classification models of the catalog (results/conformal.json):

- strategy ``refit``: realised holdout coverage of ``refit`` and ``split`` is
  within noise of each other on every model (max |error| 0.054 vs 0.063 for
  regression, 0.070 for both on classifiers), and ``refit`` ships the model the
  gate would see without conformal. Cost: one extra fit per model (natively,
  1 thread: 65 s in all next to 58 s of regular fits; on Ray add each family's
  fixed start-up). ``split`` needs no extra fit.
- regression ``auto``: the normalised score where it is narrower on the
  calibration rows (13 of the 15 regression models), else the absolute one
  (mdl-021, mdl-025). Mean width per level 0.87 of MAPIE's split-conformal at
  worst; normalised alone is 0.89 of absolute at 90%.
- classification ``lac``: non-randomised APS gives binary sets of size 2, or
  empty ones when the shipped model is sharper than the calibrated one (refit
  APS coverage error up to 0.22, split 0.10); LAC's worst is 0.070.

Time holdouts drift: 19 of 69 (model, level) coverages miss by more than twice
their sampling noise, in both directions (mdl-020 0.879 at 90%, mdl-029 0.922).
The holdout periods are harder for some models and easier for others: mdl-020's
positive rate rose from 9.8% in the calibration cut to 12.7% in the holdout
(under-covered), mdl-027's fell from 14.1% to 10.4% and mdl-024's accuracy rose
from 0.79 to 0.90 (over-covered). Static remedies chosen without the holdout
move every model the same way, so each fixes one side and worsens the other
(max |error| over the 69 checks, default 0.070): the latest half of the cut
(``recent_window: 0.5``) 0.077, the latest quarter 0.089, recency-weighted
quantiles (non-exchangeable conformal, half-life = half the cut) 0.077, one
quantile per class for classifiers (Mondrian) 0.059 overall but 0.040 on the
large models (default 0.030). They stay per-model options, not the default.
What works is renewing the calibrator as labels arrive (``online`` +
``recalibrate``): replayed on the time-ordered holdout, max |error| on the
models with >= 1,000 rows falls from 0.030 to 0.016 and the mean from 0.011 to
0.0075. The remaining max (0.066, mdl-024 with 267 holdout rows) is sampling
noise: with 80-362 holdout rows for six models, the max over these 69 checks
from noise alone has median 0.065 (5th percentile 0.037), so a 0.02 bound on
every model cannot be met on this data world whatever the method.
A model overrides any default with a ``conformal:`` block in its catalog YAML.

Example:
    >>> from raycore.catalog import load_catalog
    >>> plan_for(load_catalog().get("mdl-024")).method
    'lac'
    >>> fitted = fit_calibrated(prepared, fit=lambda p: fit_prepared(p, settings=s))  # doctest: +SKIP
    >>> fitted.bundle.calibrator.prediction_set(proba, level=0.9)                        # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from raycore.conformal.calibrator import Calibrator, ClassificationCalibrator, RegressionCalibrator
from raycore.conformal.scale import ScaleModel
from raycore.conformal.scores import ConformalError
from raycore.specs.conformal import ConformalSpec

if TYPE_CHECKING:
    from raycore.registry import ModelBundle
    from raycore.specs import ModelSpec
    from raycore.training.pipeline import FittedModel, PreparedData

__all__ = [
    "CLASSIFICATION_TASKS",
    "REGRESSION_TASKS",
    "ConformalPlan",
    "build_calibrator",
    "class_indices",
    "fit_calibrated",
    "plan_for",
    "recent_rows",
    "width_ratio",
]

REGRESSION_TASKS = frozenset(
    {"regression", "forecasting", "quantile_regression", "count_regression", "causal_regression"}
)
CLASSIFICATION_TASKS = frozenset({"binary", "multiclass", "text_classification"})
# Measured defaults (see the module docstring); a catalog `conformal:` block overrides them.
DEFAULT_STRATEGY: Literal["refit", "split"] = "refit"
DEFAULT_REGRESSION: Literal["absolute", "normalized", "auto"] = "auto"


@dataclass(frozen=True)
class ConformalPlan:
    """What calibration does for one model: kind, score method, strategy, levels."""

    kind: Literal["regression", "classification"]
    method: str
    strategy: Literal["refit", "split"]
    levels: list[float]
    nonempty_from: float = 0.99
    recent_window: float = 1.0


def plan_for(spec: ModelSpec) -> ConformalPlan | None:
    """The calibration plan of ``spec``; ``None`` when its task has no conformal calibration or it is off."""
    block = spec.conformal or ConformalSpec()
    if not block.enabled:
        return None
    strategy = block.strategy or DEFAULT_STRATEGY
    if spec.task in REGRESSION_TASKS:
        return ConformalPlan(
            "regression",
            block.regression or DEFAULT_REGRESSION,
            strategy,
            list(block.levels),
            recent_window=block.recent_window,
        )
    if spec.task in CLASSIFICATION_TASKS:
        return ConformalPlan(
            "classification",
            block.classification,
            strategy,
            list(block.levels),
            nonempty_from=block.nonempty_from,
            recent_window=block.recent_window,
        )
    if spec.conformal is not None:
        raise ConformalError(
            f"{spec.id}: task '{spec.task}' has no conformal calibration, but the spec has a conformal block",
            hint=f"remove 'conformal:' (calibration covers {sorted(REGRESSION_TASKS | CLASSIFICATION_TASKS)})",
        )
    return None


def class_indices(labels: pd.Series | np.ndarray, *, task: str, classes: list[Any]) -> np.ndarray:
    """True class index per row: binary labels are 0/1, multiclass labels index ``classes``."""
    values = pd.Series(np.asarray(labels))
    if task == "binary":
        codes = pd.to_numeric(values, errors="coerce").to_numpy()
        if not np.isin(codes, [0.0, 1.0]).all():
            raise ConformalError(
                f"binary labels must be 0/1, got {sorted(set(values.tolist()))[:5]}",
                hint="encode the binary label as 0/1 in the feature view",
            )
        return codes.astype("int64")
    lookup = {c: i for i, c in enumerate(classes)}
    lookup.update({str(c): i for i, c in enumerate(classes)})
    idx = values.map(lambda v: lookup.get(v, lookup.get(str(v), -1))).to_numpy(dtype="int64")
    if (idx < 0).any():
        unknown = sorted({str(v) for v, i in zip(values, idx, strict=True) if i < 0})[:5]
        raise ConformalError(
            f"calibration labels {unknown} are not among the model's classes {classes}",
            hint="the calibration rows hold a class the model was not trained on; check the holdout cut",
        )
    return idx


def _probabilities(bundle: ModelBundle, rows: pd.DataFrame, task: str) -> np.ndarray:
    if task == "binary":
        return np.asarray(bundle.predict(rows), dtype="float64")
    return bundle.predict_proba(rows).to_numpy(dtype="float64")


def build_calibrator(
    *,
    plan: ConformalPlan,
    task: str,
    label: str,
    bundle: ModelBundle,
    calibration_rows: pd.DataFrame,
    inner_rows: pd.DataFrame | None = None,
    info: dict[str, Any] | None = None,
) -> Calibrator:
    """The calibrator of ``bundle`` (fitted on ``inner_rows``) scored on ``calibration_rows``.

    ``inner_rows`` (the rows ``bundle`` was fitted on) are needed only by the
    normalised regression method, which learns its scale sigma(x) from them.
    """
    if calibration_rows.empty:
        raise ConformalError(
            "no calibration rows", hint="the model has too few training rows for a calibration cut"
        )
    details = {"n_calibration": len(calibration_rows), **dict(info or {})}
    if plan.kind == "classification":
        classes = [0, 1] if task == "binary" else list(bundle.metadata.classes)
        return ClassificationCalibrator.from_probabilities(
            proba=_probabilities(bundle, calibration_rows, task),
            labels=class_indices(calibration_rows[label], task=task, classes=classes),
            classes=classes,
            levels=plan.levels,
            method=plan.method,  # type: ignore[arg-type]
            info=details,
            nonempty_from=plan.nonempty_from,
        )
    y = calibration_rows[label].to_numpy(dtype="float64")
    pred = np.asarray(bundle.predict(calibration_rows), dtype="float64")
    residuals = np.abs(y - pred)
    absolute = RegressionCalibrator.from_scores(
        residuals=residuals, levels=plan.levels, info=details
    )
    if plan.method == "absolute":
        return absolute
    if plan.method not in ("normalized", "auto"):
        raise ConformalError(
            f"unknown regression method {plan.method!r}",
            hint="use 'absolute', 'normalized' or 'auto'",
        )
    if inner_rows is None or inner_rows.empty:
        raise ConformalError(
            "the normalised method needs the inner training rows to learn its scale",
            hint="pass inner_rows= (the rows the calibrated model was fitted on)",
        )
    inner_pred = np.asarray(bundle.predict(inner_rows), dtype="float64")
    scale = ScaleModel.fit(
        features=bundle.view.compute(inner_rows),
        prediction=inner_pred,
        abs_residual=np.abs(inner_rows[label].to_numpy(dtype="float64") - inner_pred),
    )
    sigma = scale.predict(features=bundle.view.compute(calibration_rows), prediction=pred)
    normalized = RegressionCalibrator.from_scores(
        residuals=residuals, levels=plan.levels, scale=scale, sigma=sigma, info=details
    )
    if plan.method == "normalized":
        return normalized
    ratio = width_ratio(normalized, absolute, sigma=sigma)
    chosen = normalized if ratio < 1.0 else absolute
    chosen.info["auto_width_ratio"] = round(ratio, 4)  # normalised / absolute on calibration rows
    return chosen


def width_ratio(
    normalized: RegressionCalibrator, absolute: RegressionCalibrator, *, sigma: np.ndarray
) -> float:
    """Geometric mean over the finite levels of mean width normalised / absolute (``sigma``: per row).

    ``auto`` picks the normalised variant when this is below 1 on the calibration
    rows: one choice between two candidates, made without the holdout.

    Example:
        >>> a = RegressionCalibrator(method="absolute", quantiles={0.9: 2.0}, n_calibration=9)
        >>> n = RegressionCalibrator(method="normalized", quantiles={0.9: 1.0}, n_calibration=9)
        >>> width_ratio(n, a, sigma=np.array([1.0, 2.0, 3.0]))
        1.0
    """
    logs = []
    for level in absolute.levels:
        q_abs, q_norm = absolute.quantiles[level], normalized.quantiles[level]
        if np.isfinite(q_abs) and np.isfinite(q_norm) and q_abs > 0:
            logs.append(np.log(q_norm * float(np.mean(sigma)) / q_abs))
    return float(np.exp(np.mean(logs))) if logs else 1.0


def recent_rows(rows: pd.DataFrame, *, spec: ModelSpec, share: float) -> pd.DataFrame:
    """The rows of the latest ``share`` of distinct time values (all rows for random holdouts or share 1).

    Example:
        >>> from raycore.catalog import load_catalog
        >>> frame = pd.DataFrame({"week_start": [1, 1, 2, 3, 4], "y": range(5)})
        >>> recent_rows(frame, spec=load_catalog().get("mdl-006"), share=0.5)["week_start"].tolist()
        [3, 4]
    """
    column = spec.holdout.time_column
    if share >= 1.0 or spec.holdout.kind != "time" or column is None:
        return rows
    times = np.sort(rows[column].unique())
    keep = max(1, int(np.ceil(len(times) * share)))
    return rows[rows[column] >= times[-keep]].reset_index(drop=True)


def fit_calibrated(
    prepared: PreparedData,
    *,
    fit: Callable[[PreparedData], FittedModel],
    progress: Callable[[str], None] | None = None,
) -> FittedModel:
    """Fit ``prepared`` with ``fit`` and attach the conformal calibrator to the bundle.

    ``fit`` fits the spec's algorithm on a ``PreparedData`` exactly as training
    does (``fit_prepared``). ``refit`` calls it twice (all training rows, then
    the inner rows), ``split`` once (the inner rows). Tasks without calibration
    (ranking, clustering, anomaly, decision, uplift) and models with
    ``conformal.enabled: false`` are fitted once, as without this module.
    """
    say = progress or (lambda _msg: None)
    spec = prepared.spec
    plan = plan_for(spec)
    if plan is None:
        return fit(prepared)
    fitted = fit(prepared) if plan.strategy == "refit" else None
    say(f"calibrating ({plan.method}, {plan.strategy}): fitting on the inner training rows")
    started = time.perf_counter()
    inner = prepared.validation_split()
    inner_fitted = fit(inner)
    calibrator = build_calibrator(
        plan=plan,
        task=spec.task,
        label=spec.label,
        bundle=inner_fitted.bundle,
        calibration_rows=recent_rows(inner.holdout_rows, spec=spec, share=plan.recent_window),
        inner_rows=inner.train_rows,
        info={
            "strategy": plan.strategy,
            "n_inner_train": len(inner.train_rows),
            "inner_fit_seconds": round(inner_fitted.fit_seconds, 3),
        },
    )
    calibrator.info["calibration_seconds"] = round(time.perf_counter() - started, 3)
    chosen = inner_fitted if fitted is None else fitted
    chosen.bundle.calibrator = calibrator
    return chosen
