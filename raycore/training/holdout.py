"""Cutting the evaluation holdout: by time (never a random split where time matters)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.specs import HoldoutSpec

__all__ = ["split_holdout"]


def split_holdout(rows: pd.DataFrame, spec: HoldoutSpec, *, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) by the spec; a time holdout takes the latest time values.

    Example:
        >>> df = pd.DataFrame({"t": [1, 1, 2, 3], "y": [0, 1, 2, 3]})
        >>> tr, ho = split_holdout(df, HoldoutSpec(time_column="t", last_periods=1))
        >>> list(ho["t"])
        [3]
    """
    if spec.kind == "random":
        rng = np.random.default_rng(seed)
        mask = rng.random(len(rows)) < (spec.fraction or 0.2)
    else:
        col = spec.time_column
        assert col is not None
        if col not in rows.columns:
            raise DataError(
                f"holdout time column '{col}' is not in the data",
                hint=f"set holdout.time_column to one of: {', '.join(rows.columns)}",
            )
        times = np.sort(rows[col].unique())
        if spec.last_periods is not None:
            if spec.last_periods >= len(times):
                raise DataError(
                    f"holdout.last_periods={spec.last_periods} leaves no training data ({len(times)} time values)",
                    hint="lower holdout.last_periods",
                )
            cutoff = times[-spec.last_periods]
        else:
            cutoff = times[int(len(times) * (1 - (spec.fraction or 0.2)))]
        mask = (rows[col] >= cutoff).to_numpy()
    train, holdout = rows[~mask], rows[mask]
    if train.empty or holdout.empty:
        raise DataError(
            f"holdout split left {len(train)} training and {len(holdout)} holdout rows",
            hint="check the holdout settings against the data's time range",
        )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
