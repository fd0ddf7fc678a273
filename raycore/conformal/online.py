"""Online coverage: how often the served intervals and sets held the labels that arrived later.

The prediction log does not store intervals; they are recomputed, exactly, from
the logged inputs with the calibrator of the version that answered (the same
``calibrator.interval`` / ``prediction_set`` calls serving makes, on the same
predictions). Joined with the late labels (``raycore.feedback``), each
calibrated level gets its realised coverage over the window:

    error = realised - level        sd = sqrt(level (1 - level) / n)

A level is *out of tolerance* when ``|error| > coverage_tolerance`` (the catalog's
``conformal:`` block, default 0.03) **and** ``|error| > 2 sd``: the first is
the size that matters, the second keeps 100 labels of honest noise
(sd 0.03 at 90%) from raising alarms. Nothing is judged below ``min_labelled``
labelled answers (default 100). Severity: under-coverage (intervals that
promise more than they hold) beyond twice the tolerance is HIGH, any other
out-of-tolerance level MEDIUM (over-coverage: intervals wider than needed).

Example:
    >>> hits = {0.9: np.array([True] * 80 + [False] * 20)}
    >>> report = assess_coverage(hits=hits, tolerance=0.03, min_labelled=50)
    >>> report.status, report.severity, round(report.levels[0].realised, 2)
    ('out_of_tolerance', 'HIGH', 0.8)
    >>> assess_coverage(hits=hits, tolerance=0.03, min_labelled=500).status
    'too_few_labels'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from raycore.conformal.calibrate import class_indices
from raycore.conformal.calibrator import (
    Calibrator,
    ClassificationCalibrator,
    RegressionCalibrator,
    as_class_matrix,
)
from raycore.conformal.scores import ConformalError
from raycore.errors import RaycoreError
from raycore.specs.conformal import ConformalSpec

if TYPE_CHECKING:
    from raycore.registry import ModelBundle
    from raycore.settings import FoundrySettings
    from raycore.specs import ModelSpec

__all__ = [
    "CoverageReport",
    "LevelCoverage",
    "assess_coverage",
    "coverage_hits",
    "labelled_window",
    "track_coverage",
]

OK = "ok"
OUT = "out_of_tolerance"
TOO_FEW = "too_few_labels"


@dataclass(frozen=True)
class LevelCoverage:
    """Realised coverage of one level over the labelled answers of a window."""

    level: float
    n: int
    covered: int
    realised: float | None  # None without labelled answers (JSON has no NaN)
    error: float | None
    sd: float | None
    within: bool
    severity: str


@dataclass(frozen=True)
class CoverageReport:
    """Realised coverage per level of one version, and the verdict (JSON-ready via ``to_dict``)."""

    status: str
    severity: str
    n_labelled: int
    tolerance: float
    min_labelled: int
    levels: list[LevelCoverage] = field(default_factory=list)
    model: str = ""
    version: str = ""
    n_answers: int = 0
    since: str | None = None
    until: str | None = None

    @property
    def alerted(self) -> bool:
        return self.status == OUT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _severity(error: float, tolerance: float, within: bool) -> str:
    if within:
        return "NONE"
    return "HIGH" if error < -2.0 * tolerance else "MEDIUM"


def assess_coverage(
    *, hits: dict[float, np.ndarray], tolerance: float, min_labelled: int
) -> CoverageReport:
    """Judge per-level hit vectors (True: the label was inside the interval/set); see the module docstring."""
    if not 0.0 < tolerance < 0.5:
        raise ConformalError(
            f"coverage tolerance must lie in (0, 0.5), got {tolerance!r}",
            hint="e.g. 0.03: realised coverage may differ from the level by 3 points",
        )
    if min_labelled < 1:
        raise ConformalError(f"min_labelled must be >= 1, got {min_labelled!r}", hint="e.g. 100")
    if not hits:
        raise ConformalError("no coverage levels to judge", hint="the calibrator has no levels")
    sizes = {int(np.size(v)) for v in hits.values()}
    if len(sizes) != 1:
        raise ConformalError(
            f"every level needs one hit per labelled answer, got sizes {sorted(sizes)}",
            hint="compute all levels on the same rows (coverage_hits does)",
        )
    n = sizes.pop()
    levels: list[LevelCoverage] = []
    for level in sorted(hits):
        covered = int(np.count_nonzero(hits[level]))
        if n == 0:
            levels.append(LevelCoverage(level, 0, 0, None, None, None, True, "NONE"))
            continue
        realised = covered / n
        error = realised - level
        sd = math.sqrt(level * (1.0 - level) / n)
        within = n < min_labelled or abs(error) <= max(tolerance, 2.0 * sd)
        levels.append(
            LevelCoverage(
                level=level,
                n=n,
                covered=covered,
                realised=realised,
                error=error,
                sd=sd,
                within=within,
                severity=_severity(error, tolerance, within),
            )
        )
    if n < min_labelled:
        status, severity = TOO_FEW, "NONE"
    elif all(lv.within for lv in levels):
        status, severity = OK, "NONE"
    else:
        status = OUT
        severity = "HIGH" if any(lv.severity == "HIGH" for lv in levels) else "MEDIUM"
    return CoverageReport(
        status=status,
        severity=severity,
        n_labelled=n,
        tolerance=tolerance,
        min_labelled=min_labelled,
        levels=levels,
    )


def coverage_hits(
    *,
    bundle: ModelBundle,
    raw: pd.DataFrame,
    labels: pd.Series | np.ndarray,
    calibrator: Calibrator | None = None,
) -> dict[float, np.ndarray]:
    """Per calibrated level, whether each row's label lies in the interval/set ``bundle`` serves for it.

    ``raw`` holds the raw inputs the model predicted from (the logged ``in_*``
    columns); ``calibrator`` defaults to the bundle's own. The intervals are
    those of ``bundle.predict_with_uncertainty`` (same predictions, features and
    calibrator calls).

    Example:
        >>> hits = coverage_hits(bundle=bundle, raw=inputs, labels=y)    # doctest: +SKIP
        >>> {level: hit.mean() for level, hit in hits.items()}          # doctest: +SKIP
        {0.9: 0.91, 0.95: 0.95, 0.99: 0.99}
    """
    cal = calibrator if calibrator is not None else bundle.calibrator
    if cal is None:
        raise ConformalError(
            f"model '{bundle.metadata.model_name}' has no conformal calibrator",
            hint="re-train it with conformal calibration (on by default for regression and classification)",
        )
    if len(raw) != len(labels):
        raise ConformalError(
            f"{len(raw)} input rows for {len(labels)} labels",
            hint="pass the labels of the same rows",
        )
    if len(raw) == 0:
        return {level: np.zeros(0, dtype=bool) for level in cal.levels}
    task = bundle.metadata.task
    if isinstance(cal, ClassificationCalibrator):
        proba = (
            np.asarray(bundle.predict(raw), dtype="float64")
            if task == "binary"
            else bundle.predict_proba(raw).to_numpy(dtype="float64")
        )
        truth = class_indices(np.asarray(labels), task=task, classes=list(cal.classes))
        rows = np.arange(len(truth))
        p = as_class_matrix(proba)
        return {
            level: cal.prediction_set(p, level=level)[rows, truth].astype(bool)
            for level in cal.levels
        }
    assert isinstance(cal, RegressionCalibrator)
    y = pd.to_numeric(pd.Series(np.asarray(labels)), errors="coerce").to_numpy(dtype="float64")
    if not np.isfinite(y).all():
        raise ConformalError(
            f"{int((~np.isfinite(y)).sum())} label(s) of a regression model are not finite numbers",
            hint="record numeric labels (in label units) for this model",
        )
    pred = np.asarray(bundle.predict(raw), dtype="float64")
    features = bundle.view.compute(raw) if cal.scale is not None else None
    out = {}
    for level in cal.levels:
        lower, upper = cal.interval(pred, level=level, features=features)
        out[level] = (y >= lower) & (y <= upper)
    return out


def labelled_window(
    *,
    settings: FoundrySettings,
    model: str,
    version: str,
    bundle: ModelBundle,
    since: Any = None,
    until: Any = None,
    log_rows: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.Series, int]:
    """(raw inputs, labels, answers in the window) of ``version``'s logged answers that have a label.

    ``log_rows``: the window's prediction-log rows when the caller read them already.
    """
    from raycore.feedback import join_labels, read_labels
    from raycore.serving.prediction_log import read_prediction_log

    rows = (
        read_prediction_log(home=settings.home, model=model, since=since, until=until)
        if log_rows is None
        else log_rows
    )
    if not rows.empty:
        rows = rows[rows["version"].astype(str) == str(version)].reset_index(drop=True)
    joined = join_labels(rows, read_labels(home=settings.home, model=model))
    inputs = joined[[c for c in joined.columns if c.startswith("in_")]].rename(
        columns=lambda c: c[3:]
    )
    if joined.empty:
        return inputs, pd.Series(dtype="float64"), len(rows)
    try:
        raw = bundle.view.coerce_inputs(inputs.reset_index(drop=True))
    except (KeyError, ValueError, TypeError, RaycoreError) as exc:
        raise ConformalError(
            f"the logged inputs of {model} v{version} cannot be predicted again: {exc}",
            hint="the prediction log must hold the assembled raw rows the replica predicted from",
        ) from exc
    return raw, joined["label"].reset_index(drop=True), len(rows)


def track_coverage(
    *,
    settings: FoundrySettings,
    spec: ModelSpec,
    version: str,
    bundle: ModelBundle,
    since: Any = None,
    until: Any = None,
    calibrator: Calibrator | None = None,
    log_rows: pd.DataFrame | None = None,
) -> CoverageReport:
    """Realised coverage of ``version``'s logged, labelled answers in a window, judged by the spec.

    Example:
        >>> bundle, version = ModelStore(settings).load_bundle(spec.name, alias="champion")  # doctest: +SKIP
        >>> track_coverage(settings=settings, spec=spec, version=version, bundle=bundle).status  # doctest: +SKIP
        'ok'
    """
    block = spec.conformal or ConformalSpec()
    raw, labels, answers = labelled_window(
        settings=settings,
        model=spec.name,
        version=version,
        bundle=bundle,
        since=since,
        until=until,
        log_rows=log_rows,
    )
    hits = coverage_hits(bundle=bundle, raw=raw, labels=labels, calibrator=calibrator)
    report = assess_coverage(
        hits=hits, tolerance=block.coverage_tolerance, min_labelled=block.min_labelled
    )
    return CoverageReport(
        **{
            **asdict(report),
            "levels": report.levels,
            "model": spec.name,
            "version": str(version),
            "n_answers": answers,
            "since": None if since is None else str(since),
            "until": None if until is None else str(until),
        }
    )
