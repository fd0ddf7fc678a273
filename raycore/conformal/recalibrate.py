"""Recalibration: a new conformal calibrator for a registered version from fresh labelled rows, no retraining.

When online coverage drifts out of tolerance (``raycore.conformal.online``),
the model may still be good while its intervals no longer hold what they
promise. ``recalibrate`` scores the shipped model itself on fresh labelled
rows (the version's logged answers joined with their late labels, or rows the
caller gives, e.g. gold rows after the training cut) and builds a calibrator of
the same kind and score (the normalised score keeps its scale model sigma(x):
nothing is refitted). Scoring the shipped model on rows it never saw is plain
split conformal for that model.

Where it goes: a **new registered version** of the same MLflow run, holding the
same estimator and feature view with the new ``calibrator.json``, tagged
``recalibrated_from``. Every alias that pointed at the old version moves to the
new one under the registry's alias lock (serving's hot reload follows the
alias; no redeploy). A version's calibrator therefore never changes after it
is registered: the prediction log's ``version`` names the calibrator that
answered, so coverage is recomputed exactly for every logged answer, and a
rollback (`foundry registry promote` of the old version) restores the old
intervals. The audit log records who, when, why, the versions and the
coverage per level before (old calibrator) and after (new calibrator on the
same rows, and calibrated on the earlier half, checked on the later half).

Bad input (no calibrator, too few labelled rows, rows without the label or the
model's inputs) raises ``ConformalError`` before anything is written.

Example:
    >>> result = recalibrate(settings=settings, spec=spec, reason="coverage 0.82 at 90%")  # doctest: +SKIP
    >>> result.from_version, result.version, result.aliases_moved                          # doctest: +SKIP
    ('3', '4', ['champion'])
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from raycore.conformal.calibrate import class_indices
from raycore.conformal.calibrator import (
    CALIBRATOR_FILE,
    Calibrator,
    ClassificationCalibrator,
    RegressionCalibrator,
)
from raycore.conformal.online import coverage_hits, labelled_window
from raycore.conformal.scores import ConformalError
from raycore.errors import RaycoreError
from raycore.specs.conformal import ConformalSpec

if TYPE_CHECKING:
    from raycore.registry import ModelBundle
    from raycore.settings import FoundrySettings
    from raycore.specs import ModelSpec

__all__ = ["Recalibration", "as_dict", "new_calibrator", "recalibrate"]

ACTION = "conformal_recalibrate"


@dataclass(frozen=True)
class Recalibration:
    """What a recalibration did (JSON-ready via ``asdict``)."""

    model: str
    from_version: str
    version: str
    source: str
    n_rows: int
    coverage_before: dict[float, float]
    coverage_after: dict[float, float]
    coverage_next_half: dict[float, float]
    quantiles_before: dict[float, float | None]
    quantiles_after: dict[float, float | None]
    aliases_moved: list[str] = field(default_factory=list)
    audit_id: int = 0


def _predict_scores(
    bundle: ModelBundle, raw: pd.DataFrame, labels: pd.Series, old: Calibrator
) -> dict[str, Any]:
    task = bundle.metadata.task
    if isinstance(old, ClassificationCalibrator):
        proba = (
            np.asarray(bundle.predict(raw), dtype="float64")
            if task == "binary"
            else bundle.predict_proba(raw).to_numpy(dtype="float64")
        )
        return {
            "proba": proba,
            "labels": class_indices(np.asarray(labels), task=task, classes=list(old.classes)),
        }
    y = pd.to_numeric(pd.Series(np.asarray(labels)), errors="coerce").to_numpy(dtype="float64")
    if not np.isfinite(y).all():
        raise ConformalError(
            f"{int((~np.isfinite(y)).sum())} label(s) of a regression model are not finite numbers",
            hint="recalibrate from numeric labels in label units",
        )
    pred = np.asarray(bundle.predict(raw), dtype="float64")
    out: dict[str, Any] = {"residuals": np.abs(y - pred)}
    if old.scale is not None:
        out["sigma"] = old.scale.predict(features=bundle.view.compute(raw), prediction=pred)
    return out


def new_calibrator(
    *,
    old: Calibrator,
    bundle: ModelBundle,
    raw: pd.DataFrame,
    labels: pd.Series,
    info: dict[str, Any] | None = None,
) -> Calibrator:
    """A calibrator like ``old`` (kind, score, levels, scale model) from the shipped model on fresh rows.

    Example:
        >>> cal = new_calibrator(old=bundle.calibrator, bundle=bundle, raw=fresh, labels=y)  # doctest: +SKIP
        >>> cal.n_calibration == len(fresh)                                                  # doctest: +SKIP
        True
    """
    if len(raw) != len(labels) or len(raw) == 0:
        raise ConformalError(
            f"recalibration needs one label per row and some rows, got {len(raw)} rows, {len(labels)} labels",
            hint="pass the fresh rows' raw inputs and their labels",
        )
    scored = _predict_scores(bundle, raw, labels, old)
    details = {"n_calibration": len(raw), **dict(info or {})}
    if isinstance(old, ClassificationCalibrator):
        return ClassificationCalibrator.from_probabilities(
            proba=scored["proba"],
            labels=scored["labels"],
            classes=list(old.classes),
            levels=old.levels,
            method=old.method,
            info=details,
            nonempty_from=old.nonempty_from,
        )
    assert isinstance(old, RegressionCalibrator)
    return RegressionCalibrator.from_scores(
        residuals=scored["residuals"],
        levels=old.levels,
        scale=old.scale,
        sigma=scored.get("sigma"),
        info=details,
    )


def _coverage(
    bundle: ModelBundle, raw: pd.DataFrame, labels: pd.Series, cal: Calibrator
) -> dict[float, float]:
    hits = coverage_hits(bundle=bundle, raw=raw, labels=labels, calibrator=cal)
    return {level: float(np.mean(h)) if h.size else math.nan for level, h in hits.items()}


def _q(cal: Calibrator) -> dict[float, float | None]:
    return {k: (None if math.isinf(v) else v) for k, v in cal.quantiles.items()}


def _fresh_rows(
    *,
    settings: FoundrySettings,
    spec: ModelSpec,
    version: str,
    bundle: ModelBundle,
    rows: pd.DataFrame | None,
    since: Any,
    until: Any,
) -> tuple[pd.DataFrame, pd.Series, str]:
    if rows is None:
        raw, labels, _ = labelled_window(
            settings=settings,
            model=spec.name,
            version=version,
            bundle=bundle,
            since=since,
            until=until,
        )
        return raw, labels, "prediction_log"
    if spec.label not in rows.columns:
        raise ConformalError(
            f"fresh rows for {spec.name} have no label column '{spec.label}'",
            hint=f"pass rows with the model's raw inputs and '{spec.label}'",
        )
    try:
        raw = bundle.view.coerce_inputs(rows.reset_index(drop=True))
    except (KeyError, ValueError, TypeError, RaycoreError) as exc:
        raise ConformalError(
            f"fresh rows for {spec.name} cannot be predicted: {exc}",
            hint=f"give every raw input of the model: {', '.join(bundle.view.input_names)}",
        ) from exc
    return raw, rows[spec.label].reset_index(drop=True), "rows"


def recalibrate(
    *,
    settings: FoundrySettings,
    spec: ModelSpec,
    reason: str,
    version: str | None = None,
    rows: pd.DataFrame | None = None,
    since: Any = None,
    until: Any = None,
    actor: str | None = None,
    move_aliases: bool = True,
) -> Recalibration:
    """Register ``version`` (default: the champion) again with a calibrator from fresh labelled rows.

    ``rows`` (raw inputs + the label column) are the fresh rows; without them,
    the version's logged answers in ``since``/``until`` that have late labels.
    Needs at least the spec's ``conformal.min_labelled`` rows. See the module
    docstring for where the calibrator goes and what is audited.

    Example:
        >>> recalibrate(settings=settings, spec=spec, reason="drifted").aliases_moved  # doctest: +SKIP
        ['champion']
    """
    import mlflow
    from mlflow.models import Model

    from raycore.registry.audit import default_actor
    from raycore.registry.pyfunc import BUNDLE_ARTIFACT, BundlePythonModel
    from raycore.registry.store import ModelStore

    if not reason.strip():
        raise ConformalError("a recalibration needs a reason", hint='pass --reason "..."')
    block = spec.conformal or ConformalSpec()
    store = ModelStore(settings)
    old_version = store.resolve(spec.name, version=version)
    bundle, _ = store.load_bundle(spec.name, version=old_version)
    old = bundle.calibrator
    if old is None:
        raise ConformalError(
            f"{spec.name} v{old_version} has no conformal calibrator to renew",
            hint="re-train the model with conformal calibration (on by default for regression and classification)",
        )
    raw, labels, source = _fresh_rows(
        settings=settings,
        spec=spec,
        version=old_version,
        bundle=bundle,
        rows=rows,
        since=since,
        until=until,
    )
    if len(raw) < block.min_labelled:
        raise ConformalError(
            f"{spec.name} v{old_version}: {len(raw)} labelled row(s) from {source}, "
            f"recalibration needs at least {block.min_labelled}",
            hint="wait for more labels (`foundry monitor labels`), widen the window, or pass more fresh rows",
        )
    who = actor or default_actor()
    info = {
        "strategy": "recalibrated",
        "recalibrated_from": old_version,
        "source": source,
        "previous_n_calibration": old.n_calibration,
    }
    fresh = new_calibrator(old=old, bundle=bundle, raw=raw, labels=labels, info=info)
    half = len(raw) // 2
    early = new_calibrator(
        old=old, bundle=bundle, raw=raw.iloc[:half], labels=labels.iloc[:half], info=info
    )
    late_raw, late_y = (
        raw.iloc[half:].reset_index(drop=True),
        labels.iloc[half:].reset_index(drop=True),
    )
    before = _coverage(bundle, raw, labels, old)
    after = _coverage(bundle, raw, labels, fresh)
    next_half = _coverage(bundle, late_raw, late_y, early)

    client = store.client
    old_mv = client.get_model_version(spec.name, old_version)
    run_id = old_mv.run_id
    if not run_id:
        raise ConformalError(
            f"{spec.name} v{old_version} has no MLflow run to register a recalibrated version under",
            hint="versions registered outside the foundry cannot be recalibrated; re-train the model",
        )
    tmp = Path(tempfile.mkdtemp(prefix=f"foundry-recal-{spec.name}-"))
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{spec.name}/{old_version}",
                dst_path=str(tmp),
                tracking_uri=store.uri,
            )
        )
        folder = local / "artifacts" / BUNDLE_ARTIFACT
        (folder / CALIBRATOR_FILE).unlink(missing_ok=True)
        fresh.save(folder)
        requirements = local / "requirements.txt"
        with mlflow.start_run(run_id=run_id):
            logged = mlflow.pyfunc.log_model(
                name="model-recalibrated",
                python_model=BundlePythonModel(),
                artifacts={BUNDLE_ARTIFACT: str(folder)},
                signature=Model.load(str(local)).signature,
                pip_requirements=(
                    requirements.read_text().split() if requirements.is_file() else None
                ),
            )
        tags = {
            **dict(old_mv.tags or {}),
            "recalibrated_from": old_version,
            "recalibration_source": source,
            "recalibration_rows": str(len(raw)),
        }
        new_version = store.register(
            name=spec.name, model_uri=logged.model_uri, run_id=run_id, tags=tags
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    evidence = {
        "from_version": old_version,
        "source": source,
        "n_rows": len(raw),
        "coverage_before": {repr(k): v for k, v in before.items()},
        "coverage_after": {repr(k): v for k, v in after.items()},
        "coverage_next_half": {repr(k): v for k, v in next_half.items()},
        "quantiles_before": {repr(k): v for k, v in _q(old).items()},
        "quantiles_after": {repr(k): v for k, v in _q(fresh).items()},
    }
    moved: list[str] = []
    audit_id = 0
    with store.alias_lock():
        if move_aliases:
            for holder in store.versions(spec.name):
                if holder.version == old_version:
                    moved = list(holder.aliases)
            for alias in moved:
                store.set_alias(
                    name=spec.name,
                    alias=alias,
                    version=new_version,
                    reason=reason,
                    actor=who,
                    evidence=evidence,
                    action=ACTION,
                )
        if moved:
            audit_id = next(
                e.id
                for e in reversed(store.audit.history(spec.name))
                if e.action == ACTION and e.version == new_version
            )
        else:
            audit_id = store.audit.record(
                model=spec.name,
                action=ACTION,
                actor=who,
                reason=reason,
                version=new_version,
                previous=old_version,
                evidence=evidence,
            )
    return Recalibration(
        model=spec.name,
        from_version=old_version,
        version=new_version,
        source=source,
        n_rows=len(raw),
        coverage_before=before,
        coverage_after=after,
        coverage_next_half=next_half,
        quantiles_before=_q(old),
        quantiles_after=_q(fresh),
        aliases_moved=moved,
        audit_id=audit_id,
    )


def as_dict(result: Recalibration) -> dict[str, Any]:
    """``result`` as JSON-ready data (level keys as strings)."""
    return {
        key: ({repr(k): v for k, v in value.items()} if isinstance(value, dict) else value)
        for key, value in asdict(result).items()
    }
