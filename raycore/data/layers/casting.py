"""Typing raw bronze columns into the declared dtypes, vectorised.

Each column is first cast with arrow (fast, all-or-nothing). Only if that fails
does the column take the pandas path, which parses value by value and marks the
values it cannot parse; the pandas path is the definition, the arrow path a
shortcut that accepts a subset of it with equal results.

    dtype     accepts                                      silver dtype (nullable)
    int       integers, integral numbers ("12", "12.0")    int64 (Int64)
    float     numbers                                      float64
    str       anything, as text                            object
    bool      true/false, t/f, yes/no, y/n, 1/0            bool (boolean)
    datetime  ISO 8601; offsets are converted to UTC       datetime64[ns]
    date      ISO 8601 dates (a time of day other than 0)  datetime64[ns] (midnight)

Example:
    >>> import pyarrow as pa
    >>> from raycore.specs import ColumnSpec
    >>> typed = cast_column(pa.chunked_array([["1", "x", None]]), ColumnSpec(name="a", dtype="int", nullable=True))
    >>> typed.unparseable.tolist()
    [False, True, False]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from raycore.specs.dataset import ColumnSpec

__all__ = ["ARROW_TYPES", "TypedColumn", "cast_column", "silver_series"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("ns"),
    "date": pa.timestamp("ns"),
}
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_INT64_LIMIT = 2.0**63


@dataclass(frozen=True)
class TypedColumn:
    """A column after typing.

    ``values`` holds the typed values (null where missing or unparseable);
    ``missing`` marks raw nulls; ``unparseable`` marks raw values that could not
    be read as the declared dtype.
    """

    values: pd.Series
    missing: np.ndarray
    unparseable: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return ~(self.missing | self.unparseable)


def _raw_missing(raw: pa.ChunkedArray) -> np.ndarray:
    missing = raw.is_null()
    if pa.types.is_floating(raw.type):
        missing = pc.or_(missing, pc.fill_null(pc.is_nan(raw), False))
    return np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)


def cast_column(raw: pa.ChunkedArray, col: ColumnSpec) -> TypedColumn:
    """Type one raw column as ``col.dtype``."""
    missing = _raw_missing(raw)
    if col.dtype == "str":
        values = _to_str(raw)
        return TypedColumn(values, missing, np.zeros(len(raw), dtype=bool))
    if col.dtype == "bool":
        values = _to_bool(raw, missing)
    elif col.dtype in ("int", "float"):
        values = _to_number(raw, missing, col.dtype)
    else:
        values = _to_datetime(raw, missing, date_only=col.dtype == "date")
    unparseable = ~missing & values.isna().to_numpy()
    return TypedColumn(values, missing, unparseable)


def _fast_cast(raw: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    try:
        return pc.cast(raw, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _to_str(raw: pa.ChunkedArray) -> pd.Series:
    if not pa.types.is_string(raw.type) and not pa.types.is_large_string(raw.type):
        cast = _fast_cast(raw, pa.string())
        if cast is None:
            return raw.to_pandas().map(lambda v: None if v is None else str(v))
        raw = cast
    return raw.to_pandas()


def _to_number(raw: pa.ChunkedArray, missing: np.ndarray, dtype: str) -> pd.Series:
    target = ARROW_TYPES[dtype]
    if not pa.types.is_boolean(raw.type):
        cast = _fast_cast(raw, target)
        if cast is not None:
            if dtype == "int":
                return pd.Series(pd.arrays.IntegerArray(
                    np.asarray(pc.fill_null(cast, 0).to_numpy(zero_copy_only=False), dtype=np.int64),
                    np.asarray(cast.is_null().to_numpy(zero_copy_only=False), dtype=bool),
                ))
            values = pd.Series(np.asarray(cast.to_numpy(zero_copy_only=False), dtype=np.float64))
            return values.where(~missing, np.nan)
    # The slow path: parse value by value; what does not parse becomes NaN.
    parsed = pd.to_numeric(raw.to_pandas().where(~missing, None), errors="coerce")
    numbers = pd.Series(np.asarray(parsed, dtype=np.float64))
    if dtype == "float":
        return numbers
    ok = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (numbers.abs() < _INT64_LIMIT)
    ints = np.where(ok, numbers, 0).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(ints, ~ok.to_numpy()))


def _to_bool(raw: pa.ChunkedArray, missing: np.ndarray) -> pd.Series:
    if pa.types.is_boolean(raw.type):
        return pd.Series(raw.to_pandas(), dtype="boolean")
    text = raw.to_pandas().map(lambda v: None if v is None else str(v).strip().lower())
    out = pd.Series(pd.NA, index=text.index, dtype="boolean")
    out[text.isin(_TRUE).to_numpy()] = True
    out[text.isin(_FALSE).to_numpy()] = False
    return out


def _to_datetime(raw: pa.ChunkedArray, missing: np.ndarray, *, date_only: bool) -> pd.Series:
    t = raw.type
    values: pd.Series | None = None
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_string(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            raw = pc.cast(raw, pa.timestamp(t.unit, tz="UTC"))
            raw = pc.local_timestamp(raw)  # the UTC wall time, without a zone
        cast = _fast_cast(raw, pa.timestamp("ns"))
        if cast is not None:
            values = pd.Series(cast.to_pandas()).astype("datetime64[ns]")
    if values is None:
        text = raw.to_pandas().map(lambda v: None if v is None else str(v))
        parsed = pd.to_datetime(text.where(~missing, None), errors="coerce", utc=True, format="ISO8601")
        values = pd.Series(parsed.dt.tz_localize(None)).astype("datetime64[ns]")
    if date_only:
        values = values.where(values == values.dt.normalize())
    return values.reset_index(drop=True)


def silver_series(typed: TypedColumn, col: ColumnSpec, rows: np.ndarray) -> pd.Series:
    """The typed values of ``rows`` in the column's silver dtype.

    Non-nullable columns get plain numpy dtypes: rows that reach silver have no nulls there.
    """
    values = typed.values.iloc[rows].reset_index(drop=True)
    if col.dtype == "int":
        return values.astype("Int64") if col.nullable else values.astype(np.int64)
    if col.dtype == "bool":
        return values.astype("boolean") if col.nullable else values.astype(bool)
    if col.dtype == "float":
        return values.astype(np.float64)
    if col.dtype == "str":
        return values.astype(object)
    return values.astype("datetime64[ns]")
