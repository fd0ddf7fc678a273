"""Scored rows with their true labels, for replaying a decision threshold.

Two sources, newest evidence first:

- ``logged``: the serving prediction log of the model joined, by request id,
  with the labels that arrived later (``raycore.feedback.record_labels``).
  This is what the live model really saw.
- ``holdout``: the served version re-scored on the time holdout of the
  current data (what the gate used). Available from the first deployment on,
  before any label has come back.

Example:
    >>> data = replay_rows(spec, settings=settings, source="auto")   # doctest: +SKIP
    >>> data.scores.shape == data.labels.shape                       # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from raycore.errors import ThresholdError
from raycore.feedback import join_labels, read_labels
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec

__all__ = ["ReplayData", "replay_rows"]

Source = Literal["auto", "logged", "holdout"]


@dataclass(frozen=True)
class ReplayData:
    """Scores (P(positive)) and 0/1 labels of the same rows, and where they came from."""

    scores: np.ndarray
    labels: np.ndarray
    source: str
    version: str | None = None


def _logged(spec: ModelSpec, settings: FoundrySettings) -> ReplayData | None:
    labels = read_labels(home=settings.home, model=spec.name)
    if labels.empty:
        return None
    try:
        from raycore.serving.prediction_log import read_prediction_log
    except ImportError:  # a build without the prediction log
        return None
    log = read_prediction_log(home=settings.home, model=spec.name)
    if log.empty or "out_prediction" not in log.columns:
        return None
    joined = join_labels(log, labels)
    if joined.empty:
        return None
    versions = sorted({str(v) for v in joined.get("version", pd.Series(dtype=str)).dropna()})
    return ReplayData(
        scores=joined["out_prediction"].to_numpy(dtype="float64"),
        labels=joined["label"].to_numpy(),
        source=f"prediction log ⋈ labels: {len(joined)} answered requests (versions {', '.join(versions) or '?'})",
        version=versions[-1] if versions else None,
    )


def _holdout(spec: ModelSpec, settings: FoundrySettings, alias: str) -> ReplayData:
    from raycore.registry.store import ModelStore
    from raycore.training.pipeline import prepare_training

    bundle, version = ModelStore(settings).load_bundle(spec.name, alias=alias)
    prepared = prepare_training(spec, settings=settings)
    rows = prepared.holdout_rows
    scores = np.asarray(bundle.predict(rows), dtype="float64")
    return ReplayData(
        scores=scores,
        labels=rows[spec.label].to_numpy(),
        source=f"holdout re-scored by v{version} ({alias}): {len(rows)} rows",
        version=version,
    )


def replay_rows(
    spec: ModelSpec, *, settings: FoundrySettings, source: Source = "auto", alias: str = "champion"
) -> ReplayData:
    """Labelled scores to replay: the prediction log when labels have arrived, else the holdout."""
    if spec.task != "binary":
        raise ThresholdError(
            f"{spec.id} {spec.name} is a {spec.task} model; decision thresholds apply to binary classifiers",
            hint="`foundry catalog list` shows each model's task",
        )
    if source in ("auto", "logged"):
        logged = _logged(spec, settings)
        if logged is not None:
            return logged
        if source == "logged":
            raise ThresholdError(
                f"no logged prediction of {spec.name} has a label yet",
                hint="record labels with `foundry threshold labels MODEL FILE`, or replay the holdout (--source holdout)",
            )
    return _holdout(spec, settings, alias)
