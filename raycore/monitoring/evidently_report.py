"""Evidently drift reports: an HTML page a person can read and a JSON file, saved per check.

``run_evidently_drift`` runs Evidently's ``DataDriftPreset`` on a reference
frame and a current window, writes ``<name>.html`` and ``<name>.json`` into a
folder, and parses Evidently's per-column verdicts into ``EvidentlyColumn``
records comparable with ``raycore.monitoring.check_drift``. By default it
uses Evidently's own choice of test and threshold; with ``config`` it applies
ours (normalised Wasserstein for numeric, Jensen-Shannon for categorical, at
the ``DriftConfig`` thresholds) so the two paths can be cross-checked.
``evidently_report_for_profile`` does the same with a profile's bounded
reference sample.

Example:
    >>> result = run_evidently_drift(reference=train_x, current=window, numeric=["amount"],
    ...                              categorical=["channel"], folder=Path("reports"),
    ...                              name="2025-01-06")                          # doctest: +SKIP
    >>> result.drifted_columns, result.html_path.name                            # doctest: +SKIP
    (['amount'], '2025-01-06.html')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from raycore.errors import DataError
from raycore.monitoring.reference import PREDICTION, ReferenceProfile
from raycore.specs.monitoring import DriftConfig

__all__ = [
    "EvidentlyColumn",
    "EvidentlyDrift",
    "evidently_report_for_profile",
    "parse_evidently_drift",
    "run_evidently_drift",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class EvidentlyColumn:
    """Evidently's verdict on one column."""

    name: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class EvidentlyDrift:
    """Evidently's verdicts for one check and where its report files are."""

    columns: dict[str, EvidentlyColumn]
    html_path: Path
    json_path: Path

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns Evidently judged drifted."""
        return [name for name, col in self.columns.items() if col.drifted]

    @property
    def share_drifted(self) -> float:
        """Share of the checked columns that Evidently judged drifted."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0


def parse_evidently_drift(snapshot: dict[str, Any]) -> dict[str, EvidentlyColumn]:
    """Per-column verdicts from the JSON of an Evidently ``DataDriftPreset`` snapshot (``Snapshot.dict()``).

    The score, method and threshold come from each ``ValueDrift`` metric; the
    verdict from its test (FAIL = drift), so it follows the method's own rule
    (distance >= threshold, or p-value < threshold).
    """
    metrics = snapshot.get("metrics")
    tests = snapshot.get("tests")
    if not isinstance(metrics, list) or not isinstance(tests, list):
        raise DataError(
            "not an Evidently snapshot: expected 'metrics' and 'tests' lists",
            hint="pass Snapshot.dict() of a Report run with include_tests=True, or the JSON it saved",
        )
    by_id: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        cfg = metric.get("config", {})
        if cfg.get("type") == "evidently:metric_v2:ValueDrift":
            by_id[metric["id"]] = metric
    columns: dict[str, EvidentlyColumn] = {}
    for test in tests:
        metric = by_id.get(test.get("metric_config", {}).get("metric_id", ""))
        if metric is None:
            continue  # the dataset-level share test
        cfg = metric["config"]
        columns[cfg["column"]] = EvidentlyColumn(
            name=cfg["column"],
            method=str(cfg.get("method")),
            score=float(metric["value"]),
            threshold=float(cfg.get("threshold", np.nan)),
            drifted=test.get("status") == "FAIL",
        )
    if by_id and len(columns) != len(by_id):
        raise DataError(
            f"Evidently snapshot has {len(by_id)} ValueDrift metrics but {len(columns)} column tests",
            hint="run the Report with include_tests=True",
        )
    return columns


def run_evidently_drift(
    *,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    folder: Path,
    name: str,
    config: DriftConfig | None = None,
) -> EvidentlyDrift:
    """Run Evidently's DataDriftPreset, save ``<name>.html`` / ``<name>.json`` in ``folder``, parse the verdicts.

    ``config`` None keeps Evidently's defaults; a ``DriftConfig`` makes
    Evidently apply the same effect sizes and thresholds as ``check_drift``.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if not _NAME.match(name):
        raise DataError(
            f"report name {name!r} is not a plain file name",
            hint="use letters, digits, '.', '_' or '-', e.g. a window's date",
        )
    columns = [*numeric, *categorical]
    for label, frame in (("reference", reference), ("current", current)):
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise DataError(
                f"the {label} frame lacks columns {absent}",
                hint="pass frames with every checked column",
            )
    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    options: dict[str, Any] = {}
    if config is not None:
        options = {
            "num_method": "wasserstein",
            "num_threshold": config.wasserstein_threshold,
            "cat_method": "jensenshannon",
            "cat_threshold": config.jensenshannon_threshold,
        }
    report = Report([DataDriftPreset(columns=columns, **options)], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    html_path, json_path = folder / f"{name}.html", folder / f"{name}.json"
    snapshot.save_html(str(html_path))
    snapshot.save_json(str(json_path))
    return EvidentlyDrift(
        columns=parse_evidently_drift(json.loads(json_path.read_text())),
        html_path=html_path,
        json_path=json_path,
    )


def evidently_report_for_profile(
    *,
    profile: ReferenceProfile,
    current: pd.DataFrame,
    folder: Path,
    name: str,
    predictions: ArrayLike | None = None,
    config: DriftConfig | None = None,
) -> EvidentlyDrift:
    """The Evidently report of a window against a profile's bounded reference sample.

    With ``predictions`` (and a profile that holds them) the predictions are a
    checked column named ``prediction``.
    """
    numeric = list(profile.numeric.names)
    categorical = list(profile.categorical)
    window = current
    if predictions is not None:
        if PREDICTION not in profile.sample.columns:
            raise DataError(
                "predictions were given but the reference profile has none",
                hint="build the profile with predictions=...",
            )
        values = np.asarray(predictions)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or values.shape[0] != len(current):
            raise DataError(
                f"predictions must be one value per current row ({len(current)}), got shape {values.shape}",
                hint="pass the predictions made on the rows of the current window",
            )
        window = current.assign(**{PREDICTION: values})
        (numeric if profile.prediction_numeric is not None else categorical).append(PREDICTION)
    return run_evidently_drift(
        reference=profile.sample,
        current=window,
        numeric=numeric,
        categorical=categorical,
        folder=folder,
        name=name,
        config=config,
    )
