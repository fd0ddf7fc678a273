"""Point-in-time join against a brute-force reference, over random inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raycore.errors import DataError
from raycore.features.pit import point_in_time_join


def brute(labels: pd.DataFrame, feats: pd.DataFrame, ttl: pd.Timedelta | None) -> list[float]:
    out = []
    for r in labels.itertuples():
        visible = feats[(feats.e == r.e) & (feats.av <= r.t)]
        if visible.empty:
            out.append(np.nan)
            continue
        latest = visible.ev.max()
        if ttl is not None and r.t - latest > ttl:
            out.append(np.nan)
            continue
        # several rows may share the latest event time: the last one to arrive wins
        cand = visible[visible.ev == latest].sort_values("av", kind="stable")
        out.append(float(cand.x.iloc[-1]))
    return out


@settings(max_examples=150, deadline=None)
@given(
    m=st.integers(0, 25),
    n=st.integers(1, 25),
    seed=st.integers(0, 2**31 - 1),
    ttl_days=st.one_of(st.none(), st.integers(0, 10)),
    two_keys=st.booleans(),
)
def test_matches_brute_force(m: int, n: int, seed: int, ttl_days: int | None, two_keys: bool) -> None:
    rng = np.random.default_rng(seed)
    feats = pd.DataFrame({"e": rng.integers(0, 4, m), "ev": pd.to_datetime(rng.integers(0, 20, m), unit="D")})
    feats["av"] = feats["ev"] + pd.to_timedelta(rng.integers(0, 5, m), unit="D")
    feats["x"] = np.arange(m, dtype="float64")
    feats["k"] = 1
    labels = pd.DataFrame({"e": rng.integers(0, 5, n), "t": pd.to_datetime(rng.integers(0, 25, n), unit="D")})
    labels["k"] = 1
    ttl = None if ttl_days is None else pd.Timedelta(days=ttl_days)
    entity = ["e", "k"] if two_keys else ["e"]
    # make (entity, ev, av) unique so "latest" is well defined, as feature tables are
    feats = feats.drop_duplicates(subset=["e", "ev", "av"]).reset_index(drop=True)
    feats["x"] = np.arange(len(feats), dtype="float64")
    got = point_in_time_join(labels, feats, entity=entity, as_of="t", event_time="ev",
                             available_time="av", ttl=ttl, columns=["x"])
    expected = brute(labels, feats, ttl)
    np.testing.assert_array_equal(got["x"].to_numpy(), np.array(expected, dtype="float64"))
    assert list(got.index) == list(labels.index)


def test_keeps_dtypes_when_every_row_matches() -> None:
    feats = pd.DataFrame({"e": [1, 2], "ev": pd.to_datetime(["2024-01-01", "2024-01-01"]), "n": [3, 4]})
    labels = pd.DataFrame({"e": [2, 1], "t": pd.to_datetime(["2024-02-01", "2024-02-01"])})
    out = point_in_time_join(labels, feats, entity=["e"], as_of="t", event_time="ev")
    assert out["n"].tolist() == [4, 3] and out["n"].dtype == np.int64
    assert out["ev"].dtype == "datetime64[ns]"


def test_missing_columns_and_clashes_are_named() -> None:
    feats = pd.DataFrame({"e": [1], "ev": pd.to_datetime(["2024-01-01"]), "x": [1.0]})
    labels = pd.DataFrame({"e": [1], "t": pd.to_datetime(["2024-02-01"]), "x": [0.0]})
    with pytest.raises(DataError, match="when"):
        point_in_time_join(labels, feats, entity=["e"], as_of="when", event_time="ev")
    with pytest.raises(DataError, match="overwrite label columns: x"):
        point_in_time_join(labels, feats, entity=["e"], as_of="t", event_time="ev")
