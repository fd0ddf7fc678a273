"""LightGBM adapter of the Estimator protocol."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from raycore.errors import DataError

__all__ = ["LightGBMEstimator"]

MODEL_FILE = "lightgbm_model.txt"


class LightGBMEstimator:
    """A trained LightGBM booster behind the Estimator protocol.

    Example:
        >>> est = LightGBMEstimator(booster)          # doctest: +SKIP
        >>> est.predict(features_frame)               # doctest: +SKIP
    """

    family = "lightgbm"

    def __init__(self, booster: lgb.Booster, *, num_threads: int = 1) -> None:
        self.booster = booster
        self.feature_names = list(booster.feature_name())
        # One thread per replica: Serve scales by replicas, not by threads.
        self.num_threads = num_threads

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        if list(features.columns) != self.feature_names:
            missing = [c for c in self.feature_names if c not in features.columns]
            if missing:
                raise DataError(
                    f"features missing for the model: {', '.join(missing)}",
                    hint="compute features with the model's feature view",
                )
            features = features.loc[:, self.feature_names]
        return np.asarray(
            self.booster.predict(features.to_numpy(dtype="float64"), num_threads=self.num_threads)
        )

    def save(self, folder: Path) -> None:
        self.booster.save_model(str(folder / MODEL_FILE))

    @classmethod
    def load(cls, folder: Path) -> LightGBMEstimator:
        path = folder / MODEL_FILE
        if not path.is_file():
            raise DataError(f"no LightGBM model file at {path}", hint="the bundle is incomplete; re-train")
        return cls(lgb.Booster(model_file=str(path)))
