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
from raycore.conformal import fit_calibrated
from raycore.data.lake import Lake, frame_digest
from raycore.data.sources import SourceTable, read_source, read_truth
from raycore.data.world import WorldConfig
from raycore.errors import DataError, SpecError, TrainingError
from raycore.features import FeatureView, compute_features, get_feature_view
from raycore.features.online import OnlineStore, materialize_online
from raycore.models import Estimator
from raycore.registry import BundleMetadata, ModelBundle, ModelStore
from raycore.runtime import connect_ray, require_gpus
from raycore.settings import FoundrySettings
from raycore.specs import DataSourceSpec, ModelSpec
from raycore.training.candidates import (
    REFERENCE_PROFILE_ARTIFACT,
    LoggedCandidate,
    _plain,
    log_candidate,
    oracle_ratio,
    register_candidate,
)
from raycore.training.evaluation import (
    ORACLE_COLUMN,
    EvalContext,
    EvalResult,
    gate_metric_names,
    get_evaluator,
)
from raycore.training.holdout import split_holdout
from raycore.training.ray_lightgbm import LABEL_COLUMN

__all__ = [
    "REFERENCE_PROFILE_ARTIFACT",
    "BuiltRows",
    "FittedModel",
    "LoggedCandidate",
    "PreparedData",
    "TrainOutcome",
    "algorithm_params",
    "build_training_rows",
    "encode_labels",
    "evaluate_bundle",
    "fit_prepared",
    "fit_released",
    "log_candidate",
    "make_bundle",
    "materialize_tables",
    "oracle_ratio",
    "prepare_training",
    "register_candidate",
    "train_model",
    "write_training_table",
]

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
    notes: str = ""
    plot: dict[str, list[Any]] = field(default_factory=dict)
    decision: str = ""


