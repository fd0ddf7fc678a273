"""What every estimator adapter shares: the output contract per task, feature checks, the metadata file.

Every adapter answers ``predict(features)`` in the same shape for a given task:

    regression-like tasks              float per row              (n,)
    binary                             probability of class 1     (n,)
    multiclass, text_classification    class probabilities        (n, n_classes)
    ranking                            score per row              (n,)

The task (and ``n_classes``) is saved next to the model in ``<family>_meta.json``
so a loaded estimator predicts exactly as the one that was trained.

Example:
    >>> output_kind("multiclass"), output_kind("binary"), output_kind("forecasting")
    ('probabilities', 'probability', 'value')
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from raycore.errors import DataError

__all__ = [
    "PROBABILITY_MATRIX_TASKS",
    "AdapterMeta",
    "OutputKind",
    "output_kind",
    "select_features",
    "shape_output",
]

log = logging.getLogger(__name__)

OutputKind = Literal["value", "probability", "probabilities"]
PROBABILITY_MATRIX_TASKS = frozenset({"multiclass", "text_classification"})


def output_kind(task: str) -> OutputKind:
    """What ``predict`` returns for ``task``: a value, P(class 1), or a probability matrix."""
    if task in PROBABILITY_MATRIX_TASKS:
        return "probabilities"
    if task == "binary":
        return "probability"
    return "value"


def select_features(features: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``features`` with exactly the model's columns, in model order (extra columns are dropped)."""
    if list(features.columns) == names:
        return features
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise DataError(
            f"features missing for the model: {', '.join(missing)}",
            hint="compute features with the model's feature view",
        )
    return features.loc[:, names]


def shape_output(raw: Any, *, task: str, n_classes: int | None) -> np.ndarray:
    """Bring a library's raw prediction into the shape the task promises (see module docstring)."""
    out = np.asarray(raw, dtype="float64")
    kind = output_kind(task)
    if kind == "probabilities":
        if out.ndim != 2 or (n_classes is not None and out.shape[1] != n_classes):
            raise DataError(
                f"a {task} model must predict an (n, {n_classes}) probability matrix, got shape {out.shape}",
                hint="train with a multi-class probability objective (lightgbm multiclass, xgboost multi:softprob)",
            )
        return out
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1:
        raise DataError(
            f"a {task} model must predict one value per row, got shape {out.shape}",
            hint="check the objective: a multi-output objective does not fit this task",
        )
    return out


@dataclass(frozen=True)
class AdapterMeta:
    """The small JSON file saved next to every model: how to predict, and with which library version."""

    family: str
    task: str
    n_classes: int | None
    feature_names: list[str]
    library_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def file_name(family: str) -> str:
        return f"{family}_meta.json"

    def write(self, folder: Path) -> None:
        (folder / self.file_name(self.family)).write_text(
            json.dumps(asdict(self), indent=2, sort_keys=True)
        )

    @classmethod
    def read(cls, folder: Path, *, family: str, current_version: str) -> AdapterMeta | None:
        """The saved metadata (``None`` when absent); logs a warning when the library version differs."""
        path = folder / cls.file_name(family)
        if not path.is_file():
            return None
        try:
            meta = cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"estimator metadata at {path} is unreadable: {exc}",
                hint="the bundle is corrupt or from an incompatible version; re-train",
            ) from exc
        if meta.library_version != current_version:
            log.warning(
                "%s model in %s was saved with %s %s and is loaded with %s; predictions may differ, re-train soon",
                family,
                folder,
                family,
                meta.library_version,
                current_version,
            )
        return meta
