"""Logging and registering a fitted model: the MLflow run, the gate, the registry version.

``log_candidate`` logs one fitted model as an MLflow run — params, holdout and
oracle metrics, lineage tags (data and feature digests, code version), the
pyfunc model with its bundle, global importance and the drift reference
profile — and raises ``GateFailedError`` when the model misses its catalog
gate (the run stays logged, never registered). ``register_candidate`` turns a
passing run into a registry version: ``champion`` when the model has none,
else ``challenger`` through the champion/challenger gate.

Example:
    >>> logged = log_candidate(store, prepared, fitted, result)            # doctest: +SKIP
    >>> register_candidate(store, prepared, logged)                        # doctest: +SKIP
    ('3', 'v3 stays challenger: ...')
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import raycore
from raycore.errors import GateFailedError, RaycoreError
from raycore.registry import ModelBundle, ModelStore
from raycore.specs import ModelSpec
from raycore.training.evaluation import EvalResult

if TYPE_CHECKING:
    from raycore.training.pipeline import FittedModel, PreparedData

__all__ = [
    "REFERENCE_PROFILE_ARTIFACT",
    "LoggedCandidate",
    "log_candidate",
    "oracle_ratio",
    "register_candidate",
]

REFERENCE_PROFILE_ARTIFACT = "reference_profile"
UNSUPERVISED = frozenset({"anomaly", "clustering"})  # no label to plot or score against


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


_FAMILY_REQUIREMENTS = {
    "lightgbm": ["lightgbm"],
    "xgboost": ["xgboost"],
    "sklearn": ["scikit-learn"],
    "torch": ["torch"],
}


@dataclass(frozen=True)
class LoggedCandidate:
    """A fitted model logged to MLflow that passed its gate."""

    run_id: str
    model_uri: str
    metric: float
    oracle: float | None
    metrics: dict[str, float]
    result: EvalResult
    plot: dict[str, list[Any]]


def log_candidate(
    store: ModelStore,
    prepared: PreparedData,
    fitted: FittedModel,
    result: EvalResult,
    *,
    extra_metrics: Mapping[str, float] | None = None,
    seconds: float = 0.0,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> LoggedCandidate:
    """Log the run (params, metrics, lineage, pyfunc model); raise ``GateFailedError`` on a missed gate.

    A model that misses its gate is logged, never registered.
    """
    spec, bundle = prepared.spec, fitted.bundle
    metric = float(result.metrics[spec.gate.metric])
    oracle = result.oracle.get(spec.gate.metric)
    passed = spec.gate.passes_all(result.metrics)
    metrics = {
        **{f"holdout_{k}": float(v) for k, v in result.metrics.items()},
        **{f"oracle_{k}": float(v) for k, v in result.oracle.items()},
        "train_seconds": fitted.fit_seconds,
        "rows_dropped_no_features": float(prepared.built.dropped_missing),
        "rows_dropped_invalid": float(prepared.built.dropped_invalid),
        **dict(extra_metrics or {}),
    }
    ratio = oracle_ratio(spec.gate.op, metric, oracle)
    if ratio is not None:
        metrics["oracle_ratio"] = ratio
    plot = _plot_sample(spec, bundle, prepared.holdout_rows)
    importance = _importance(prepared, bundle)
    profile_dir = Path(tempfile.mkdtemp(prefix="foundry-profile-"))
    profile_error = _reference_profile(prepared, bundle, profile_dir)
    run_id, model_uri = _log_run(
        store=store,
        spec=spec,
        bundle=bundle,
        metrics=metrics,
        params=fitted.params,
        num_boost_round=fitted.num_boost_round,
        holdout_rows=prepared.holdout_rows,
        passed=passed,
        run_name=fitted.run_name,
        n_train=len(prepared.train_rows),
        n_holdout=len(prepared.holdout_rows),
        notes=result.notes,
        seconds=seconds,
        parent_run_id=parent_run_id,
        artifacts={"importance.json": importance},
        artifact_dirs={} if profile_error else {REFERENCE_PROFILE_ARTIFACT: profile_dir},
        tags={
            **dict(tags or {}),
            **({"reference_profile_error": profile_error[:4000]} if profile_error else {}),
        },
    )
    shutil.rmtree(profile_dir, ignore_errors=True)
    if not passed:
        values = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
        raise GateFailedError(
            f"{spec.id} {spec.name} missed its gate: {values}; gate {spec.gate.describe()}"
            + (f" (oracle {oracle:.4f})" if oracle is not None else ""),
            metric=spec.gate.metric,
            value=metric,
            threshold=spec.gate.threshold,
            run_id=run_id,
            hint="the run is logged in MLflow but not registered; inspect it, then tune or fix the data",
        )
    return LoggedCandidate(run_id, model_uri, metric, oracle, metrics, result, plot)


def register_candidate(
    store: ModelStore,
    prepared: PreparedData,
    logged: LoggedCandidate,
    *,
    evaluate_champion: bool = True,
    actor: str | None = None,
    source: str = "train",
) -> tuple[str, str]:
    """Register a gate-passing run; return (version, what happened to the aliases).

    The first passing version becomes ``champion``. Later ones become
    ``challenger`` and, with ``evaluate_champion``, are compared with the
    champion on ``prepared``'s holdout and promoted if the promotion policy
    accepts (``raycore.registry.promotion``).
    """
    from raycore.errors import PromotionRefusedError
    from raycore.registry.promotion import promote_version

    spec = prepared.spec
    version = store.register(
        name=spec.name,
        model_uri=logged.model_uri,
        run_id=logged.run_id,
        tags={
            "catalog_id": spec.id,
            "gate": spec.gate.describe(),
            "metric_name": spec.gate.metric,
            "metric_value": f"{logged.metric:.6f}",
            "source": source,
        },
    )
    evidence = {"run_id": logged.run_id, **logged.metrics}
    passed = f"gate {spec.gate.describe()} ({spec.gate.metric}={logged.metric:.4f})"
    with store.alias_lock():
        first = store.alias_version(spec.name, "champion") is None
        store.set_alias(
            name=spec.name,
            alias="champion" if first else "challenger",
            version=version,
            action="promote" if first else "candidate",
            actor=actor,
            reason=f"first version to pass {passed}" if first else f"passed {passed}",
            evidence=evidence,
        )
    if first:
        return version, f"v{version} is champion (first version to pass the gate)"
    if not evaluate_champion:
        return version, f"v{version} is challenger"
    try:
        decision = promote_version(
            store, prepared, version=version, candidate_result=logged.result, actor=actor
        )
    except PromotionRefusedError as exc:
        return version, f"v{version} stays challenger: {exc.message}"
    return version, decision.summary


def oracle_ratio(op: str, metric: float, oracle: float | None) -> float | None:
    """How close the model is to the oracle: model/oracle for scores, oracle/model for errors.

    Undefined (None) without an oracle, or for an error metric whose oracle is 0
    (the label is the truth itself: decision and causal models).
    """
    if oracle is None or not np.isfinite(oracle) or not np.isfinite(metric):
        return None
    if op == ">=":
        return metric / oracle if oracle > 0 else None
    if oracle <= 0 or metric <= 0:
        return None
    return oracle / metric


def _plot_sample(
    spec: ModelSpec, bundle: ModelBundle, holdout: pd.DataFrame, n: int = 300
) -> dict[str, list[Any]]:
    """A small sample of (actual, predicted) holdout pairs for the portfolio report."""
    if spec.task in UNSUPERVISED or spec.label not in holdout.columns:
        return {}
    sample = holdout.sample(min(n, len(holdout)), random_state=0)
    try:
        pred = np.asarray(bundle.predict(sample))
    except RaycoreError:
        return {}
    if pred.ndim != 1:
        return {}
    actual = sample[spec.label].tolist()
    return {"actual": [_plain(v) for v in actual], "predicted": [_plain(v) for v in pred.tolist()]}


def _importance(prepared: PreparedData, bundle: ModelBundle) -> dict[str, Any]:
    """Global importance of the model on (a sample of) the holdout; the error if it cannot be computed."""
    from raycore.explain import global_importance

    spec, rows = prepared.spec, prepared.holdout_rows
    label = None
    if spec.task not in UNSUPERVISED and spec.label in rows.columns:
        label = rows[spec.label].to_numpy()
    try:
        return global_importance(
            bundle,
            rows,
            label=label,
            metric=spec.gate.metric,
            higher_is_better=spec.gate.op == ">=",
        )
    except (RaycoreError, ValueError, TypeError, KeyError) as exc:
        return {"kind": "unavailable", "error": f"{type(exc).__name__}: {exc}", "importance": {}}


def _reference_profile(prepared: PreparedData, bundle: ModelBundle, folder: Path) -> str | None:
    """Profile the holdout's model features and predictions into ``folder``; the error, if any.

    The holdout is the latest labelled period: what live traffic looks like
    when the model is deployed, scored out of sample. Drift monitors compare
    live windows with this profile (``raycore.monitoring``).
    """
    from raycore.monitoring import build_reference_profile, infer_categorical

    rows = prepared.holdout_rows
    try:
        features = bundle.view.compute(rows)
        predictions = np.asarray(bundle.predict(rows))
        profile = build_reference_profile(
            features=features, predictions=predictions, categorical=infer_categorical(features)
        )
        profile.save(folder)
    except (RaycoreError, ValueError, TypeError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _log_run(
    *,
    store: ModelStore,
    spec: ModelSpec,
    bundle: ModelBundle,
    metrics: dict[str, float],
    params: Mapping[str, Any],
    num_boost_round: int,
    holdout_rows: pd.DataFrame,
    passed: bool,
    run_name: str,
    n_train: int,
    n_holdout: int,
    notes: str = "",
    seconds: float = 0.0,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Mapping[str, dict[str, Any]] | None = None,
    artifact_dirs: Mapping[str, Path] | None = None,
) -> tuple[str, str]:
    import tempfile

    import mlflow
    from mlflow.models import infer_signature

    from raycore.registry.pyfunc import BUNDLE_ARTIFACT, BundlePythonModel

    # The signature carries the view's declared dtypes, not whatever the join left behind.
    example = bundle.view.coerce_inputs(holdout_rows.head(5).reset_index(drop=True))
    signature = infer_signature(example, np.asarray(bundle.predict(example)))
    run_tags = {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}
    with mlflow.start_run(
        experiment_id=store.experiment_id(spec.name), run_name=run_name, tags=run_tags
    ) as run:
        mlflow.log_params({f"algo.{k}": v for k, v in params.items()})
        mlflow.log_params(
            {
                "num_boost_round": num_boost_round,
                "num_workers": spec.resources.num_workers,
                "cpus_per_worker": spec.resources.cpus_per_worker,
                "use_gpu": spec.resources.use_gpu,
                "n_train": n_train,
                "n_holdout": n_holdout,
            }
        )
        mlflow.log_metrics({**metrics, "duration_seconds": seconds})
        if notes:
            mlflow.set_tag("evaluation_notes", notes[:4000])
        for file_name, content in (artifacts or {}).items():
            mlflow.log_dict(content, file_name)
        for artifact_path, folder in (artifact_dirs or {}).items():
            mlflow.log_artifacts(str(folder), artifact_path)
        md = bundle.metadata
        mlflow.set_tags(
            {
                "catalog_id": spec.id,
                "task": spec.task,
                "gate": spec.gate.describe(),
                "gate_passed": str(passed).lower(),
                "evaluator": spec.evaluation.evaluator,
                "algorithm": f"{spec.algorithm.family}:{spec.algorithm.objective}",
                "feature_view": f"{md.feature_view}:v{md.feature_view_version}",
                "feature_view_digest": md.feature_view_digest,
                **({"feature_state_digest": md.feature_state_digest} if md.feature_state_digest else {}),
                "code_version": md.code_version,
                **{f"data_digest.{k}": v for k, v in md.data_digests.items()},
                **dict(tags or {}),
            }
        )
        bundle.metadata = dataclasses.replace(
            md, metrics=metrics, run_id=run.info.run_id, parent_run_id=parent_run_id or ""
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = bundle.save(Path(tmp) / BUNDLE_ARTIFACT)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=BundlePythonModel(),
                artifacts={BUNDLE_ARTIFACT: str(folder)},
                signature=signature,
                input_example=example,
                pip_requirements=[
                    f"raycore=={raycore.__version__}",
                    *_FAMILY_REQUIREMENTS.get(md.family, []),
                    "pandas<3",
                ],
            )
        return run.info.run_id, info.model_uri
