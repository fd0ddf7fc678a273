"""Benchmark: conformal calibration of every regression and classification model in the catalog.

For each catalog model whose task is regression-like (regression, forecasting,
quantile/count/causal regression) or classification (binary, multiclass,
text classification), on the default small data world (seed 7):

1. ``prepare_training`` (train rows / untouched holdout), then the calibration
   cut ``validation_split()`` of the training rows (the model's holdout rule);
2. the catalog's estimator fitted natively in-process (same factories and
   params as the Ray path) on the inner training rows, and once more on all
   training rows (the ``refit`` strategy's shipped model);
3. calibrators as the pipeline builds them (``raycore.conformal.build_calibrator``):
   regression ``absolute`` and ``normalized``, classification ``lac`` and ``aps``;
4. realised coverage on the holdout at 90/95/99% for both strategies
   (``split``: the inner model is shipped; ``refit``: the full model with the
   inner model's calibrator), mean interval width / mean set size, and the
   width of MAPIE's ``SplitConformalRegressor(prefit=True)`` conformalized on
   the same calibration rows with the same inner model.

    coverage_error_max          max over models and levels of |realised - nominal| coverage,
                                the served defaults (``raycore.conformal.calibrate``)
    coverage_error_max_n1000    the same over models with >= 1,000 calibration and holdout rows
    coverage_beyond_2sd         (model, level) pairs whose error exceeds 2 standard deviations
                                of the sampling noise (calibration + holdout draws); listed
    width_vs_mapie              per level, the mean over regression models of mean width ours /
                                MAPIE's (same inner model and calibration rows); the worst level
    width_vs_mapie_worst_model  the largest single-model ratio
    *_<strategy>_<method>       the same figures for every alternative (and ``@recent50``: the
                                latest half of the calibration cut), to choose defaults

Ranking, clustering, anomaly, decision and uplift models are listed under
``skipped`` with the reason. Coverage on a small holdout is noisy: each model
reports ``n_holdout`` and the binomial standard error at 90%.

Usage:
    python benchmarks/conformal.py            # every eligible catalog model
    python benchmarks/conformal.py --quick    # six models, one per kind
"""

from __future__ import annotations

import argparse
import math
import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core box spinning
# LightGBM/XGBoost/BLAS pools slow each other down by 10x (fit seconds only).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine

from raycore.catalog import load_catalog
from raycore.conformal import (
    CLASSIFICATION_TASKS,
    REGRESSION_TASKS,
    ConformalPlan,
    build_calibrator,
    class_indices,
)
from raycore.conformal.calibrate import DEFAULT_REGRESSION, DEFAULT_STRATEGY, recent_rows
from raycore.conformal.calibrator import (
    ClassificationCalibrator,
    RegressionCalibrator,
    as_class_matrix,
)
from raycore.registry import ModelBundle
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.training.pipeline import (
    PreparedData,
    algorithm_params,
    encode_labels,
    make_bundle,
    prepare_training,
)

LEVELS = [0.9, 0.95, 0.99]
QUICK = ["mdl-004", "mdl-006", "mdl-026", "mdl-005", "mdl-024", "mdl-002"]
SKIP_REASONS = {
    "ranking": "scores order items within a query; no per-row label interval or class set",
    "clustering": "unsupervised: no label to cover",
    "anomaly": "unsupervised: no label to cover",
    "decision": "predictor + policy: the evaluated output is a decision, not the label",
    "uplift": "the target (a treatment effect) is never observed per row",
}
THREADS = 1


