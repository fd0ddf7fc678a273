"""Feature views: declared once, computed by one function in training and in serving.

A view names its raw inputs (the fields a serving request carries, typed and
bounded), and one ``transform`` that turns raw inputs into model features. The
training set builder produces the same raw inputs from history, then calls the
same ``compute``; the Serve replica validates a request into raw inputs and
calls the same ``compute``. There is no second code path to drift apart.

Example:
    >>> from raycore.features import get_feature_view
    >>> view = get_feature_view("store_sales_lags")
    >>> features = view.compute(raw_inputs_frame)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from raycore.errors import DataError

__all__ = ["FeatureView", "InputField"]

Dtype = Literal["int", "float", "date"]


@dataclass(frozen=True)
class InputField:
    """One raw input of a feature view, as a request carries it."""

    name: str
    dtype: Dtype
    description: str
    ge: float | None = None
    le: float | None = None

    def as_schema(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class FeatureView:
    """A named, versioned set of features over raw inputs.

    ``training_rows`` builds raw inputs plus the label from a history table
    (training only: a serving request carries the raw inputs itself).
    ``transform`` maps a frame of raw inputs to a frame holding at least
    ``feature_names``. ``scale_column`` optionally names a raw input by which
    the label is divided for training and the prediction multiplied at serving
    (a level normalisation shared by both paths).
    """

    name: str
    version: int
    entity: tuple[str, ...]
    time_column: str
    inputs: tuple[InputField, ...]
    feature_names: tuple[str, ...]
    transform: Callable[[pd.DataFrame], pd.DataFrame]
    scale_column: str | None = None
    description: str = ""
    categorical: tuple[str, ...] = field(default_factory=tuple)
    training_rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    def coerce_inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw inputs in declared order and dtypes; a missing column raises DataError."""
        missing = [n for n in self.input_names if n not in frame.columns]
        if missing:
            raise DataError(
                f"feature view '{self.name}' is missing raw input(s): {', '.join(missing)}",
                hint=f"provide every input of the view: {', '.join(self.input_names)}",
            )
        out = {}
        for f in self.inputs:
            col = frame[f.name]
            if f.dtype == "date":
                out[f.name] = pd.to_datetime(col).astype("datetime64[ns]")
            elif f.dtype == "int":
                out[f.name] = col.astype("int64")
            else:
                out[f.name] = col.astype("float64")
        return pd.DataFrame(out, index=frame.index)

    def compute(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model features from raw inputs: the one code path of training and serving."""
        raw = self.coerce_inputs(frame)
        features = self.transform(raw)
        absent = [n for n in self.feature_names if n not in features.columns]
        if absent:
            raise DataError(
                f"transform of view '{self.name}' did not produce: {', '.join(absent)}",
                hint="fix the view's transform or its feature_names",
            )
        return features.loc[:, list(self.feature_names)]

    def scale(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The per-row label scale, or None if the view does not normalise the label."""
        if self.scale_column is None:
            return None
        return self.coerce_inputs(frame)[self.scale_column].to_numpy(dtype="float64")

    def digest(self) -> str:
        """A digest of the view's definition, including the transform's source code."""
        h = hashlib.sha256()
        h.update(f"{self.name}:{self.version}:{self.entity}:{self.time_column}".encode())
        h.update(repr([f.as_schema() for f in self.inputs]).encode())
        h.update(repr(self.feature_names).encode())
        h.update(repr(self.scale_column).encode())
        try:
            h.update(inspect.getsource(self.transform).encode())
        except (OSError, TypeError):  # pragma: no cover - built-in or dynamic transform
            h.update(repr(self.transform).encode())
        return h.hexdigest()[:16]

    def input_schema(self) -> list[dict[str, Any]]:
        """The raw input schema as plain dicts (stored with the model bundle)."""
        return [f.as_schema() for f in self.inputs]
