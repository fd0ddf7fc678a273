"""Pure training logic: metrics, holdout splits, the lake, the audit log."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.data.lake import Lake, frame_digest
from raycore.errors import DataError, SpecError
from raycore.registry.audit import AuditLog
from raycore.specs import HoldoutSpec
from raycore.training import compute_metric, split_holdout


def test_metrics() -> None:
    y, p = np.array([100.0, 200.0]), np.array([110.0, 180.0])
    assert compute_metric("mape", y_true=y, y_pred=p) == pytest.approx(0.1)
    assert compute_metric("wape", y_true=y, y_pred=p) == pytest.approx(30 / 300)
    assert compute_metric("r2", y_true=y, y_pred=y) == 1.0
    with pytest.raises(SpecError, match="unknown metric"):
        compute_metric("accuracyy", y_true=y, y_pred=p)


def test_time_holdout_takes_the_latest_periods() -> None:
    df = pd.DataFrame({"t": np.repeat(np.arange(10), 3), "y": np.arange(30)})
    train, hold = split_holdout(df, HoldoutSpec(time_column="t", last_periods=2))
    assert set(hold["t"]) == {8, 9} and train["t"].max() == 7
    with pytest.raises(DataError, match="leaves no training data"):
        split_holdout(df, HoldoutSpec(time_column="t", last_periods=10))
    with pytest.raises(DataError, match="not in the data"):
        split_holdout(df, HoldoutSpec(time_column="when", last_periods=2))


def test_lake_round_trip_and_digest(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    digest = lake.write("t/one", df)
    pd.testing.assert_frame_equal(lake.read("t/one"), df)
    assert digest == frame_digest(df) != frame_digest(df.assign(a=[1, 3]))
    with pytest.raises(DataError, match="not in the lake"):
        lake.read("t/two")


def test_corrupt_table_gives_clear_error_and_others_survive(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.write("good", pd.DataFrame({"a": [1]}))
    lake.write("bad", pd.DataFrame({"a": [1]}))
    Path(lake.path("bad")).write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="unreadable"):
        lake.read("bad")
    assert len(lake.read("good")) == 1


def test_audit_log_keeps_history_under_concurrent_writers(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")

    def writer(k: int) -> None:
        own = AuditLog(tmp_path / "audit.db")
        for i in range(25):
            own.record(model="m", action="promote", alias="champion", version=str(i), actor=f"t{k}", reason="r")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = log.history("m")
    assert len(events) == 100
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert log.history("other") == []