def fit_native(prepared: PreparedData) -> tuple[ModelBundle, float]:
    """The catalog estimator fitted in-process on ``prepared.train_rows`` (same params as the Ray path)."""
    spec, view = prepared.spec, prepared.view
    x = view.compute(prepared.train_rows)
    y, classes = encode_labels(spec, prepared.train_rows)
    scale = view.scale(prepared.train_rows)
    if scale is not None:
        y = y / scale
    family, objective = spec.algorithm.family, spec.algorithm.objective
    params = algorithm_params(spec)
    n_classes = len(classes) if spec.task in ("multiclass", "text_classification") else None
    started = time.perf_counter()
    if family == "lightgbm":
        import lightgbm as lgb

        from raycore.models.lightgbm_model import LightGBMEstimator
        from raycore.training.ray_lightgbm import lightgbm_params, worker_params

        merged = worker_params(
            lightgbm_params(params, objective=objective, n_classes=n_classes),
            threads=THREADS,
            use_gpu=False,
            network=None,
        )
        booster = lgb.train(
            merged, lgb.Dataset(x, label=y), num_boost_round=spec.algorithm.num_boost_round
        )
        estimator: Any = LightGBMEstimator(booster, task=spec.task, n_classes=n_classes)
    elif family == "xgboost":
        import xgboost as xgb

        from raycore.models.xgboost_model import XGBoostEstimator
        from raycore.training.ray_xgboost import worker_params as xgb_worker_params
        from raycore.training.ray_xgboost import xgboost_params

        merged = xgb_worker_params(
            xgboost_params(params, objective=objective, n_classes=n_classes),
            threads=THREADS,
            use_gpu=False,
        )
        booster = xgb.train(
            merged, xgb.DMatrix(x, label=y), num_boost_round=spec.algorithm.num_boost_round
        )
        estimator = XGBoostEstimator(booster, task=spec.task, n_classes=n_classes)
    elif family == "sklearn":
        from raycore.models.factories import make_sklearn
        from raycore.models.sklearn_model import SklearnEstimator

        model = make_sklearn(objective, params)
        fitted = model.fit(x, y)
        estimator = SklearnEstimator(
            model if fitted is None else fitted,
            feature_names=list(x.columns),
            task=spec.task,
            n_classes=n_classes,
            name=objective,
        )
    else:
        raise SystemExit(f"{spec.id}: family {family} is not benchmarked here")
    seconds = time.perf_counter() - started
    return make_bundle(prepared, estimator, classes), seconds


class _Cached:
    """A prefit sklearn-style regressor answering cached predictions by row index (MAPIE's input)."""

    def __init__(self, predictions: np.ndarray) -> None:
        self.predictions = predictions
        self.fitted_ = True

    def fit(self, x: Any, y: Any) -> _Cached:
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.predictions[np.asarray(x)[:, 0].astype("int64")]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"predictions": self.predictions}

    def set_params(self, **params: Any) -> _Cached:
        return self


def mapie_widths(
    cal_pred: np.ndarray, cal_y: np.ndarray, hold_pred: np.ndarray
) -> dict[float, float | None]:
    """Mean interval width of MAPIE's split-conformal regressor (prefit, absolute score) per level.

    MAPIE refuses a level when 1/(1 - level) >= the number of calibration rows
    (it would be unbounded): that level is None.
    """
    from mapie.regression import SplitConformalRegressor

    both = np.concatenate([cal_pred, hold_pred])
    idx_cal = np.arange(len(cal_pred)).reshape(-1, 1)
    idx_hold = np.arange(len(cal_pred), len(both)).reshape(-1, 1)
    out: dict[float, float | None] = {}
    for level in LEVELS:
        regressor = SplitConformalRegressor(
            estimator=_Cached(both),
            confidence_level=level,
            conformity_score="absolute",
            prefit=True,
        )
        regressor.conformalize(idx_cal, cal_y)
        try:
            _pred, bounds = regressor.predict_interval(idx_hold)
        except ValueError as exc:
            if "too low" not in str(exc):
                raise
            out[level] = None
            continue
        out[level] = float(np.mean(bounds[:, 1, 0] - bounds[:, 0, 0]))
    return out


def _finite_mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if np.isfinite(values).all() else math.inf


