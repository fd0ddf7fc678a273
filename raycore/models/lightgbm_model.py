"""LightGBM adapter of the Estimator protocol."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.models.adapter import AdapterMeta, select_features, shape_output

__all__ = ["LightGBMEstimator"]

MODEL_FILE = "lightgbm_model.txt"


class LightGBMEstimator:
    """A trained LightGBM booster behind the Estimator protocol.

    ``task`` decides the output shape (``raycore.models.adapter``): a multiclass
    booster predicts an (n, n_classes) probability matrix, a binary one P(class 1).

    Example:
        >>> est = LightGBMEstimator(booster, task="binary")   # doctest: +SKIP
        >>> est.predict(features_frame)                       # doctest: +SKIP
    """

    family = "lightgbm"

    def __init__(
        self,
        booster: lgb.Booster,
        *,
        task: str = "regression",
        n_classes: int | None = None,
        num_threads: int = 1,
    ) -> None:
        self.booster = booster
        self.feature_names = list(booster.feature_name())
        self.task = task
        self.n_classes = n_classes
        # One thread per replica: Serve scales by replicas, not by threads.
        self.num_threads = num_threads

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        frame = select_features(features, self.feature_names)
        raw = self.booster.predict(frame.to_numpy(dtype="float64"), num_threads=self.num_threads)
        return shape_output(raw, task=self.task, n_classes=self.n_classes)

    def save(self, folder: Path) -> None:
        self.booster.save_model(str(folder / MODEL_FILE))
        AdapterMeta(
            family=self.family,
            task=self.task,
            n_classes=self.n_classes,
            feature_names=self.feature_names,
            library_version=lgb.__version__,
        ).write(folder)

    @classmethod
    def load(cls, folder: Path) -> LightGBMEstimator:
        path = folder / MODEL_FILE
        if not path.is_file():
            raise DataError(
                f"no LightGBM model file at {path}", hint="the bundle is incomplete; re-train"
            )
        booster = lgb.Booster(model_file=str(path))
        # Bundles saved before the metadata file existed were all regression models.
        meta = AdapterMeta.read(folder, family=cls.family, current_version=lgb.__version__)
        if meta is None:
            return cls(booster)
        return cls(booster, task=meta.task, n_classes=meta.n_classes)
