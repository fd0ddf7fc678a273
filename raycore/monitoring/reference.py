"""Reference profiles: what training data looked like, kept small enough to ship with a model.

``build_reference_profile`` runs once at training time on the training feature
frame and the model's predictions on it. Per numeric column it keeps a grid of
reference quantiles (``grid_size`` + 1 edges), the reference counts in that
grid, the missing count and the standard deviation; every ``grid_size /
n_bins``-th edge is a coarse bin edge for the chi-square test, PSI and
Jensen-Shannon. Per categorical column it keeps the frequencies of the
``max_categories`` most common values plus an "other" bucket and the missing
count. The predictions are profiled like one more column. A bounded row sample
(``sample_size``) feeds Evidently's human-readable reports.

A profile saves to a folder: ``profile.json`` (names, frequencies, settings),
``arrays.npz`` (grids and counts) and ``sample.parquet``. With 50 features and
the defaults it is about 1-3 MB.

Example:
    >>> profile = build_reference_profile(features=train_x, predictions=model.predict(train_x),
    ...                                   categorical=["channel"])          # doctest: +SKIP
    >>> profile.save(Path("reference"))                                      # doctest: +SKIP
    >>> ReferenceProfile.load(Path("reference")).numeric.names               # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from raycore.errors import DataError
from raycore.monitoring.statistics import bin_columns, bin_means

__all__ = [
    "PREDICTION",
    "CategoricalProfile",
    "NumericProfile",
    "ReferenceProfile",
    "build_reference_profile",
    "infer_categorical",
    "numeric_matrix",
]

PREDICTION = "prediction"
PROFILE_FILE = "profile.json"
ARRAYS_FILE = "arrays.npz"
SAMPLE_FILE = "sample.parquet"
FORMAT_VERSION = 1
_ARRAYS = ("edges", "counts", "means", "missing", "mean", "std")
_STD_FLOOR = 0.001  # as Evidently: a constant column does not divide by zero


@dataclass(frozen=True)
class NumericProfile:
    """Reference quantile grids and counts of numeric columns, one row per column."""

    names: list[str]
    edges: np.ndarray  # (columns, grid_size + 1) reference quantiles at i / grid_size
    counts: np.ndarray  # (columns, grid_size + 2) reference counts in the grid (see bin_columns)
    means: np.ndarray  # (columns, grid_size + 2) mean reference value in each grid bin
    missing: np.ndarray  # (columns,) missing values in the reference
    mean: np.ndarray  # (columns,) reference mean
    std: np.ndarray  # (columns,) reference standard deviation, floored at 0.001

    @property
    def n_valid(self) -> np.ndarray:
        """Non-missing reference values per column."""
        return self.counts.sum(axis=1)


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference frequencies of one categorical column."""

    categories: list[str]
    counts: list[int]
    other: int  # rows whose value is not among ``categories``
    missing: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "categories": self.categories,
            "counts": self.counts,
            "other": self.other,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class ReferenceProfile:
    """The training-time picture of a model's inputs and predictions that drift checks compare against."""

    n_rows: int
    n_bins: int
    grid_size: int
    numeric: NumericProfile
    categorical: dict[str, CategoricalProfile]
    prediction_numeric: NumericProfile | None = None
    prediction_categorical: CategoricalProfile | None = None
    sample: pd.DataFrame = field(
        default_factory=pd.DataFrame
    )  # features, plus PREDICTION when given

    @property
    def feature_names(self) -> list[str]:
        """All profiled feature columns: numeric first, then categorical."""
        return [*self.numeric.names, *self.categorical]

    @property
    def has_prediction(self) -> bool:
        """True when the profile holds the reference predictions."""
        return self.prediction_numeric is not None or self.prediction_categorical is not None

    def save(self, folder: Path) -> Path:
        """Write the profile into ``folder`` (created if needed) and return the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "n_bins": self.n_bins,
            "grid_size": self.grid_size,
            "numeric": self.numeric.names,
            "categorical": {name: prof.to_dict() for name, prof in self.categorical.items()},
            "prediction": (
                "numeric"
                if self.prediction_numeric is not None
                else "categorical"
                if self.prediction_categorical is not None
                else None
            ),
            "prediction_categorical": (
                self.prediction_categorical.to_dict()
                if self.prediction_categorical is not None
                else None
            ),
        }
        (folder / PROFILE_FILE).write_text(json.dumps(meta, indent=1))
        arrays = {f"numeric_{k}": getattr(self.numeric, k) for k in _ARRAYS}
        if self.prediction_numeric is not None:
            arrays |= {f"prediction_{k}": getattr(self.prediction_numeric, k) for k in _ARRAYS}
        np.savez_compressed(folder / ARRAYS_FILE, **arrays)
        self.sample.to_parquet(folder / SAMPLE_FILE, index=False)
        return folder

    @classmethod
    def load(cls, folder: Path) -> ReferenceProfile:
        """Read a profile written by ``save``."""
        folder = Path(folder)
        path = folder / PROFILE_FILE
        if not path.is_file():
            raise DataError(
                f"no reference profile at {folder}: {PROFILE_FILE} is missing",
                hint="pass the folder that ReferenceProfile.save wrote",
            )
        meta = json.loads(path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"reference profile {folder} has format_version {meta.get('format_version')!r}, "
                f"this version reads {FORMAT_VERSION}",
                hint="rebuild the profile with build_reference_profile",
            )
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as arrays:
            numeric = NumericProfile(meta["numeric"], *(arrays[f"numeric_{k}"] for k in _ARRAYS))
            pred_num = (
                NumericProfile([PREDICTION], *(arrays[f"prediction_{k}"] for k in _ARRAYS))
                if meta["prediction"] == "numeric"
                else None
            )
        pred_cat = meta.get("prediction_categorical")
        return cls(
            n_rows=int(meta["n_rows"]),
            n_bins=int(meta["n_bins"]),
            grid_size=int(meta["grid_size"]),
            numeric=numeric,
            categorical={name: CategoricalProfile(**d) for name, d in meta["categorical"].items()},
            prediction_numeric=pred_num,
            prediction_categorical=CategoricalProfile(**pred_cat) if pred_cat else None,
            sample=pd.read_parquet(folder / SAMPLE_FILE),
        )


def infer_categorical(frame: pd.DataFrame) -> list[str]:
    """Columns to profile as categorical: string, object and category dtypes (numbers and bools are numeric).

    Example:
        >>> infer_categorical(pd.DataFrame({"n": [1.0], "s": ["a"], "b": [True]}))
        ['s']
    """
    return [
        str(c)
        for c in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        and not pd.api.types.is_datetime64_any_dtype(frame[c])
    ]


def numeric_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The named columns as one float64 (rows, columns) matrix, non-finite values as NaN.

    Raises DataError naming a column that is not numeric.
    """
    bad = [
        n
        for n in names
        if not (pd.api.types.is_numeric_dtype(frame[n]) or pd.api.types.is_bool_dtype(frame[n]))
    ]
    if bad:
        raise DataError(
            f"columns {bad} are not numeric (dtypes {[str(frame[n].dtype) for n in bad]})",
            hint="list string-valued columns in categorical=..., convert dates to numbers, or drop them",
        )
    matrix = np.empty((len(frame), len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        matrix[:, j] = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


def _profile_numeric(matrix: np.ndarray, names: list[str], grid_size: int) -> NumericProfile:
    if not names:
        bins = np.zeros((0, grid_size + 2))
        return NumericProfile(
            [],
            np.zeros((0, grid_size + 1)),
            bins.astype(np.int64),
            bins,
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0),
        )
    u = np.linspace(0.0, 1.0, grid_size + 1)
    with np.errstate(all="ignore"):
        edges = np.nanquantile(matrix, u, axis=0, method="inverted_cdf").T  # (columns, grid + 1)
        std = np.nanstd(matrix, axis=0)
        mean = np.nanmean(matrix, axis=0)
    empty = np.isnan(edges).any(axis=1)
    if empty.any():
        raise DataError(
            f"numeric columns {[n for n, e in zip(names, empty, strict=True) if e]} have no values in the reference",
            hint="drop all-missing columns before profiling",
        )
    edges = np.ascontiguousarray(edges)
    counts, sums, missing = bin_columns(matrix, edges)
    return NumericProfile(
        names=names,
        edges=edges,
        counts=counts,
        means=bin_means(counts, sums),
        missing=missing,
        mean=mean,
        std=np.maximum(np.nan_to_num(std), _STD_FLOOR),
    )


def _profile_categorical(column: pd.Series, max_categories: int) -> CategoricalProfile:
    values = column.dropna().astype(str)
    freq = values.value_counts()
    top = freq.iloc[:max_categories]
    return CategoricalProfile(
        categories=[str(c) for c in top.index],
        counts=[int(c) for c in top.to_numpy()],
        other=int(freq.iloc[max_categories:].sum()),
        missing=int(column.isna().sum()),
    )


def _prediction_series(predictions: ArrayLike, n_rows: int) -> pd.Series:
    array = np.asarray(predictions)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"predictions must be one value per row, got shape {array.shape}",
            hint="pass the predicted label, value or positive-class probability (one column)",
        )
    if array.shape[0] != n_rows:
        raise DataError(
            f"predictions have {array.shape[0]} rows but the features have {n_rows}",
            hint="predict on the same rows that are profiled",
        )
    return pd.Series(array, name=PREDICTION)