def regression_figures(
    calibrator: RegressionCalibrator, bundle: ModelBundle, rows: pd.DataFrame, y: np.ndarray
) -> dict[str, Any]:
    pred = np.asarray(bundle.predict(rows), dtype="float64")
    features = bundle.view.compute(rows) if calibrator.scale is not None else None
    out: dict[str, Any] = {"coverage": {}, "width": {}}
    for level in LEVELS:
        lower, upper = calibrator.interval(pred, level=level, features=features)
        out["coverage"][level] = float(np.mean((y >= lower) & (y <= upper)))
        out["width"][level] = _finite_mean(upper - lower)
    return out


def classification_figures(
    calibrator: ClassificationCalibrator,
    bundle: ModelBundle,
    rows: pd.DataFrame,
    truth: np.ndarray,
    task: str,
) -> dict[str, Any]:
    proba = bundle.predict(rows) if task == "binary" else bundle.predict_proba(rows).to_numpy()
    proba = as_class_matrix(np.asarray(proba, dtype="float64"))
    out: dict[str, Any] = {"coverage": {}, "size": {}, "empty_share": {}, "coverage_top_kept": {}}
    for level in LEVELS:
        sets = calibrator.prediction_set(proba, level=level)
        if level >= calibrator.nonempty_from:
            assert sets.any(axis=1).all(), "empty prediction set at a never-empty level"
        out["coverage"][level] = float(np.mean(sets[np.arange(len(truth)), truth]))
        out["size"][level] = float(np.mean(sets.sum(axis=1)))
        out["empty_share"][level] = float(np.mean(~sets.any(axis=1)))
        # What coverage would be with the top class forced into every set (never empty at any level).
        forced = sets.copy()
        forced[np.arange(len(truth)), np.argmax(proba, axis=1)] = True
        out["coverage_top_kept"][level] = float(np.mean(forced[np.arange(len(truth)), truth]))
    return out


def bench_model(spec: ModelSpec, settings: FoundrySettings) -> dict[str, Any]:
    started = time.perf_counter()
    prepared = prepare_training(spec, settings=settings)
    inner = prepared.validation_split()
    prepare_s = time.perf_counter() - started
    inner_bundle, inner_fit_s = fit_native(inner)
    full_bundle, full_fit_s = fit_native(prepared)
    holdout, cal = prepared.holdout_rows, inner.holdout_rows
    shipped = {"split": inner_bundle, "refit": full_bundle}
    row: dict[str, Any] = {
        "task": spec.task,
        "family": f"{spec.algorithm.family}:{spec.algorithm.objective}",
        "n_inner_train": len(inner.train_rows),
        "n_calibration": len(cal),
        "n_holdout": len(holdout),
        "coverage_se_90": math.sqrt(0.9 * 0.1 / len(holdout)),
        "prepare_s": round(prepare_s, 2),
        "full_fit_s": round(full_fit_s, 3),
        "inner_fit_s": round(inner_fit_s, 3),
        "results": {},
    }
    kind = "regression" if spec.task in REGRESSION_TASKS else "classification"
    methods = ["absolute", "normalized", "auto"] if kind == "regression" else ["lac", "aps"]
    default = DEFAULT_REGRESSION if kind == "regression" else "lac"
    # (method, share of the calibration cut): every method on all of it, the default on the
    # latest half too (a remedy for drift between calibration and holdout).
    variants = [(m, 1.0) for m in methods] + [(default, 0.5)]
    for method, share in variants:
        t0 = time.perf_counter()
        calibrator = build_calibrator(
            plan=ConformalPlan(kind, method, "refit", LEVELS),  # type: ignore[arg-type]
            task=spec.task,
            label=spec.label,
            bundle=inner_bundle,
            calibration_rows=recent_rows(cal, spec=spec, share=share),
            inner_rows=inner.train_rows,
        )
        suffix = "" if share == 1.0 else f"@recent{int(share * 100)}"
        row[f"calibrate_s_{method}{suffix}"] = round(time.perf_counter() - t0, 3)
        if "auto_width_ratio" in calibrator.info:
            row[f"auto_choice{suffix}"] = {
                "method": calibrator.method,
                "width_ratio_on_calibration": calibrator.info["auto_width_ratio"],
            }
        for strategy, bundle in shipped.items():
            if kind == "regression":
                y = holdout[spec.label].to_numpy(dtype="float64")
                figures = regression_figures(calibrator, bundle, holdout, y)  # type: ignore[arg-type]
            else:
                classes = list(calibrator.classes)  # type: ignore[union-attr]
                truth = class_indices(holdout[spec.label], task=spec.task, classes=classes)
                figures = classification_figures(calibrator, bundle, holdout, truth, spec.task)  # type: ignore[arg-type]
            row["results"][f"{strategy}/{method}{suffix}"] = figures
    if kind == "regression":
        cal_pred = np.asarray(inner_bundle.predict(cal), dtype="float64")
        hold_pred = np.asarray(inner_bundle.predict(holdout), dtype="float64")
        row["mapie_width"] = mapie_widths(
            cal_pred, cal[spec.label].to_numpy(dtype="float64"), hold_pred
        )
    return row


