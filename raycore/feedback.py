"""Labels that arrive after the answer: recorded per model, joined to logged predictions.

A label is keyed by the request id the foundry returned with the prediction
and the row's position in that request (``row``, 0 for single-row requests).
Files are append-only parquet under ``$FOUNDRY_HOME/labels/<model>/``; the
latest label wins when a (request, row) is labelled twice.

Example:
    >>> record_labels(home=home, model="churn_risk",
    ...               labels=pd.DataFrame({"request_id": ["r1"], "label": [1]}))   # doctest: +SKIP
    >>> join_labels(read_prediction_log(home=home, model="churn_risk"),
    ...             read_labels(home=home, model="churn_risk"))                      # doctest: +SKIP
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from raycore.errors import DataError

__all__ = ["LABELS_DIR", "count_labels_since", "join_labels", "read_labels", "record_labels"]

LABELS_DIR = "labels"
_KEY = ["request_id", "row"]


def record_labels(*, home: Path, model: str, labels: pd.DataFrame) -> Path:
    """Append late-arriving labels (``request_id``, ``label``, optional ``row``) for a model."""
    missing = [c for c in ("request_id", "label") if c not in labels.columns]
    if missing:
        raise DataError(
            f"labels need the column(s) {', '.join(missing)}; got {', '.join(map(str, labels.columns))}",
            hint="one row per answered row: its request_id (from the prediction response), row (default 0), label",
        )
    frame = labels.assign(row=labels["row"] if "row" in labels.columns else 0)[[*_KEY, "label"]]
    if frame.isna().any().any():
        raise DataError(
            "labels contain empty request_id, row or label values",
            hint="drop rows whose label is unknown",
        )
    try:
        frame = frame.astype({"request_id": "string", "row": "int64"})
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"label rows must be whole numbers: {exc}",
            hint="row is the row's position in its request",
        ) from exc
    folder = Path(home) / LABELS_DIR / model
    folder.mkdir(parents=True, exist_ok=True)
    # Names sort in write order (nanosecond clock first), so "latest wins" holds on read.
    path = folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    frame.to_parquet(path, index=False)
    return path


def read_labels(*, home: Path, model: str) -> pd.DataFrame:
    """Every label recorded for ``model``: request_id, row, label (latest wins)."""
    folder = Path(home) / LABELS_DIR / model
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pd.DataFrame(
            {
                "request_id": pd.Series(dtype="string"),
                "row": pd.Series(dtype="int64"),
                "label": pd.Series(dtype="float64"),
            }
        )
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if "row" not in frame.columns:
        frame["row"] = 0
    frame = frame.astype({"request_id": "string", "row": "int64"})
    return frame.drop_duplicates(subset=_KEY, keep="last").reset_index(drop=True)


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Logged predictions (one row per predicted row, in request order) that have a label."""
    if predictions.empty or labels.empty:
        return predictions.iloc[0:0].assign(
            row=pd.Series(dtype="int64"), label=pd.Series(dtype="float64")
        )
    rows = predictions.assign(request_id=predictions["request_id"].astype("string"))
    rows = rows.assign(row=rows.groupby("request_id", sort=False).cumcount().astype("int64"))
    return rows.merge(labels, on=_KEY, how="inner")


def count_labels_since(*, home: Path, model: str, since: datetime | None) -> int:
    """Label rows recorded for ``model`` after ``since`` (all of them when ``since`` is None)."""
    folder = Path(home) / LABELS_DIR / model
    if not folder.is_dir():
        return 0
    cutoff = 0 if since is None else int(since.timestamp() * 1e9)
    total = 0
    for path in folder.glob("*.parquet"):
        written = int(path.name.split("-", 1)[0]) if path.name.split("-", 1)[0].isdigit() else 0
        if written > cutoff:
            total += pq.ParquetFile(path).metadata.num_rows
    return total
