"""XGBoost adapter of the Estimator protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from raycore.errors import DataError
from raycore.models.adapter import AdapterMeta, select_features, shape_output

__all__ = ["XGBoostEstimator"]

MODEL_FILE = "xgboost_model.ubj"


class XGBoostEstimator:
    """A trained XGBoost booster behind the Estimator protocol.

    Train multiclass models with ``multi:softprob`` (an (n, n_classes) matrix);
    ``binary:logistic`` predicts P(class 1).

    Example:
        >>> est = XGBoostEstimator(booster, task="regression")   # doctest: +SKIP
        >>> est.predict(features_frame)                          # doctest: +SKIP
    """

    family = "xgboost"

    def __init__(
        self,
        booster: xgb.Booster,
        *,
        task: str = "regression",
        n_classes: int | None = None,
        feature_names: list[str] | None = None,
        num_threads: int = 1,
    ) -> None:
        names = feature_names or list(booster.feature_names or [])
        if not names:
            raise DataError(
                "the XGBoost booster has no feature names",
                hint="train from a DataFrame (or pass feature_names) so predictions can check their columns",
            )
        self.booster = booster
        self.feature_names = names
        self.task = task
        self.n_classes = n_classes
        # One thread per replica: Serve scales by replicas, not by threads.
        self.booster.set_param({"nthread": num_threads})

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        frame = select_features(features, self.feature_names)
        matrix = xgb.DMatrix(frame.to_numpy(dtype="float64"), feature_names=self.feature_names)
        return shape_output(self.booster.predict(matrix), task=self.task, n_classes=self.n_classes)

    def save(self, folder: Path) -> None:
        # UBJSON keeps every split and leaf value exactly; the text dump would not.
        self.booster.save_model(str(folder / MODEL_FILE))
        AdapterMeta(
            family=self.family,
            task=self.task,
            n_classes=self.n_classes,
            feature_names=self.feature_names,
            library_version=xgb.__version__,
        ).write(folder)

    @classmethod
    def load(cls, folder: Path) -> XGBoostEstimator:
        path = folder / MODEL_FILE
        meta = AdapterMeta.read(folder, family=cls.family, current_version=xgb.__version__)
        if not path.is_file() or meta is None:
            raise DataError(
                f"no XGBoost model and metadata in {folder}",
                hint="the bundle is incomplete; re-train",
            )
        booster = xgb.Booster()
        booster.load_model(str(path))
        return cls(
            booster, task=meta.task, n_classes=meta.n_classes, feature_names=meta.feature_names
        )