def code_version() -> str:
    """The git commit of the foundry's source, or the package version outside a checkout."""
    root = Path(raycore.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"raycore-{raycore.__version__}"


UNSUPERVISED = frozenset({"anomaly", "clustering"})
CLASSIFICATION = frozenset({"multiclass", "text_classification"})


class _Sources:
    """Silver/gold tables and truth tables of one training run, each read once."""

    def __init__(self, lake: Lake, world: WorldConfig, primary: SourceTable) -> None:
        self.lake, self.world = lake, world
        self.frames: dict[str, SourceTable] = {}
        self.truths: dict[str, pd.DataFrame] = {}
        self.primary = primary
        if primary.name.split("/")[-1]:
            self.frames[primary.name.split("/")[-1]] = primary

    def table(self, name: str) -> pd.DataFrame:
        return self.source(name).frame

    def source(self, name: str) -> SourceTable:
        if name not in self.frames:
            self.frames[name] = read_source(
                DataSourceSpec(table=name), lake=self.lake, world=self.world
            )
        return self.frames[name]

    def truth(self, name: str) -> pd.DataFrame:
        if name not in self.truths:
            self.truths[name] = read_truth(name, lake=self.lake, world=self.world)
        return self.truths[name]

    def digests(self) -> dict[str, str]:
        return {s.name: s.digest for s in self.frames.values()}


def encode_labels(spec: ModelSpec, train_rows: pd.DataFrame) -> tuple[np.ndarray, list[Any]]:
    """Training labels as the backends expect them, and the class list (classifiers only)."""
    values = train_rows[spec.label]
    if spec.task in UNSUPERVISED:
        # Unsupervised estimators must not see the evaluation labels: they get zeros.
        return np.zeros(len(train_rows), dtype="float64"), []
    if spec.task in CLASSIFICATION:
        classes = sorted(values.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise DataError(
                f"{spec.id}: label '{spec.label}' has {len(classes)} class(es) in the training rows",
                hint="a classifier needs at least two classes; check the label rows and the holdout cut",
            )
        codes = pd.Categorical(values, categories=classes).codes.astype("int64")
        return codes.astype("float64"), [_plain(c) for c in classes]
    try:
        y = values.to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{spec.id}: label '{spec.label}' is not numeric ({values.dtype}) for task '{spec.task}'",
            hint="use task multiclass/text_classification for categorical labels",
        ) from exc
    if not np.isfinite(y).all():
        raise DataError(
            f"{spec.id}: label '{spec.label}' has {int((~np.isfinite(y)).sum())} missing or infinite value(s)",
            hint="the feature view's label_rows must drop rows whose label is unknown",
        )
    return y, []


@dataclass
class PreparedData:
    """The rows of one training run, read and joined once: train/holdout, sources, lineage.

    ``foundry train``, ``foundry tune`` and promotion all start from this.
    """

    spec: ModelSpec
    view: FeatureView
    sources: _Sources
    built: BuiltRows
    train_rows: pd.DataFrame
    holdout_rows: pd.DataFrame
    data_digests: dict[str, str]

    def validation_split(self) -> PreparedData:
        """The training rows cut again by the holdout rule: (inner train, validation).

        Tuning scores trials on this validation part, so model selection never
        sees the holdout that the gate and promotion use.
        """
        inner, validation = split_holdout(self.train_rows, self.spec.holdout)
        if self.spec.group_column is not None:
            inner = inner.sort_values(self.spec.group_column, kind="stable").reset_index(drop=True)
        view = self.view.fitted(inner) if self.view.stateful else self.view
        return dataclasses.replace(self, view=view, train_rows=inner, holdout_rows=validation)


@dataclass
class FittedModel:
    """A fitted bundle and how it was fitted."""

    bundle: ModelBundle
    params: dict[str, Any]
    num_boost_round: int
    fit_seconds: float
    run_name: str


def prepare_training(
    spec: ModelSpec,
    *,
    settings: FoundrySettings,
    world: WorldConfig | None = None,
    progress: Progress | None = None,
) -> PreparedData:
    """Read the sources, build point-in-time correct rows, join the oracle, cut the holdout."""
    say = progress or (lambda _msg: None)
    world = world or WorldConfig()
    view = _single_view(spec)
    say("loading data")
    lake = Lake(settings.lake)
    sources = _Sources(lake, world, read_source(spec.data, lake=lake, world=world))
    say("building features (point-in-time join)")
    built = build_training_rows(spec, view, sources.primary.frame, tables=sources.table)
    rows = built.rows
    data_digests = sources.digests()
    data_digests.update({f"feature_table.{k}": v for k, v in built.table_digests.items()})
    if spec.oracle is not None:
        truth = sources.truth(spec.oracle.table)
        truth = truth[[*spec.oracle.keys, spec.oracle.column]].rename(
            columns={spec.oracle.column: ORACLE_COLUMN}
        )
        truth = truth.drop_duplicates(subset=list(spec.oracle.keys), keep="last")
        rows = rows.merge(truth, on=list(spec.oracle.keys), how="left", validate="many_to_one")
        data_digests[f"truth/{spec.oracle.table}"] = frame_digest(truth)

    train_rows, holdout_rows = split_holdout(rows, spec.holdout)
    if spec.group_column is not None:
        train_rows = train_rows.sort_values(spec.group_column, kind="stable").reset_index(drop=True)
    # Fitted feature state (encoders, vocabularies, scalers) is learned on the training rows
    # only: the holdout must not leak into the features it is scored with.
    view = view.fitted(train_rows)
    return PreparedData(
        spec=spec,
        view=view,
        sources=sources,
        built=built,
        train_rows=train_rows,
        holdout_rows=holdout_rows,
        data_digests=data_digests,
    )


def algorithm_params(spec: ModelSpec, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec's algorithm params (LightGBM gets a fixed seed) with ``overrides`` on top."""
    base = (
        {"seed": 7, **spec.algorithm.params}
        if spec.algorithm.family == "lightgbm"
        else dict(spec.algorithm.params)
    )
    return {**base, **dict(overrides or {})}


def write_training_table(prepared: PreparedData, path: Path) -> list[Any]:
    """Write the model features + encoded label (+ group column) of the train rows; return the classes."""
    spec, view, train_rows = prepared.spec, prepared.view, prepared.train_rows
    x_train = compute_features(view, train_rows)  # on Ray Data for large frames (engine "auto")
    y_train, classes = encode_labels(spec, train_rows)
    scale = view.scale(train_rows)
    if scale is not None:
        y_train = y_train / scale
    table = x_train.assign(**{LABEL_COLUMN: y_train})
    if spec.group_column is not None:
        table[spec.group_column] = train_rows[spec.group_column].to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return classes


def new_run_name(spec: ModelSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def fit_prepared(
    prepared: PreparedData,
    *,
    settings: FoundrySettings,
    params: Mapping[str, Any] | None = None,
    num_boost_round: int | None = None,
    run_name: str | None = None,
    run_dir: Path | None = None,
    progress: Progress | None = None,
    **fit_options: Any,
) -> FittedModel:
    """Fit the spec's algorithm on ``prepared.train_rows`` through Ray; return the bundle.

    ``params`` override the spec's algorithm params, ``num_boost_round`` its
    rounds. ``fit_options`` go to ``fit_estimator`` unchanged (e.g.
    ``checkpoint_every``, ``max_failures``, ``valid_path``, ``callbacks``).
    """
    say = progress or (lambda _msg: None)
    spec = prepared.spec
    if spec.resources.use_gpu:
        require_gpus(spec.resources.num_workers)  # fail before any data work
    run_name = run_name or new_run_name(spec)
    run_dir = run_dir or settings.ensure_home() / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    say(f"computing features ({len(prepared.train_rows):,} train / {len(prepared.holdout_rows):,} holdout rows)")
    train_path = run_dir / "train.parquet"
    classes = write_training_table(prepared, train_path)
    rounds = int(num_boost_round or spec.algorithm.num_boost_round)
    merged = algorithm_params(spec, params)

    say(f"training on Ray ({spec.algorithm.family}, {spec.resources.num_workers} worker(s))")
    connect_ray(settings)
    from raycore.training.backends import fit_estimator

    fit_started = time.perf_counter()
    estimator = fit_estimator(
        family=spec.algorithm.family,
        task=spec.task,
        objective=spec.algorithm.objective,
        params=merged,
        num_boost_round=rounds,
        train_path=train_path,
        resources=spec.resources,
        storage_path=settings.ray_storage,
        run_name=run_name,
        n_classes=len(classes) or None,
        group_column=spec.group_column,
        **fit_options,
    )
    fit_seconds = time.perf_counter() - fit_started
    bundle = make_bundle(prepared, estimator, classes)
    return FittedModel(bundle, merged, rounds, fit_seconds, run_name)


def fit_released(
    prepared: PreparedData,
    *,
    settings: FoundrySettings,
    params: Mapping[str, Any] | None = None,
    num_boost_round: int | None = None,
    progress: Progress | None = None,
) -> FittedModel:
    """The fit of a model that may be registered: ``fit_prepared`` with conformal calibration.

    ``foundry train`` and the retrain job use it, so every registered version
    carries its calibrator (``raycore.conformal.fit_calibrated``).
    """
    return fit_calibrated(
        prepared,
        fit=lambda rows: fit_prepared(
            rows, settings=settings, params=params, num_boost_round=num_boost_round, progress=progress
        ),
        progress=progress,
    )


def make_bundle(prepared: PreparedData, estimator: Estimator, classes: list[Any]) -> ModelBundle:
    """The bundle of a fitted estimator: the view it needs and the lineage of its data."""
    spec, view = prepared.spec, prepared.view
    sample = view.compute(prepared.train_rows.head(64))
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
        data_digests=prepared.data_digests,
        code_version=code_version(),
        classes=classes,
        group_column=spec.group_column,
        resources=spec.resources.model_dump(),
        features=[{"name": str(c), "dtype": str(t)} for c, t in sample.dtypes.items()],
        feature_state_digest=view.state_digest(),
    )
    return ModelBundle(estimator=estimator, view=view, metadata=metadata)


def evaluate_bundle(
    prepared: PreparedData, bundle: ModelBundle, *, holdout_rows: pd.DataFrame | None = None
) -> EvalResult:
    """Score ``bundle`` with the spec's evaluator on the holdout (or ``holdout_rows``)."""
    spec = prepared.spec
    evaluate = get_evaluator(spec.evaluation.evaluator)
    result = evaluate(
        EvalContext(
            spec=spec,
            bundle=bundle,
            train_rows=prepared.train_rows,
            holdout_rows=prepared.holdout_rows if holdout_rows is None else holdout_rows,
            truth=prepared.sources.truth,
            table=prepared.sources.table,
            params=dict(spec.evaluation.params),
        )
    )
    missing = [m for m in gate_metric_names(spec) if m not in result.metrics]
    if missing:
        raise TrainingError(
            f"evaluator '{spec.evaluation.evaluator}' of {spec.id} did not report gate metric(s): {', '.join(missing)}",
            hint="fix the evaluator or the gate metric names in the model spec",
        )
    return result


def train_model(
    spec: ModelSpec,
    *,
    settings: FoundrySettings,
    world: WorldConfig | None = None,
    promote: bool = True,
    progress: Progress | None = None,
    params: Mapping[str, Any] | None = None,
    num_boost_round: int | None = None,
) -> TrainOutcome:
    """Train, evaluate and (if the gate passes) register ``spec``; see module docstring.

    A passing model becomes ``champion`` when the model has none. Otherwise it
    is registered as ``challenger`` and, with ``promote``, goes through the
    champion/challenger gate (``raycore.registry.promotion``) on this run's
    holdout: promoted if better by the configured margin, else left as
    challenger with the comparison in ``TrainOutcome.decision``.
    """
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    if spec.resources.use_gpu:
        require_gpus(spec.resources.num_workers)  # fail before any data work
    prepared = prepare_training(spec, settings=settings, world=world, progress=say)
    fitted = fit_released(prepared, settings=settings, params=params, num_boost_round=num_boost_round, progress=say)
    say("evaluating on the holdout")
    result = evaluate_bundle(prepared, fitted.bundle)
    say("materialising online features")
    online = settings.online_store()
    try:
        online_rows = materialize_tables(prepared.view, prepared.built, store=online)
    finally:
        online.close()
    say("logging to MLflow")
    store = ModelStore(settings)
    logged = log_candidate(
        store,
        prepared,
        fitted,
        result,
        extra_metrics={f"online_rows.{k}": float(v) for k, v in online_rows.items()},
        seconds=time.perf_counter() - started,
    )
    version, decision = None, ""
    if promote:
        say("registering")
        version, decision = register_candidate(store, prepared, logged, evaluate_champion=True)
    return TrainOutcome(
        model_id=spec.id,
        model_name=spec.name,
        run_id=logged.run_id,
        metric_name=spec.gate.metric,
        metric=logged.metric,
        oracle_metric=logged.oracle,
        gate=spec.gate.describe(),
        passed=True,
        version=version,
        seconds=time.perf_counter() - started,
        n_train=len(prepared.train_rows),
        n_holdout=len(prepared.holdout_rows),
        extra={"fit_seconds": fitted.fit_seconds, **{k: float(v) for k, v in result.metrics.items()}},
        notes=result.notes,
        plot=logged.plot,
        decision=decision,
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


def materialize_tables(
    view: FeatureView, built: BuiltRows, *, store: OnlineStore
) -> dict[str, int]:
    """Write each feature table's latest rows per entity to the online store."""
    return {
        table.store_name: materialize_online(table, built.tables[table.name], store=store)
        for table in view.tables
    }


def build_training_rows(
    spec: ModelSpec,
    view: FeatureView,
    source: pd.DataFrame,
    *,
    tables: Callable[[str], pd.DataFrame] | None = None,
) -> BuiltRows:
    """Label rows point-in-time joined with the view's feature tables (the batch path).

    ``tables(name)`` reads another source table; each feature table is
    materialised from its own ``source`` (and ``label_rows`` gets the frames of
    ``label_sources``). Without it every table is computed from ``source``.
    """
    assert view.label_rows is not None
    read = tables or (lambda _name: source)
    if view.label_sources:
        labels = view.label_rows(source, {name: read(name) for name in view.label_sources})
    else:
        labels = view.label_rows(source)
    if spec.label not in labels.columns:
        raise SpecError(
            f"label '{spec.label}' is not produced by feature view '{view.name}'",
            field="label",
            hint=f"columns available: {', '.join(labels.columns)}",
        )
    frames: dict[str, pd.DataFrame] = {}
    digests = {}
    for table in view.tables:
        materialized = table.materialize(read(table.source))
        frames[table.name] = materialized
        digests[table.store_name] = f"{table.digest()}:{frame_digest(materialized)}"
    built = view.training_frame(labels, frames)
    if built.rows.empty:
        raise DataError(
            f"no training rows left for {spec.id} after the point-in-time join "
            f"({built.dropped_missing} without features, {built.dropped_invalid} refused by the view)",
            hint="check the source table's time range and the feature tables' TTL",
        )
    return BuiltRows(built.rows, digests, built.dropped_missing, built.dropped_invalid, frames)