def build_reference_profile(
    *,
    features: pd.DataFrame,
    predictions: ArrayLike | None,
    categorical: list[str],
    n_bins: int = 20,
    grid_size: int = 1000,
    sample_size: int = 5000,
    max_categories: int = 50,
    seed: int = 0,
) -> ReferenceProfile:
    """Profile the training feature frame and the model's predictions on it.

    Every column of ``features`` is profiled: those named in ``categorical``
    by frequency, all others must be numeric (bool counts as numeric).
    ``predictions`` (one value per row, or None) are profiled as numeric when
    their dtype is numeric, else as categorical.

    Example:
        >>> import numpy as np, pandas as pd
        >>> x = pd.DataFrame({"a": np.arange(1000.0), "c": ["u", "v"] * 500})
        >>> p = build_reference_profile(features=x, predictions=x["a"] * 2, categorical=["c"])
        >>> p.numeric.names, sorted(p.categorical), p.has_prediction
        (['a'], ['c'], True)
    """
    if not isinstance(features, pd.DataFrame) or features.empty or len(features.columns) == 0:
        raise DataError(
            "features must be a non-empty pandas DataFrame", hint="pass the training feature frame"
        )
    unknown = [c for c in categorical if c not in features.columns]
    if unknown:
        raise DataError(
            f"categorical columns {unknown} are not in the features (columns: {list(features.columns)})",
            hint="name only columns of the feature frame in categorical=",
        )
    if n_bins < 2 or grid_size < n_bins or grid_size % n_bins:
        raise DataError(
            f"grid_size ({grid_size}) must be a multiple of n_bins ({n_bins}) and n_bins >= 2",
            hint="e.g. n_bins=20, grid_size=1000",
        )
    if sample_size < 1 or max_categories < 1:
        raise DataError(
            f"sample_size ({sample_size}) and max_categories ({max_categories}) must be >= 1",
            hint="use the defaults unless the profile is too large",
        )
    if PREDICTION in features.columns and predictions is not None:
        raise DataError(
            f"the features have a column named {PREDICTION!r}, the name the profile gives the predictions",
            hint="rename that feature column",
        )
    names = [str(c) for c in features.columns if c not in set(categorical)]
    numeric = _profile_numeric(numeric_matrix(features, names), names, grid_size)
    cats = {str(c): _profile_categorical(features[c], max_categories) for c in categorical}

    pred_num: NumericProfile | None = None
    pred_cat: CategoricalProfile | None = None
    sample = features.reset_index(drop=True)
    if predictions is not None:
        series = _prediction_series(predictions, len(features))
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            pred_num = _profile_numeric(
                numeric_matrix(series.to_frame(), [PREDICTION]), [PREDICTION], grid_size
            )
        else:
            pred_cat = _profile_categorical(series, max_categories)
        sample = sample.assign(**{PREDICTION: series.to_numpy()})
    if len(sample) > sample_size:
        rows = np.sort(
            np.random.default_rng(seed).choice(len(sample), size=sample_size, replace=False)
        )
        sample = sample.iloc[rows].reset_index(drop=True)
    return ReferenceProfile(
        n_rows=len(features),
        n_bins=n_bins,
        grid_size=grid_size,
        numeric=numeric,
        categorical=cats,
        prediction_numeric=pred_num,
        prediction_categorical=pred_cat,
        sample=sample,
    )
