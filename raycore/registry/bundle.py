"""The ModelBundle: what the foundry trains, registers and serves as one unit.

A bundle holds the fitted estimator, the feature view it was trained with
(name, version, digest, raw input schema) and metadata (catalog id, task,
metrics, data digests, code version). Training saves it; a Serve replica loads
the same folder and predicts from raw inputs through the same feature code.

Example:
    >>> bundle = ModelBundle.load(Path("/path/to/bundle"))   # doctest: +SKIP
    >>> bundle.predict(raw_inputs_frame)                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from raycore.errors import IncompatibleBundleError, RegistryError
from raycore.features import FeatureView, get_feature_view
from raycore.models import Estimator, load_estimator

if TYPE_CHECKING:
    from raycore.conformal import Calibrator

__all__ = ["BundleMetadata", "ModelBundle"]

log = logging.getLogger(__name__)
BUNDLE_FILE = "bundle.json"
ESTIMATOR_DIR = "estimator"
# The fitted state of the feature view (encoders, vocabularies, scalers), when it has one.
FEATURE_STATE_FILE = "feature_state.json"


@dataclass(frozen=True)
class BundleMetadata:
    """Everything needed to trace and serve a bundle."""

    model_id: str
    model_name: str
    task: str
    label: str
    family: str
    feature_view: str
    feature_view_version: int
    feature_view_digest: str
    input_schema: list[dict[str, Any]]
    metrics: dict[str, float] = field(default_factory=dict)
    data_digests: dict[str, str] = field(default_factory=dict)
    code_version: str = ""
    run_id: str = ""
    classes: list[Any] = field(default_factory=list)
    group_column: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str = ""  # the sweep's run when the model came from `foundry tune`
    features: list[dict[str, str]] = field(default_factory=list)  # model features: name, dtype
    feature_state_digest: str = ""  # digest of the view's fitted state ('' for a stateless view)


class ModelBundle:
    """Estimator + feature view + metadata (+ an optional conformal calibrator); predicts from raw inputs."""

    def __init__(
        self,
        *,
        estimator: Estimator,
        view: FeatureView,
        metadata: BundleMetadata,
        calibrator: Calibrator | None = None,
    ) -> None:
        self.estimator = estimator
        self.view = view
        self.metadata = metadata
        # Conformal calibrator (raycore.conformal); None for bundles trained without one.
        self.calibrator = calibrator

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        """Predictions in label units from a frame of raw inputs.

        Classifiers with declared classes (multiclass, text classification)
        answer the class label; binary models the probability of class 1.
        """
        pred = self._raw_predict(raw)
        if self.metadata.classes and pred.ndim == 2:
            return np.asarray(self.metadata.classes, dtype=object)[np.argmax(pred, axis=1)]
        return pred

    def predict_proba(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities (one column per class) of a multiclass model."""
        pred = self._raw_predict(raw)
        if not self.metadata.classes or pred.ndim != 2:
            raise RegistryError(
                f"model '{self.metadata.model_name}' ({self.metadata.task}) has no class probabilities",
                hint="predict_proba is for multiclass and text classification models; use predict",
            )
        return pd.DataFrame(pred, columns=[str(c) for c in self.metadata.classes], index=raw.index)

    def predict_with_uncertainty(self, raw: pd.DataFrame, *, level: float) -> dict[str, Any]:
        """Predictions with their conformal interval (regression) or prediction set (classifiers).

        Regression-like models answer ``{"prediction", "lower", "upper"}``,
        classifiers ``{"prediction", "set"}`` (boolean (n, n_classes) over
        ``metadata.classes``; binary: classes 0/1); ``level`` is one of the
        calibrated levels (``calibrator.levels``). See ``raycore.conformal``.
        """
        if self.calibrator is None:
            raise RegistryError(
                f"model '{self.metadata.model_name}' has no conformal calibrator",
                hint="re-train it with conformal calibration (on by default for regression and classification)",
            )
        features = self.view.compute(raw)
        pred = self._scaled(raw, np.asarray(self.estimator.predict(features)))
        if self.calibrator.kind == "classification":
            sets = self.calibrator.prediction_set(pred, level=level)  # type: ignore[union-attr]
            return {"prediction": self._labels(pred), "set": sets}
        lower, upper = self.calibrator.interval(pred, level=level, features=features)  # type: ignore[union-attr]
        return {"prediction": pred, "lower": lower, "upper": upper}

    def _labels(self, pred: np.ndarray) -> np.ndarray:
        if self.metadata.classes and pred.ndim == 2:
            return np.asarray(self.metadata.classes, dtype=object)[np.argmax(pred, axis=1)]
        return pred

    def _raw_predict(self, raw: pd.DataFrame) -> np.ndarray:
        features = self.view.compute(raw)
        return self._scaled(raw, np.asarray(self.estimator.predict(features)))

    def _scaled(self, raw: pd.DataFrame, pred: np.ndarray) -> np.ndarray:
        scale = self.view.scale(raw)
        if scale is None:
            return pred
        return pred * (scale[:, None] if pred.ndim == 2 else scale)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ESTIMATOR_DIR).mkdir(exist_ok=True)
        self.estimator.save(folder / ESTIMATOR_DIR)
        if self.calibrator is not None:
            self.calibrator.save(folder)
        if self.view.state is not None:
            (folder / FEATURE_STATE_FILE).write_text(
                json.dumps(self.view.state, indent=1, sort_keys=True)
            )
        (folder / BUNDLE_FILE).write_text(
            json.dumps(asdict(self.metadata), indent=2, sort_keys=True)
        )
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        path = folder / BUNDLE_FILE
        try:
            raw = json.loads(path.read_text())
            metadata = BundleMetadata(**raw)
        except FileNotFoundError as exc:
            raise RegistryError(
                f"no model bundle at {folder}", hint="the artifact is incomplete; re-train"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise RegistryError(
                f"model bundle metadata at {path} is unreadable: {exc}",
                hint="the artifact is corrupt or from an incompatible version; re-train",
            ) from exc
        view = get_feature_view(metadata.feature_view)
        if view.version != metadata.feature_view_version:
            raise IncompatibleBundleError(
                f"model '{metadata.model_name}' was trained with feature view "
                f"{metadata.feature_view} v{metadata.feature_view_version}, the code has v{view.version}",
                hint="re-train the model with the current feature view (serving it would skew)",
            )
        if view.digest() != metadata.feature_view_digest:
            log.warning(
                "feature view %s changed since training (digest %s -> %s); same version, re-train soon",
                view.name,
                metadata.feature_view_digest,
                view.digest(),
            )
        view = _bind_state(view, folder, metadata)
        estimator = load_estimator(metadata.family, folder / ESTIMATOR_DIR)
        from raycore.conformal import load_calibrator  # lazy: conformal sits below the registry

        # Bundles saved before calibration existed have no calibrator file: None.
        return cls(
            estimator=estimator, view=view, metadata=metadata, calibrator=load_calibrator(folder)
        )


def _bind_state(view: FeatureView, folder: Path, metadata: BundleMetadata) -> FeatureView:
    """The view bound to the fitted state saved in the bundle (checked against its digest)."""
    path = folder / FEATURE_STATE_FILE
    if not view.stateful:
        return view
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise IncompatibleBundleError(
            f"model '{metadata.model_name}' has no fitted state for feature view {view.name} ({path} is missing)",
            hint="the bundle predates the view's fitted state or is incomplete; re-train the model",
        ) from None
    except ValueError as exc:
        raise RegistryError(
            f"the fitted feature state at {path} is unreadable: {exc}",
            hint="the artifact is corrupt; re-train the model (serving it would skew)",
        ) from exc
    bound = view.with_state(state)
    if metadata.feature_state_digest and bound.state_digest() != metadata.feature_state_digest:
        raise RegistryError(
            f"the fitted feature state at {path} does not match the bundle "
            f"(digest {bound.state_digest()} != {metadata.feature_state_digest})",
            hint="the artifact was changed after training; re-train or restore it",
        )
    return bound
