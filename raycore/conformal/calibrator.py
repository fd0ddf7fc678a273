"""Calibrators: conformal quantiles fitted once, applied per batch (vectorised) at serving.

``RegressionCalibrator.interval(pred, level=...)`` answers ``(lower, upper)``
arrays; ``ClassificationCalibrator.prediction_set(proba, level=...)`` a
boolean (n, n_classes) membership matrix (never empty at 99%). Both are saved as
one JSON file (``calibrator.json``) inside the model bundle folder; the
normalised regression variant carries its scale model (a LightGBM text dump)
in the same file.

Example:
    >>> cal = RegressionCalibrator.from_scores(
    ...     residuals=np.abs(np.random.default_rng(0).normal(size=999)), levels=[0.9])
    >>> lower, upper = cal.interval(np.array([10.0]), level=0.9)
    >>> bool(lower[0] < 10.0 < upper[0])
    True
    >>> cal.interval(np.array([10.0]), level=0.8)
    Traceback (most recent call last):
    ...
    raycore.conformal.scores.ConformalError: coverage level 0.8 was not calibrated for this model (calibrated: [0.9])
      hint: ask for one of the calibrated levels, or add it to the model's conformal.levels and re-train
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from raycore.conformal.scale import ScaleModel
from raycore.conformal.scores import (
    ConformalError,
    aps_scores,
    aps_sets,
    check_level,
    conformal_quantile,
    lac_scores,
    lac_sets,
)

__all__ = [
    "CALIBRATOR_FILE",
    "Calibrator",
    "ClassificationCalibrator",
    "RegressionCalibrator",
    "load_calibrator",
]

CALIBRATOR_FILE = "calibrator.json"
FORMAT_VERSION = 1


def _quantiles(scores: np.ndarray, levels: list[float]) -> dict[float, float]:
    return {check_level(level): conformal_quantile(scores, level=level) for level in sorted(levels)}


def _dump_q(q: dict[float, float]) -> dict[str, float | None]:
    # JSON has no infinity: an unbounded quantile is stored as null.
    return {repr(k): (None if math.isinf(v) else v) for k, v in q.items()}


def _load_q(raw: dict[str, float | None]) -> dict[float, float]:
    return {float(k): (math.inf if v is None else float(v)) for k, v in raw.items()}


@dataclass
class RegressionCalibrator:
    """Split-conformal intervals ``y_hat ± q_level`` (absolute) or ``y_hat ± q_level · sigma(x)`` (normalised)."""

    method: Literal["absolute", "normalized"]
    quantiles: dict[float, float]
    n_calibration: int
    scale: ScaleModel | None = None
    info: dict[str, Any] = field(default_factory=dict)

    kind = "regression"

    @classmethod
    def from_scores(
        cls,
        *,
        residuals: np.ndarray,
        levels: list[float],
        scale: ScaleModel | None = None,
        sigma: np.ndarray | None = None,
        info: dict[str, Any] | None = None,
    ) -> RegressionCalibrator:
        """From absolute calibration residuals; with ``scale`` (and its ``sigma`` per row) normalised."""
        r = np.abs(np.asarray(residuals, dtype="float64"))
        if scale is not None:
            if sigma is None or np.shape(sigma) != r.shape:
                raise ConformalError(
                    "a normalised calibrator needs sigma (one scale per calibration row)",
                    hint="pass sigma=scale.predict(features=..., prediction=...) of the calibration rows",
                )
            r = r / np.asarray(sigma, dtype="float64")
        return cls(
            method="absolute" if scale is None else "normalized",
            quantiles=_quantiles(r, levels),
            n_calibration=int(r.size),
            scale=scale,
            info=dict(info or {}),
        )

    @property
    def levels(self) -> list[float]:
        return sorted(self.quantiles)

    def half_width(
        self, prediction: np.ndarray, *, level: float, features: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Half the interval width per row (``inf`` when the level needs more calibration rows)."""
        q = self.quantiles[check_level(level, available=self.levels)]
        pred = np.asarray(prediction, dtype="float64")
        if self.scale is None:
            return np.full(pred.shape, q)
        if features is None:
            raise ConformalError(
                "normalised intervals need the model features of the rows",
                hint="pass features=bundle.view.compute(raw) (ModelBundle.predict_with_uncertainty does)",
            )
        if len(features) != len(pred):
            raise ConformalError(
                f"{len(features)} feature rows for {len(pred)} predictions",
                hint="pass the features of the same rows",
            )
        return q * self.scale.predict(features=features, prediction=pred)

    def interval(
        self, prediction: np.ndarray, *, level: float, features: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` per row at coverage ``level`` (one of ``self.levels``)."""
        pred = np.asarray(prediction, dtype="float64")
        half = self.half_width(pred, level=level, features=features)
        return pred - half, pred + half

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "method": self.method,
            "quantiles": _dump_q(self.quantiles),
            "n_calibration": self.n_calibration,
            "scale": None if self.scale is None else self.scale.to_dict(),
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegressionCalibrator:
        scale = None if data.get("scale") is None else ScaleModel.from_dict(data["scale"])
        return cls(
            method=data["method"],
            quantiles=_load_q(data["quantiles"]),
            n_calibration=int(data["n_calibration"]),
            scale=scale,
            info=dict(data.get("info") or {}),
        )

    def save(self, folder: Path) -> Path:
        return _save(self.to_dict(), folder)


def as_class_matrix(proba: np.ndarray) -> np.ndarray:
    """An (n, k) probability matrix; a binary model's P(class 1) vector becomes ``[1 - p, p]``."""
    p = np.asarray(proba, dtype="float64")
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


@dataclass
class ClassificationCalibrator:
    """Prediction sets from LAC or (non-randomised) APS scores.

    At levels of ``nonempty_from`` (default 0.99) and above every set holds at
    least the top class. Below it a set may be empty: no class is typical
    enough at that level for the row (an outlier; the decision policy sends it
    to review). Forcing the top class in there would pin coverage at the
    model's accuracy whenever the accuracy exceeds the level (a 97%-accurate
    model could never answer a 90% set), so plain conformal sets are kept.
    """

    method: Literal["lac", "aps"]
    quantiles: dict[float, float]
    n_calibration: int
    classes: list[Any]
    info: dict[str, Any] = field(default_factory=dict)
    nonempty_from: float = 0.99

    kind = "classification"

    @classmethod
    def from_probabilities(
        cls,
        *,
        proba: np.ndarray,
        labels: np.ndarray,
        classes: list[Any],
        levels: list[float],
        method: Literal["lac", "aps"] = "lac",
        info: dict[str, Any] | None = None,
        nonempty_from: float = 0.99,
    ) -> ClassificationCalibrator:
        """From calibration probabilities (binary: P(class 1)) and true class indices."""
        p = as_class_matrix(proba)
        if p.shape[1] != len(classes):
            raise ConformalError(
                f"probabilities have {p.shape[1]} columns for {len(classes)} classes",
                hint="pass the class list in the model's column order",
            )
        if method == "lac":
            scores = lac_scores(p, labels)
        elif method == "aps":
            scores = aps_scores(p, labels)
        else:
            raise ConformalError(
                f"unknown classification method {method!r}", hint="use 'lac' or 'aps'"
            )
        return cls(
            method=method,
            quantiles=_quantiles(scores, levels),
            n_calibration=int(scores.size),
            classes=list(classes),
            info=dict(info or {}),
            nonempty_from=float(nonempty_from),
        )

    @property
    def levels(self) -> list[float]:
        return sorted(self.quantiles)

    def prediction_set(self, proba: np.ndarray, *, level: float) -> np.ndarray:
        """Boolean (n, n_classes) set membership at coverage ``level`` (never empty from ``nonempty_from``)."""
        level = check_level(level, available=self.levels)
        q = self.quantiles[level]
        p = as_class_matrix(proba)
        if p.shape[1] != len(self.classes):
            raise ConformalError(
                f"probabilities have {p.shape[1]} columns, the calibrator knows {len(self.classes)} classes",
                hint="pass the probabilities of the model this calibrator belongs to",
            )
        keep_top = level >= self.nonempty_from - 1e-12
        if self.method == "lac":
            return lac_sets(p, threshold=q, keep_top=keep_top)
        return aps_sets(p, threshold=q, keep_top=keep_top)

    def set_labels(self, sets: np.ndarray) -> list[list[Any]]:
        """The class labels of each row's set (for JSON responses)."""
        names = np.asarray(self.classes, dtype=object)
        return [names[row].tolist() for row in np.asarray(sets, dtype=bool)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "method": self.method,
            "quantiles": _dump_q(self.quantiles),
            "n_calibration": self.n_calibration,
            "classes": self.classes,
            "info": self.info,
            "nonempty_from": self.nonempty_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassificationCalibrator:
        return cls(
            method=data["method"],
            quantiles=_load_q(data["quantiles"]),
            n_calibration=int(data["n_calibration"]),
            classes=list(data["classes"]),
            info=dict(data.get("info") or {}),
            nonempty_from=float(data.get("nonempty_from", 0.99)),
        )

    def save(self, folder: Path) -> Path:
        return _save(self.to_dict(), folder)


Calibrator = RegressionCalibrator | ClassificationCalibrator


def _save(data: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CALIBRATOR_FILE
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    return path


def load_calibrator(folder: Path) -> Calibrator | None:
    """The calibrator saved in ``folder``, or ``None`` when the bundle has none (older bundles)."""
    path = folder / CALIBRATOR_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT_VERSION:
            raise ConformalError(
                f"calibrator at {path} has format {data.get('format')!r}, this code reads {FORMAT_VERSION}",
                hint="re-train the model to rebuild its calibrator",
            )
        if data.get("kind") == "regression":
            return RegressionCalibrator.from_dict(data)
        if data.get("kind") == "classification":
            return ClassificationCalibrator.from_dict(data)
        raise ConformalError(
            f"calibrator at {path} has unknown kind {data.get('kind')!r}", hint="re-train"
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConformalError(
            f"calibrator at {path} is unreadable: {type(exc).__name__}: {exc}",
            hint="the bundle is corrupt or from an incompatible version; re-train",
        ) from exc
