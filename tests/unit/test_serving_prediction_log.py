"""The prediction log without Ray: appends never block or fail, files land where readers look, reads filter by time."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.errors import ConfigurationError
from raycore.serving.prediction_log import PredictionLog, read_prediction_log


def test_rows_written_in_the_background_and_read_back(tmp_path: Path) -> None:
    log = PredictionLog(home=tmp_path, replica="rep/1", flush_rows=1000, flush_interval_s=0.1)
    records = [{"store_id": 3, "week_start": dt.date(2026, 3, 2), "on_promo": 1}]
    frame = pd.DataFrame(
        {"store_id": [4, 5], "week_start": [dt.date(2026, 3, 9)] * 2, "on_promo": [0, 1]}
    )
    assert log.append(model="sales", version="1", alias="champion", route="simple", request_id="a",
                      latency_ms=1.5, rows=records, values=np.array([100.0]))  # fmt: skip
    assert log.append(model="sales", version="2", alias="champion", route="oip", request_id="b",
                      latency_ms=2.5, rows=frame, values=np.array([200.0, 300.0]))  # fmt: skip
    deadline = time.monotonic() + 10
    while log.written < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.written == 3  # flushed by the timer, no close needed
    day = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    files = list((tmp_path / "predictions" / "sales" / f"date={day}").glob("*.parquet"))
    assert files and all(f.name.startswith("rep_1-") for f in files)
    got = read_prediction_log(home=tmp_path, model="sales")
    assert got["request_id"].tolist() == ["a", "b", "b"]
    assert got["version"].tolist() == ["1", "2", "2"] and got["route"].tolist() == [
        "simple",
        "oip",
        "oip",
    ]
    assert got["in_store_id"].tolist() == [3, 4, 5] and got["out_prediction"].tolist() == [
        100.0,
        200.0,
        300.0,
    ]
    assert got["latency_ms"].tolist() == [1.5, 2.5, 2.5] and (got["alias"] == "champion").all()
    assert str(got["ts"].dt.tz) == "UTC"
    log.close()


def test_classifier_probabilities_get_one_column_per_class(tmp_path: Path) -> None:
    log = PredictionLog(home=tmp_path, replica="r")
    proba = pd.DataFrame({"low": [0.7, 0.1], "high": [0.3, 0.9]})
    log.append(model="risk", version="4", alias="champion", route="oip", request_id="x", latency_ms=1.0,
               rows=[{"a": 1}, {"a": 2}], values=np.array(["low", "high"], dtype=object), probabilities=proba)  # fmt: skip
    log.close()
    got = read_prediction_log(home=tmp_path, model="risk")
    assert got["out_prediction"].tolist() == ["low", "high"]
    assert got["out_proba_low"].tolist() == [0.7, 0.1] and got["out_proba_high"].tolist() == [
        0.3,
        0.9,
    ]


def test_a_full_buffer_drops_and_counts_without_raising(tmp_path: Path) -> None:
    dropped: list[tuple[str, int]] = []
    log = PredictionLog(home=tmp_path, replica="r", max_buffer_rows=3, flush_rows=100, flush_interval_s=60,
                        on_drop=lambda model, n: dropped.append((model, n)))  # fmt: skip
    rows = [{"a": 1}, {"a": 2}]
    kept = [log.append(model="m", version="1", alias="champion", route="simple", request_id=str(i),
                       latency_ms=1.0, rows=rows, values=np.array([1.0, 2.0])) for i in range(3)]  # fmt: skip
    assert kept == [True, False, False] and log.dropped == 4 and dropped == [("m", 2), ("m", 2)]
    # a broken call is swallowed: the request that made it must still be answered
    assert log.append(model="m", version="1", alias="champion", route="simple", request_id="z",
                      latency_ms=1.0, rows=None, values=np.array([]))  is False  # type: ignore[arg-type]  # fmt: skip
    log.close()
    assert len(read_prediction_log(home=tmp_path, model="m")) == 2
    assert log.append(model="m", version="1", alias="champion", route="simple", request_id="late",
                      latency_ms=1.0, rows=rows, values=np.array([1.0, 2.0])) is False  # closed  # fmt: skip


def test_reader_filters_by_time_and_days(tmp_path: Path) -> None:
    log = PredictionLog(home=tmp_path, replica="r", flush_interval_s=60)
    for i in range(3):
        log.append(model="m", version="1", alias="champion", route="simple", request_id=str(i), latency_ms=1.0,
                   rows=[{"a": i}], values=np.array([float(i)]))  # fmt: skip
        time.sleep(0.02)
    log.close()
    everything = read_prediction_log(home=tmp_path, model="m")
    middle = everything["ts"].iloc[1]
    assert read_prediction_log(home=tmp_path, model="m", since=middle)["request_id"].tolist() == [
        "1",
        "2",
    ]
    assert read_prediction_log(home=tmp_path, model="m", until=middle)["request_id"].tolist() == [
        "0"
    ]
    naive = middle.tz_convert("UTC").tz_localize(None)  # naive times are UTC
    assert read_prediction_log(home=tmp_path, model="m", since=naive)["request_id"].tolist() == [
        "1",
        "2",
    ]
    assert read_prediction_log(
        home=tmp_path, model="m", since="2000-01-01", until="2000-01-02"
    ).empty
    assert read_prediction_log(home=tmp_path, model="never-served").empty
    with pytest.raises(ConfigurationError, match="cannot read 'yesterday-ish' as a time"):
        read_prediction_log(home=tmp_path, model="m", since="yesterday-ish")
    with pytest.raises(ConfigurationError, match="flush_interval_s > 0"):
        PredictionLog(home=tmp_path, replica="r", flush_interval_s=0)


def test_frame_entries_keep_python_values_per_column_and_none_where_a_column_is_missing() -> None:
    from raycore.serving.prediction_log import _columns

    frame = pd.DataFrame(
        {
            "store_id": pd.Series([4, 5], dtype="int64"),
            "price": [1.5, np.nan],
            "week_start": pd.to_datetime(["2026-03-09", "2026-03-16"]),
            "kind": ["a", None],
        }
    )
    cols = _columns(frame, ["kind", "store_id", "absent", "price", "week_start"])
    assert cols[0] == ["a", None]
    assert cols[1] == [4, 5] and all(type(v) is int for v in cols[1])
    assert cols[2] == [None, None]
    assert cols[3][0] == 1.5 and type(cols[3][0]) is float and np.isnan(cols[3][1])
    assert cols[4] == [pd.Timestamp("2026-03-09"), pd.Timestamp("2026-03-16")]
    # The same values as one Series per column, the slower way this replaced.
    for name, values in zip(
        ["kind", "store_id", "price", "week_start"],
        [cols[0], cols[1], cols[3], cols[4]],
        strict=True,
    ):
        assert pd.Series(values, dtype=object).equals(pd.Series(frame[name].tolist(), dtype=object))
