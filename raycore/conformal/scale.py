"""The learnt scale sigma(x) of normalised regression intervals: a small LightGBM on |residual|.

Normalised split conformal divides each calibration residual by sigma(x) and
serves ``y_hat ± q · sigma(x)``: wide where the model is often wrong, narrow where it
is reliable. sigma is fitted on the inner training rows only (never on the
calibration rows, which would break the guarantee), from the model's
features plus its prediction ``y_hat`` (for multiplicative noise) to the absolute
residual of the inner model on those rows. In-sample residuals are smaller
than fresh ones; that only rescales sigma, and the conformal quantile on the
calibration rows absorbs any constant factor.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = pd.DataFrame({"x": rng.uniform(0, 1, 2000)})
    >>> model = ScaleModel.fit(features=x, prediction=np.zeros(2000), abs_residual=np.abs(rng.normal(0, x["x"] + 0.1)))
    >>> bool(model.predict(features=pd.DataFrame({"x": [0.9]}), prediction=np.zeros(1))[0]
    ...      > model.predict(features=pd.DataFrame({"x": [0.1]}), prediction=np.zeros(1))[0])
    True
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from raycore.conformal.scores import ConformalError

__all__ = ["ScaleModel"]

PREDICTION_COLUMN = "__prediction__"
_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "seed": 7,
    "deterministic": True,
    "verbose": -1,
}
_ROUNDS = 150


def _numeric(
    features: pd.DataFrame, prediction: np.ndarray, columns: list[str] | None
) -> pd.DataFrame:
    """The numeric model features (text and categories dropped) plus the prediction, as float64."""
    if columns is None:
        keep = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    else:
        missing = [c for c in columns if c != PREDICTION_COLUMN and c not in features.columns]
        if missing:
            raise ConformalError(
                f"the scale model needs feature(s) {', '.join(missing)}",
                hint="pass the frame the model's feature view computes for these rows",
            )
        keep = [c for c in columns if c != PREDICTION_COLUMN]
    frame = features.loc[:, keep].astype("float64")
    frame[PREDICTION_COLUMN] = np.asarray(prediction, dtype="float64")
    return frame


class ScaleModel:
    """sigma(x) >= ``floor`` > 0 from a LightGBM fitted on absolute residuals."""

    def __init__(self, booster: lgb.Booster, *, columns: list[str], floor: float) -> None:
        self.booster = booster
        self.columns = columns
        self.floor = float(floor)

    @classmethod
    def fit(
        cls, *, features: pd.DataFrame, prediction: np.ndarray, abs_residual: np.ndarray
    ) -> ScaleModel:
        """Fit sigma on (features, y_hat) → |y - y_hat|; the floor is 5% of the mean residual (sigma never 0)."""
        target = np.asarray(abs_residual, dtype="float64")
        if target.shape != (len(features),):
            raise ConformalError(
                f"{len(features)} feature rows but {target.shape} residuals",
                hint="one residual per row",
            )
        frame = _numeric(features, prediction, None)
        mean = float(np.mean(target)) if target.size else 0.0
        floor = max(0.05 * mean, 1e-12)
        booster = lgb.train(
            _PARAMS,
            lgb.Dataset(frame.to_numpy(), label=target, free_raw_data=True),
            num_boost_round=_ROUNDS,
        )
        return cls(booster, columns=list(frame.columns), floor=floor)

    def predict(self, *, features: pd.DataFrame, prediction: np.ndarray) -> np.ndarray:
        """sigma(x) per row, at least the floor."""
        frame = _numeric(features, prediction, self.columns)
        sigma = self.booster.predict(frame.to_numpy(), num_threads=1)
        return np.maximum(np.asarray(sigma, dtype="float64"), self.floor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "floor": self.floor,
            "booster": self.booster.model_to_string(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScaleModel:
        booster = lgb.Booster(model_str=data["booster"])
        return cls(booster, columns=list(data["columns"]), floor=float(data["floor"]))
