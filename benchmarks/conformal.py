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
    coverage_noise_floor_*      the max |error| these 69 checks would show from sampling noise alone
                                (exchangeable data, each check's n): median, 5th percentile, and the
                                share of draws at or below 0.02
    coverage_error_max_online   the same max when the served calibrator is renewed as labels arrive
    (_n1000, _mean, beyond_2sd) (``online_coverage``: prequential replay of the time-ordered holdout in
                                label batches; every row answered before its label is used)
    coverage_error_max_static_* static calibrators chosen without the holdout, other than the default
                                (``static_alternatives``): recent25, weighted (recency weights), mondrian
                                (one quantile per class, classifiers)

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
    conformal_quantile,
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


MAX_BATCHES = 52  # label batches for the online replay (distinct time values, bucketed beyond this)


def _scores(
    calibrator: RegressionCalibrator | ClassificationCalibrator,
    bundle: ModelBundle,
    rows: pd.DataFrame,
    spec: ModelSpec,
) -> dict[str, Any]:
    """Conformity scores of ``rows`` under ``bundle`` in the calibrator's own score.

    A row is covered at level l exactly when its score is <= the level's quantile
    (regression: |y - y_hat| <= q sigma(x); LAC: 1 - p_true <= q), plus, for sets
    at levels from ``nonempty_from``, when the true class is the top class
    (``top``). Classifiers also return the probability matrix and true indices.
    """
    if isinstance(calibrator, RegressionCalibrator):
        pred = np.asarray(bundle.predict(rows), dtype="float64")
        r = np.abs(rows[spec.label].to_numpy(dtype="float64") - pred)
        if calibrator.scale is not None:
            r = r / calibrator.scale.predict(features=bundle.view.compute(rows), prediction=pred)
        return {"score": r, "top": None}
    if calibrator.method != "lac":
        raise SystemExit("the replay scores LAC sets only (the served default)")
    proba = bundle.predict(rows) if spec.task == "binary" else bundle.predict_proba(rows).to_numpy()
    p = as_class_matrix(np.asarray(proba, dtype="float64"))
    truth = class_indices(rows[spec.label], task=spec.task, classes=list(calibrator.classes))
    idx = np.arange(len(truth))
    return {
        "score": 1.0 - p[idx, truth],
        "top": np.argmax(p, axis=1) == truth,
        "proba": p,
        "truth": truth,
    }


def weighted_quantile(scores: np.ndarray, weights: np.ndarray, *, level: float) -> float:
    """Weighted conformal quantile (non-exchangeable conformal, Barber et al. 2023); the test row weighs 1."""
    order = np.argsort(scores, kind="stable")
    cum = np.cumsum(weights[order]) / (float(np.sum(weights)) + 1.0)
    i = int(np.searchsorted(cum, level - 1e-12))
    return math.inf if i >= len(scores) else float(scores[order][i])


def static_alternatives(
    *,
    calibrator: RegressionCalibrator | ClassificationCalibrator,
    inner_bundle: ModelBundle,
    shipped: ModelBundle,
    cal: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: ModelSpec,
) -> dict[str, dict[float, float]]:
    """Holdout coverage of calibrators built without the holdout, other than the default.

    ``recent25``: the latest quarter of the calibration cut's time values;
    ``weighted``: every calibration row weighted by recency (half-life = half the
    cut's time values); ``mondrian``: classifiers, one quantile per true class
    (coverage per class, so robust to shifts of the class mix). All with the
    default score of the model and the shipped (refit) model on the holdout.
    """
    c, h = _scores(calibrator, inner_bundle, cal, spec), _scores(calibrator, shipped, holdout, spec)
    keep_top = getattr(calibrator, "nonempty_from", 2.0)

    def cover(q: float, level: float) -> float:
        hit = h["score"] <= q
        if h["top"] is not None and level >= keep_top - 1e-12:
            hit = hit | h["top"]
        return float(np.mean(hit))

    out: dict[str, dict[float, float]] = {}
    column = spec.holdout.time_column
    if spec.holdout.kind == "time" and column is not None:
        distinct = np.unique(cal[column].to_numpy())
        period = np.searchsorted(distinct, cal[column].to_numpy())
        n_periods = len(distinct)
        latest = period >= n_periods - max(1, math.ceil(n_periods * 0.25))
        out["recent25"] = {
            lv: cover(conformal_quantile(c["score"][latest], level=lv), lv) for lv in LEVELS
        }
        weights = 0.5 ** ((n_periods - 1 - period) / max(n_periods * 0.5, 1.0))
        out["weighted"] = {
            lv: cover(weighted_quantile(c["score"], weights, level=lv), lv) for lv in LEVELS
        }
    if "proba" in c:
        n_classes = c["proba"].shape[1]
        idx = np.arange(len(h["truth"]))
        out["mondrian"] = {}
        for lv in LEVELS:
            q = np.array(
                [
                    conformal_quantile(c["score"][c["truth"] == k], level=lv)
                    if np.any(c["truth"] == k)
                    else math.inf
                    for k in range(n_classes)
                ]
            )
            sets = (1.0 - h["proba"]) <= q[None, :]
            if lv >= keep_top - 1e-12:
                sets[idx, np.argmax(h["proba"], axis=1)] = True
            out["mondrian"][lv] = float(np.mean(sets[idx, h["truth"]]))
    return out


def online_coverage(
    *,
    calibrator: RegressionCalibrator | ClassificationCalibrator,
    inner_bundle: ModelBundle,
    shipped: ModelBundle,
    cal: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: ModelSpec,
) -> dict[str, Any] | None:
    """Realised holdout coverage when the calibrator is renewed as labels arrive (prequential replay).

    The holdout is answered in time order, one label batch (time value) at a
    time; each batch is answered by the quantiles of the latest ``n_calibration``
    labelled rows known before it: the calibration cut (scored by the inner
    model, as at training), then the earlier holdout batches scored by the
    shipped model (``raycore.conformal.recalibrate``'s scores). Every holdout
    row is answered before its own label is used. None for random holdouts.
    """
    column = spec.holdout.time_column
    if spec.holdout.kind != "time" or column is None:
        return None
    s_cal = _scores(calibrator, inner_bundle, cal, spec)["score"]
    held = _scores(calibrator, shipped, holdout, spec)
    s_hold, top_hold = held["score"], held["top"]
    s_cal = s_cal[np.argsort(cal[column].to_numpy(), kind="stable")]
    times = holdout[column].to_numpy()
    order = np.argsort(times, kind="stable")
    distinct = np.unique(times)
    batch_of_time = np.minimum(
        (np.arange(len(distinct)) * MAX_BATCHES) // max(len(distinct), 1), MAX_BATCHES - 1
    )
    batch = batch_of_time[np.searchsorted(distinct, times)]
    n_window = len(s_cal)
    out: dict[str, Any] = {"coverage": {}, "batches": len(np.unique(batch))}
    for level in LEVELS:
        hits = np.zeros(len(holdout), dtype=bool)
        known = s_cal
        for b in np.unique(batch):
            rows = order[batch[order] == b]
            q = conformal_quantile(known[-n_window:], level=level)
            hit = s_hold[rows] <= q
            if top_hold is not None and level >= calibrator.nonempty_from - 1e-12:  # type: ignore[union-attr]
                hit |= top_hold[rows]
            hits[rows] = hit
            known = np.concatenate([known, s_hold[rows]])
        out["coverage"][level] = float(hits.mean())
    return out


def noise_floor(sds: list[float], *, draws: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Max |error| over the checks if every error were pure sampling noise (normal, sd per check)."""
    rng = np.random.default_rng(seed)
    worst = np.abs(rng.normal(size=(draws, len(sds))) * np.asarray(sds)).max(axis=1)
    return {
        "median": float(np.median(worst)),
        "p05": float(np.quantile(worst, 0.05)),
        "p_le_0.02": float(np.mean(worst <= 0.02)),
    }


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
        if method == default and share == 1.0:
            online = online_coverage(
                calibrator=calibrator,  # type: ignore[arg-type]
                inner_bundle=inner_bundle,
                shipped=full_bundle,
                cal=cal,
                holdout=holdout,
                spec=spec,
            )
            if online is not None:
                row["online"] = online
            for name, coverage in static_alternatives(
                calibrator=calibrator,  # type: ignore[arg-type]
                inner_bundle=inner_bundle,
                shipped=full_bundle,
                cal=cal,
                holdout=holdout,
                spec=spec,
            ).items():
                row.setdefault("alternatives", {})[name] = coverage
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
    served, large, beyond, sds = [], [], [], []
    online, online_large, online_beyond = [], [], []
    for model_id, r in rows.items():
        key = reg_default if reg_default in r["results"] else cls_default
        for lv, c in r["results"][key]["coverage"].items():
            err = abs(c - lv)
            served.append(err)
            big = min(r["n_calibration"], r["n_holdout"]) >= 1000
            if big:
                large.append(err)
            sd = noise_sd(lv, r["n_calibration"], r["n_holdout"])
            sds.append(sd)
            if err > 2 * sd:
                beyond.append(f"{model_id}@{lv}: {c:.3f} ({err / sd:.1f} sd)")
            # online replay; random holdouts have no arrival order: their static figure stands
            c_on = r["online"]["coverage"][lv] if "online" in r else c
            online.append(abs(c_on - lv))
            if big:
                online_large.append(abs(c_on - lv))
            if abs(c_on - lv) > 2 * sd:
                online_beyond.append(f"{model_id}@{lv}: {c_on:.3f} ({abs(c_on - lv) / sd:.1f} sd)")
    floor = noise_floor(sds)
    alternatives: dict[str, list[float]] = {}
    for r in rows.values():
        key = reg_default if reg_default in r["results"] else cls_default
        static = r["results"][key]["coverage"]
        for name in ("recent25", "weighted", "mondrian"):
            # a model without the alternative (random holdout; regression for mondrian) keeps the default
            chosen = r.get("alternatives", {}).get(name, static)
            alternatives.setdefault(name, []).extend(abs(c - lv) for lv, c in chosen.items())
            if min(r["n_calibration"], r["n_holdout"]) >= 1000:
                alternatives.setdefault(f"{name}_n1000", []).extend(
                    abs(c - lv) for lv, c in chosen.items()
                )
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
        "coverage_error_mean": float(np.mean(served)) if served else math.nan,
        # what the max would be from sampling noise alone (exchangeable data, these n's)
        "coverage_noise_floor_median": floor["median"],
        "coverage_noise_floor_p05": floor["p05"],
        "coverage_noise_floor_p_le_0.02": floor["p_le_0.02"],
        # the calibrator renewed as labels arrive (online_coverage: prequential, holdout untouched
        # until each row was answered)
        "coverage_error_max_online": max(online) if online else math.nan,
        "coverage_error_max_online_n1000": max(online_large) if online_large else math.nan,
        "coverage_error_mean_online": float(np.mean(online)) if online else math.nan,
        "coverage_beyond_2sd_online": len(online_beyond),
        **{f"coverage_error_max_static_{k}": max(v) for k, v in alternatives.items() if v},
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
        if "online" in row:
            cells = " ".join(
                f"{int(lv * 100)}%:{row['online']['coverage'][lv]:.3f}" for lv in LEVELS
            )
            table.append((f"{model_id} online replay ({row['online']['batches']} batches)", cells))
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
        "coverage_beyond_2sd_online": online_beyond,
        "online_max_batches": MAX_BATCHES,
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
