"""Real-world mess for business tables: the raw source as it would arrive.

Each business table declares its mess as a module constant ``MessRates`` next to
its generator (for example ``ORDERS_MESS`` in ``customers.py``); the rates are
the documentation. Truth tables are never messed.

Kinds of mess and how they are drawn (every draw is an independent Bernoulli
per row or per cell; each step draws one fixed-width block of uniforms per row
from a stream of its own, so a change in the number of rows after a drift
start never changes the mess of earlier rows):

    missing           cell set to null (NaN / None / NaT) in the listed columns
    outlier           amount multiplied by U(OUTLIER_FACTOR) (fat right tail)
    malformed         numeric: sign flipped or sentinel MALFORMED_SENTINEL;
                      string: upper-cased and padded (" MALL "); time: 1970-01-01
    unknown_category  string replaced by one of UNKNOWN_TOKENS
    late              available_at = event time + usual lag + U(LATE_DAYS) days
    duplicate         row re-sent: an exact copy (same id) that becomes available
                      U(0, 48) hours after the original

``available_at`` is always ``event time + base lag + U(0, jitter)`` (6 hours unless a table says
otherwise) for rows that
are not late, so a point-in-time join can use it on every table with an event time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from raycore.data.world.config import WorldConfig, domain_rng

__all__ = [
    "LATE_DAYS",
    "MALFORMED_SENTINEL",
    "OUTLIER_FACTOR",
    "UNKNOWN_TOKENS",
    "MessRates",
    "add_available_at",
    "add_duplicates",
    "add_malformed",
    "add_missing",
    "add_outliers",
    "add_unknown_categories",
    "make_messy",
]

UNKNOWN_TOKENS = ("unknown", "N/A", "other")
MALFORMED_SENTINEL = 999_999.0
OUTLIER_FACTOR = (8.0, 40.0)
LATE_DAYS = (1.0, 21.0)
EPOCH = np.datetime64("1970-01-01", "ns")


@dataclass(frozen=True)
class MessRates:
    """Documented rates of each kind of mess in one business table (shares of rows or cells)."""

    missing: float = 0.0
    outlier: float = 0.0
    malformed: float = 0.0
    unknown_category: float = 0.0
    late: float = 0.0
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value <= 0.05:
                raise ValueError(f"mess rate {name} ({value}) must be within [0, 0.05]")


def _stream(config: WorldConfig, table: str, step: str) -> np.random.Generator:
    return domain_rng(config, f"mess/{table}/{step}")


def add_missing(
    frame: pd.DataFrame, *, config: WorldConfig, table: str, columns: Sequence[str], rate: float
) -> pd.DataFrame:
    """Set a ``rate`` share of cells of each listed column to null."""
    out = frame.copy()
    for column in columns:
        mask = _stream(config, table, f"missing/{column}").random(len(out)) < rate
        values = out[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            out.loc[mask, column] = pd.NaT
        elif values.dtype == object:
            out.loc[mask, column] = None
        else:
            out[column] = values.astype("float64").mask(mask)
    return out


def add_outliers(
    frame: pd.DataFrame, *, config: WorldConfig, table: str, column: str, rate: float
) -> pd.DataFrame:
    """Multiply a ``rate`` share of amounts by a factor in ``OUTLIER_FACTOR``."""
    out = frame.copy()
    draws = _stream(config, table, f"outlier/{column}").random((len(out), 2))
    factor = OUTLIER_FACTOR[0] + (OUTLIER_FACTOR[1] - OUTLIER_FACTOR[0]) * draws[:, 1]
    mask = draws[:, 0] < rate
    out.loc[mask, column] = out.loc[mask, column] * factor[mask]
    return out


def add_malformed(
    frame: pd.DataFrame, *, config: WorldConfig, table: str, column: str, rate: float
) -> pd.DataFrame:
    """Corrupt a ``rate`` share of values the way broken exports do (see module docstring)."""
    out = frame.copy()
    draws = _stream(config, table, f"malformed/{column}").random((len(out), 2))
    flip = draws[:, 1] < 0.5
    mask = draws[:, 0] < rate
    values = out[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        out.loc[mask, column] = EPOCH
    elif pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_integer_dtype(values):
            out[column] = values.astype("float64")
        v = out[column].to_numpy(dtype="float64", copy=True)
        v[mask & flip] = -np.abs(v[mask & flip]) - 1.0
        v[mask & ~flip] = MALFORMED_SENTINEL
        out[column] = v
    else:
        s = values.astype(object).to_numpy(copy=True)
        s[mask] = np.array([f" {str(x).upper()} " for x in s[mask]], dtype=object)
        out[column] = s
    return out


def add_unknown_categories(
    frame: pd.DataFrame, *, config: WorldConfig, table: str, column: str, rate: float
) -> pd.DataFrame:
    """Replace a ``rate`` share of a categorical column by tokens the dimension does not know."""
    out = frame.copy()
    draws = _stream(config, table, f"unknown/{column}").random((len(out), 2))
    token = (draws[:, 1] * len(UNKNOWN_TOKENS)).astype(np.int64)
    mask = draws[:, 0] < rate
    s = out[column].astype(object).to_numpy(copy=True)
    s[mask] = np.asarray(UNKNOWN_TOKENS, dtype=object)[token[mask]]
    out[column] = s
    return out


def add_available_at(
    frame: pd.DataFrame,
    *,
    config: WorldConfig,
    table: str,
    event_column: str,
    rate: float,
    base_lag: pd.Timedelta,
    jitter: pd.Timedelta = pd.Timedelta(hours=6),
) -> pd.DataFrame:
    """Add ``available_at``: event + ``base_lag`` + U(0, jitter), and U(LATE_DAYS) days more on a ``rate`` share."""
    out = frame.copy()
    draws = _stream(config, table, "late").random((len(out), 3))
    jitter_s = jitter.total_seconds() * draws[:, 0]
    late = draws[:, 1] < rate
    extra = (LATE_DAYS[0] + (LATE_DAYS[1] - LATE_DAYS[0]) * draws[:, 2]) * 86400.0 * late
    seconds = np.round(jitter_s + extra).astype("int64")
    event = pd.to_datetime(out[event_column]).to_numpy(dtype="datetime64[ns]")
    out["available_at"] = (
        event
        + base_lag.to_timedelta64()
        + seconds.astype("timedelta64[s]").astype("timedelta64[ns]")
    )
    return out


def add_duplicates(
    frame: pd.DataFrame, *, config: WorldConfig, table: str, rate: float
) -> pd.DataFrame:
    """Re-send a ``rate`` share of rows; each copy sits right after its original."""
    n = len(frame)
    draws = _stream(config, table, "duplicate").random((n, 2))
    mask = draws[:, 0] < rate
    delay = 48 * 3600.0 * draws[:, 1]
    dup = frame.loc[mask].copy()
    if "available_at" in dup.columns:
        dup["available_at"] = dup["available_at"] + pd.to_timedelta(np.round(delay[mask]), unit="s")
    order = np.concatenate([np.arange(n, dtype="float64"), np.flatnonzero(mask) + 0.5])
    out = pd.concat([frame, dup], ignore_index=True)
    return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def make_messy(
    frame: pd.DataFrame,
    *,
    config: WorldConfig,
    table: str,
    rates: MessRates,
    event_column: str | None,
    base_lag: pd.Timedelta = pd.Timedelta(0),
    jitter: pd.Timedelta = pd.Timedelta(hours=6),
    missing: Sequence[str] = (),
    outlier: Sequence[str] = (),
    malformed: Sequence[str] = (),
    unknown: Sequence[str] = (),
) -> pd.DataFrame:
    """Apply every kind of mess of ``rates`` to the listed columns, in a fixed order.

    Example:
        >>> messy = make_messy(df, config=cfg, table="orders", rates=ORDERS_MESS,  # doctest: +SKIP
        ...                    event_column="ordered_at", missing=["category"])
    """
    out = frame
    for column in outlier:
        out = add_outliers(out, config=config, table=table, column=column, rate=rates.outlier)
    for column in malformed:
        out = add_malformed(out, config=config, table=table, column=column, rate=rates.malformed)
    if missing:
        out = add_missing(out, config=config, table=table, columns=missing, rate=rates.missing)
    for column in unknown:
        out = add_unknown_categories(
            out, config=config, table=table, column=column, rate=rates.unknown_category
        )
    if event_column is not None:
        out = add_available_at(
            out,
            config=config,
            table=table,
            event_column=event_column,
            rate=rates.late,
            base_lag=base_lag,
            jitter=jitter,
        )
    if rates.duplicate > 0:
        out = add_duplicates(out, config=config, table=table, rate=rates.duplicate)
    return out
