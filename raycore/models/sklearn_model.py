"""scikit-learn adapter of the Estimator protocol (also any object with sklearn's fit/predict).

The fitted object is saved with cloudpickle; classes from importable modules
(``raycore.models.custom.*``, sklearn) are stored by reference, so loading
needs the same code. A JSON file next to it records the task, the feature
names and the scikit-learn version (a mismatch at load time logs a warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import sklearn

from raycore.errors import DataError
from raycore.models.adapter import AdapterMeta, output_kind, select_features, shape_output

__all__ = ["SklearnEstimator"]

MODEL_FILE = "sklearn_model.pkl"


class SklearnEstimator:
    """A fitted scikit-learn style estimator behind the Estimator protocol.

    ``binary`` predicts ``predict_proba[:, 1]`` (or ``predict`` when the estimator
    has no probabilities), ``multiclass``/``text_classification`` the probability
    matrix over classes ``0..n_classes-1``; every other task returns ``predict``.
    The feature frame is passed through unchanged (text columns stay text).

    Example:
        >>> from sklearn.linear_model import Ridge
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
        >>> est = SklearnEstimator(Ridge(alpha=0.0).fit(frame, [1.0, 3.0, 5.0]), feature_names=["x"])
        >>> est.predict(pd.DataFrame({"x": [3.0]})).round(6).tolist()
        [7.0]
    """

    family = "sklearn"

    def __init__(
        self,
        model: Any,
        *,
        feature_names: list[str],
        task: str = "regression",
        n_classes: int | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(getattr(model, "predict", None)):
            raise DataError(
                f"{type(model).__name__} has no predict() method",
                hint="an sklearn-family estimator needs fit(X, y) and predict(X)",
            )
        self.model = model
        self.feature_names = list(feature_names)
        self.task = task
        self.n_classes = n_classes
        self.name = name or type(model).__name__

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        frame = select_features(features, self.feature_names)
        kind = output_kind(self.task)
        has_proba = callable(getattr(self.model, "predict_proba", None))
        if kind == "probability":
            if has_proba:
                return shape_output(
                    self._class_probabilities(frame, 2)[:, 1], task=self.task, n_classes=None
                )
            return shape_output(self.model.predict(frame), task=self.task, n_classes=None)
        if kind == "probabilities":
            if self.n_classes is None:
                raise DataError(
                    f"a {self.task} sklearn model needs n_classes",
                    hint="re-train with n_classes set",
                )
            if has_proba:
                proba = self._class_probabilities(frame, self.n_classes)
            else:
                # A classifier without probabilities: one-hot of its predicted class.
                labels = np.asarray(self.model.predict(frame)).astype(int)
                proba = np.eye(self.n_classes)[labels]
            return shape_output(proba, task=self.task, n_classes=self.n_classes)
        return np.asarray(self.model.predict(frame))

    def _class_probabilities(self, frame: pd.DataFrame, n_classes: int) -> np.ndarray:
        """``predict_proba`` laid out over classes ``0..n_classes-1`` (``classes_`` may be a subset)."""
        proba = np.asarray(self.model.predict_proba(frame), dtype="float64")
        classes = getattr(self.model, "classes_", None)
        if classes is None or (
            len(classes) == n_classes and np.array_equal(classes, np.arange(n_classes))
        ):
            return proba
        full = np.zeros((proba.shape[0], n_classes))
        full[:, np.asarray(classes).astype(int)] = proba
        return full

    def save(self, folder: Path) -> None:
        (folder / MODEL_FILE).write_bytes(cloudpickle.dumps(self.model))
        AdapterMeta(
            family=self.family,
            task=self.task,
            n_classes=self.n_classes,
            feature_names=self.feature_names,
            library_version=sklearn.__version__,
            extra={
                "estimator": self.name,
                "class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            },
        ).write(folder)

    @classmethod
    def load(cls, folder: Path) -> SklearnEstimator:
        path = folder / MODEL_FILE
        meta = AdapterMeta.read(folder, family=cls.family, current_version=sklearn.__version__)
        if not path.is_file() or meta is None:
            raise DataError(
                f"no sklearn model and metadata in {folder}",
                hint="the bundle is incomplete; re-train",
            )
        try:
            model = cloudpickle.loads(path.read_bytes())
        except (ImportError, AttributeError) as exc:
            raise DataError(
                f"cannot load the sklearn model in {folder}: {exc}",
                hint=f"the estimator class {meta.extra.get('class')} must be importable; re-train with current code",
            ) from exc
        return cls(
            model,
            feature_names=meta.feature_names,
            task=meta.task,
            n_classes=meta.n_classes,
            name=meta.extra.get("estimator"),
        )
