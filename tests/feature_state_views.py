"""A feature view with fitted state for the tests: a robust scaler and a learned purpose vocabulary.

Declared as data in ``tests/data/features/credit_scaled.yaml``; the functions
it names live here. ``fit`` sees the training rows only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SCALED = ("annual_income", "loan_amount", "debt_to_income")


def fit(raw: pd.DataFrame) -> dict[str, Any]:
    """Median and IQR per scaled input; the purposes seen in training, with their shares."""
    scale = {}
    for col in SCALED:
        values = raw[col].to_numpy(dtype="float64")
        q1, median, q3 = np.nanpercentile(values, [25, 50, 75])
        scale[col] = {"median": float(median), "iqr": float(max(q3 - q1, 1e-9))}
    shares = raw["loan_purpose"].value_counts(normalize=True).sort_index()
    return {"scale": scale, "purposes": {str(k): float(v) for k, v in shares.items()}}


def transform(raw: pd.DataFrame, state: Mapping[str, Any]) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    for col in SCALED:
        s = state["scale"][col]
        out[f"{col}_scaled"] = (raw[col].to_numpy(dtype="float64") - s["median"]) / s["iqr"]
    vocabulary = list(state["purposes"])
    out["purpose_code"] = pd.Categorical(raw["loan_purpose"], categories=vocabulary).codes.astype(
        "float64"
    )
    out["purpose_share"] = raw["loan_purpose"].map(state["purposes"]).fillna(0.0).astype("float64")
    out["term_60"] = (raw["loan_term_months"].to_numpy() == 60).astype("float64")
    return out