def _errors(rows: dict[str, dict[str, Any]], key: str) -> list[float]:
    return [
        abs(cov - level)
        for row in rows.values()
        if key in row["results"]
        for level, cov in row["results"][key]["coverage"].items()
    ]


def noise_sd(level: float, n_calibration: int, n_holdout: int) -> float:
    """Standard deviation of realised coverage under exchangeability: calibration + holdout draws."""
    return math.sqrt(level * (1 - level) * (1 / (n_calibration + 1) + 1 / n_holdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="six models, one per kind")
    parser.add_argument("--models", nargs="*", help="catalog ids (default: every eligible model)")
    parser.add_argument(
        "--home", type=Path, help="reuse this FOUNDRY_HOME (default: a fresh temp one)"
    )
    args = parser.parse_args()
    catalog = load_catalog()
    eligible = [s for s in catalog if s.task in REGRESSION_TASKS | CLASSIFICATION_TASKS]
    skipped = {
        s.id: f"{s.task}: {SKIP_REASONS.get(s.task, 'no conformal calibration')}"
        for s in catalog
        if s not in eligible
    }
    wanted = args.models or (QUICK if args.quick else [s.id for s in eligible])
    specs = [s for s in eligible if s.id in wanted]
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="conformal-bench-") as tmp:
        settings = FoundrySettings(home=args.home or Path(tmp))
        rows: dict[str, dict[str, Any]] = {}
        for spec in specs:
            t0 = time.perf_counter()
            rows[spec.id] = bench_model(spec, settings)
            print(
                f"{spec.id} {spec.task:<20} {time.perf_counter() - t0:6.1f}s",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - started

    reg_default = f"{DEFAULT_STRATEGY}/{DEFAULT_REGRESSION}"
    cls_default = f"{DEFAULT_STRATEGY}/lac"
    served, large, beyond = [], [], []
    for model_id, r in rows.items():
        key = reg_default if reg_default in r["results"] else cls_default
        for lv, c in r["results"][key]["coverage"].items():
            err = abs(c - lv)
            served.append(err)
            if min(r["n_calibration"], r["n_holdout"]) >= 1000:
                large.append(err)
            sd = noise_sd(lv, r["n_calibration"], r["n_holdout"])
            if err > 2 * sd:
                beyond.append(f"{model_id}@{lv}: {c:.3f} ({err / sd:.1f} sd)")
    ratios: list[float] = []
    per_level: dict[float, list[float]] = {level: [] for level in LEVELS}
    for row in rows.values():
        if "mapie_width" not in row:
            continue
        ours = row["results"][f"split/{DEFAULT_REGRESSION}"]["width"]
        row["width_vs_mapie"] = {}
        for level in LEVELS:
            theirs = row["mapie_width"][level]
            if (
                theirs is not None
                and math.isfinite(ours[level])
                and math.isfinite(theirs)
                and theirs > 0
            ):
                row["width_vs_mapie"][level] = ours[level] / theirs
                ratios.append(ours[level] / theirs)
                per_level[level].append(ours[level] / theirs)
    level_means = [float(np.mean(v)) for v in per_level.values() if v]
    metrics: dict[str, Any] = {
        "coverage_error_max": max(served) if served else math.nan,
        # per level: mean over regression models of (our mean width / MAPIE's); the worst level
        "width_vs_mapie": max(level_means) if level_means else math.nan,
        "width_vs_mapie_worst_model": max(ratios) if ratios else math.nan,
        "coverage_error_max_n1000": max(large) if large else math.nan,
        "coverage_beyond_2sd": len(beyond),
        "coverage_checks": len(served),
        "models": len(rows),
        "wall_s": round(wall, 1),
    }
    for key in (
        "split/absolute",
        "refit/absolute",
        "split/normalized",
        "refit/normalized",
        "split/auto",
        "refit/auto",
        f"refit/{DEFAULT_REGRESSION}@recent50",
        "split/lac",
        "refit/lac",
        "refit/lac@recent50",
        "split/aps",
        "refit/aps",
    ):
        errs = _errors(rows, key)
        if errs:
            metrics[f"coverage_error_max_{key.replace('/', '_')}"] = max(errs)
    # Width of the normalised variant relative to absolute (same strategy), mean over models at 90%.
    rel = [
        r["results"]["refit/normalized"]["width"][0.9]
        / r["results"]["refit/absolute"]["width"][0.9]
        for r in rows.values()
        if "refit/normalized" in r["results"]
    ]
    if rel:
        metrics["normalized_width_vs_absolute_90"] = float(np.mean(rel))
    extra = [
        r["inner_fit_s"] + r.get(f"calibrate_s_{DEFAULT_REGRESSION}", r.get("calibrate_s_lac", 0.0))
        for r in rows.values()
    ]
    metrics["extra_seconds_refit_total"] = round(float(np.sum(extra)), 2)
    metrics["full_fit_seconds_total"] = round(
        float(np.sum([r["full_fit_s"] for r in rows.values()])), 2
    )

    table: list[tuple[str, str]] = []
    for model_id, row in rows.items():
        for key, res in row["results"].items():
            unit = "width" if "width" in res else "size"
            cells = " ".join(
                f"{int(lv * 100)}%:{res['coverage'][lv]:.3f}/{res[unit][lv]:.3g}" for lv in LEVELS
            )
            table.append((f"{model_id} {key} (n={row['n_holdout']})", cells))
    table += [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in metrics.items()]
    params = {
        "models": [s.id for s in specs],
        "levels": LEVELS,
        "world_seed": 7,
        "threads": THREADS,
        "quick": args.quick,
        "default_strategy": DEFAULT_STRATEGY,
        "default_regression": DEFAULT_REGRESSION,
        "default_classification": "lac",
        "skipped": skipped,
        "coverage_beyond_2sd": beyond,
    }
    box = {**machine(), "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())}
    emit(params=params, metrics=metrics, machine_block=box, detail=rows, rows=table)


def emit(
    *,
    params: dict[str, Any],
    metrics: dict[str, Any],
    machine_block: dict[str, Any],
    detail: dict[str, Any],
    rows: list[tuple[str, str]],
) -> None:
    """The benchmark convention (rich table, results JSON, JSON last line), with per-model detail."""
    import json

    from rich.console import Console
    from rich.table import Table

    table = Table(title="benchmark: conformal (coverage/width or set size per level)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    Console(stderr=False, width=160).print(table)
    out = {
        "benchmark": "conformal",
        "machine": machine_block,
        "params": params,
        "metrics": _jsonable(metrics),
        "detail": _jsonable(detail),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "conformal.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    main()
