"""The Estimator protocol every model adapter implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = ["Estimator"]


@runtime_checkable
class Estimator(Protocol):
    """A fitted model that predicts from a frame of model features."""

    family: str
    feature_names: list[str]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Predictions for each row of ``features`` (columns in ``feature_names`` order)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the model into ``folder`` (created by the caller)."""
        ...
