"""Train one catalog model end to end: data → features → Ray Train → gate → registry.

Example:
    >>> from raycore.catalog import load_catalog
    >>> outcome = train_model(load_catalog().get("mdl-001"), settings=FoundrySettings.load())  # doctest: +SKIP
    >>> outcome.passed, outcome.metric                                                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import raycore
from raycore.data.lake import Lake, frame_digest
from raycore.data.sources import read_source, read_truth
from raycore.data.world import WorldConfig
from raycore.errors import DataError, GateFailedError, SpecError
from raycore.features import FeatureView, get_feature_view
from raycore.features.online import OnlineStore, materialize_online
from raycore.models import LightGBMEstimator
from raycore.registry import BundleMetadata, ModelBundle, ModelStore
from raycore.runtime import connect_ray
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.training.holdout import split_holdout
from raycore.training.metrics import compute_metric
from raycore.training.ray_lightgbm import LABEL_COLUMN, fit_lightgbm

__all__ = ["BuiltRows", "TrainOutcome", "build_training_rows", "materialize_tables", "train_model"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainOutcome:
    """What one training run produced."""

    model_id: str
    model_name: str
    run_id: str
    metric_name: str
    metric: float
    oracle_metric: float | None
    gate: str
    passed: bool
    version: str | None
    seconds: float
    n_train: int
    n_holdout: int
    extra: dict[str, float] = field(default_factory=dict)


def code_version() -> str:
    """The git commit of the foundry's source, or the package version outside a checkout."""
    root = Path(raycore.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"raycore-{raycore.__version__}"


def train_model(
    spec: ModelSpec,
    *,
    settings: FoundrySettings,
    world: WorldConfig | None = None,
    promote: bool = True,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train, evaluate and (if the gate passes) register ``spec``; see module docstring."""
    say = progress or (lambda _msg: None)
    world = world or WorldConfig()
    started = time.perf_counter()
    if spec.algorithm.family != "lightgbm":
        raise SpecError(
            f"algorithm family '{spec.algorithm.family}' is not trainable yet",
            field="algorithm.family",
            hint="use family: lightgbm",
        )
    view = _single_view(spec)

    say("loading data")
    lake = Lake(settings.lake)
    source = read_source(spec.data, lake=lake, world=world)
    data_digests = {source.name: source.digest}
    say("building features (point-in-time join)")
    built = build_training_rows(spec, view, source.frame)
    rows = built.rows
    data_digests.update({f"feature_table.{k}": v for k, v in built.table_digests.items()})
    oracle_col = None
    if spec.oracle is not None:
        truth = read_truth(spec.oracle.table, lake=lake, world=world)
        oracle_col = "__oracle__"
        truth = truth[[*spec.oracle.keys, spec.oracle.column]].rename(columns={spec.oracle.column: oracle_col})
        rows = rows.merge(truth, on=list(spec.oracle.keys), how="left", validate="many_to_one")
        data_digests[spec.oracle.table] = frame_digest(truth)

    train_rows, holdout_rows = split_holdout(rows, spec.holdout)
    say(f"computing features ({len(train_rows):,} train / {len(holdout_rows):,} holdout rows)")
    x_train = view.compute(train_rows)
    y_train = train_rows[spec.label].to_numpy(dtype="float64")
    scale = view.scale(train_rows)
    if scale is not None:
        y_train = y_train / scale

    run_name = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir = settings.ensure_home() / "runs" / run_name
    run_dir.mkdir(parents=True)
    train_path = run_dir / "train.parquet"
    x_train.assign(**{LABEL_COLUMN: y_train}).to_parquet(train_path, index=False)

    say(f"training on Ray ({spec.resources.num_workers} worker(s))")
    connect_ray(settings)
    params = {"objective": spec.algorithm.objective, "seed": 7, **spec.algorithm.params}
    fit_started = time.perf_counter()
    booster = fit_lightgbm(
        train_path=train_path,
        params=params,
        num_boost_round=spec.algorithm.num_boost_round,
        resources=spec.resources,
        storage_path=settings.ray_storage,
        run_name=run_name,
    )
    fit_seconds = time.perf_counter() - fit_started
    estimator = LightGBMEstimator(booster)

    say("evaluating on the holdout")
    metadata = BundleMetadata(
        model_id=spec.id,
        model_name=spec.name,
        task=spec.task,
        label=spec.label,
        family=estimator.family,
        feature_view=view.name,
        feature_view_version=view.version,
        feature_view_digest=view.digest(),
        input_schema=view.input_schema(),
        data_digests=data_digests,
        code_version=code_version(),
    )
    bundle = ModelBundle(estimator=estimator, view=view, metadata=metadata)
    y_hold = holdout_rows[spec.label].to_numpy(dtype="float64")
    pred = bundle.predict(holdout_rows)
    metric = compute_metric(spec.gate.metric, y_true=y_hold, y_pred=pred)
    oracle = (
        compute_metric(spec.gate.metric, y_true=y_hold, y_pred=holdout_rows[oracle_col].to_numpy(dtype="float64"))
        if oracle_col
        else None
    )
    passed = spec.gate.passes(metric)

    metrics = {
        f"holdout_{spec.gate.metric}": metric,
        "train_seconds": fit_seconds,
        "rows_dropped_no_features": float(built.dropped_missing),
        "rows_dropped_invalid": float(built.dropped_invalid),
    }
    say("materialising online features")
    online = settings.online_store()
    try:
        for table, rows_count in materialize_tables(view, built, store=online).items():
            metrics[f"online_rows.{table}"] = float(rows_count)
    finally:
        online.close()
    if oracle is not None:
        metrics[f"oracle_{spec.gate.metric}"] = oracle
    say("logging to MLflow")
    store = ModelStore(settings)
    run_id, model_uri = _log_run(
        store=store, spec=spec, bundle=bundle, metrics=metrics, params=params,
        holdout_rows=holdout_rows, passed=passed, run_name=run_name,
        n_train=len(train_rows), n_holdout=len(holdout_rows),
    )
    seconds = time.perf_counter() - started
    if not passed:
        raise GateFailedError(
            f"{spec.id} {spec.name} missed its gate: {spec.gate.metric}={metric:.4f}, "
            f"gate {spec.gate.describe()}"
            + (f" (oracle {oracle:.4f})" if oracle is not None else ""),
            metric=spec.gate.metric,
            value=metric,
            threshold=spec.gate.threshold,
            run_id=run_id,
            hint="the run is logged in MLflow but not registered; inspect it, then tune or fix the data",
        )

    version = None
    if promote:
        say("registering")
        version = store.register(
            name=spec.name, model_uri=model_uri, run_id=run_id,
            tags={
                "catalog_id": spec.id,
                "gate": spec.gate.describe(),
                "metric_name": spec.gate.metric,
                "metric_value": f"{metric:.6f}",
            },
        )
        store.set_alias(
            name=spec.name, alias="champion", version=version, action="promote",
            reason=f"passed gate {spec.gate.describe()} with {spec.gate.metric}={metric:.4f}",
            evidence={"run_id": run_id, **metrics},
        )
    return TrainOutcome(
        model_id=spec.id, model_name=spec.name, run_id=run_id, metric_name=spec.gate.metric,
        metric=metric, oracle_metric=oracle, gate=spec.gate.describe(), passed=passed,
        version=version, seconds=seconds, n_train=len(train_rows), n_holdout=len(holdout_rows),
        extra={"fit_seconds": fit_seconds},
    )


def _single_view(spec: ModelSpec) -> FeatureView:
    if len(spec.features) != 1:
        raise SpecError(
            f"{spec.id} names {len(spec.features)} feature views; one is supported so far",
            field="features",
            hint="list exactly one feature view",
        )
    view = get_feature_view(spec.features[0])
    if view.label_rows is None:
        raise SpecError(f"feature view '{view.name}' cannot build training rows", field="features")
    return view


@dataclass(frozen=True)
class BuiltRows:
    """Training rows of a model and the lineage of the feature tables behind them."""

    rows: pd.DataFrame
    table_digests: dict[str, str]
    dropped_missing: int
    dropped_invalid: int
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def materialize_tables(view: FeatureView, built: BuiltRows, *, store: OnlineStore) -> dict[str, int]:
    """Write each feature table's latest rows per entity to the online store."""
    return {
        table.store_name: materialize_online(table, built.tables[table.name], store=store)
        for table in view.tables
    }


def build_training_rows(spec: ModelSpec, view: FeatureView, source: pd.DataFrame) -> BuiltRows:
    """Label rows point-in-time joined with the view's feature tables (the batch path)."""
    assert view.label_rows is not None
    labels = view.label_rows(source)
    if spec.label not in labels.columns:
        raise SpecError(
            f"label '{spec.label}' is not produced by feature view '{view.name}'",
            field="label",
            hint=f"columns available: {', '.join(labels.columns)}",
        )
    tables = {}
    digests = {}
    for table in view.tables:
        materialized = table.materialize(source)
        tables[table.name] = materialized
        digests[table.store_name] = f"{table.digest()}:{frame_digest(materialized)}"
    built = view.training_frame(labels, tables)
    if built.rows.empty:
        raise DataError(
            f"no training rows left for {spec.id} after the point-in-time join "
            f"({built.dropped_missing} without features, {built.dropped_invalid} refused by the view)",
            hint="check the source table's time range and the feature tables' TTL",
        )
    return BuiltRows(built.rows, digests, built.dropped_missing, built.dropped_invalid, tables)


def _log_run(
    *,
    store: ModelStore,
    spec: ModelSpec,
    bundle: ModelBundle,
    metrics: dict[str, float],
    params: Mapping[str, Any],
    holdout_rows: pd.DataFrame,
    passed: bool,
    run_name: str,
    n_train: int,
    n_holdout: int,
) -> tuple[str, str]:
    import tempfile

    import mlflow
    from mlflow.models import infer_signature

    from raycore.registry.pyfunc import BUNDLE_ARTIFACT, BundlePythonModel

    # The signature carries the view's declared dtypes, not whatever the join left behind.
    example = bundle.view.coerce_inputs(holdout_rows.head(5).reset_index(drop=True))
    signature = infer_signature(example, np.asarray(bundle.predict(example)))
    with mlflow.start_run(experiment_id=store.experiment_id(spec.name), run_name=run_name) as run:
        mlflow.log_params({f"algo.{k}": v for k, v in params.items()})
        mlflow.log_params(
            {
                "num_boost_round": spec.algorithm.num_boost_round,
                "num_workers": spec.resources.num_workers,
                "cpus_per_worker": spec.resources.cpus_per_worker,
                "use_gpu": spec.resources.use_gpu,
                "n_train": n_train,
                "n_holdout": n_holdout,
            }
        )
        mlflow.log_metrics(metrics)
        md = bundle.metadata
        mlflow.set_tags(
            {
                "catalog_id": spec.id,
                "task": spec.task,
                "gate": spec.gate.describe(),
                "gate_passed": str(passed).lower(),
                "feature_view": f"{md.feature_view}:v{md.feature_view_version}",
                "feature_view_digest": md.feature_view_digest,
                "code_version": md.code_version,
                **{f"data_digest.{k}": v for k, v in md.data_digests.items()},
            }
        )
        bundle.metadata = dataclasses.replace(md, metrics=metrics, run_id=run.info.run_id)
        with tempfile.TemporaryDirectory() as tmp:
            folder = bundle.save(Path(tmp) / BUNDLE_ARTIFACT)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=BundlePythonModel(),
                artifacts={BUNDLE_ARTIFACT: str(folder)},
                signature=signature,
                input_example=example,
                pip_requirements=[f"raycore=={raycore.__version__}", "lightgbm", "pandas<3"],
            )
        return run.info.run_id, info.model_uri
