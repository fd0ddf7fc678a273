"""Property: whatever the defects, bronze rows = silver rows + quarantined rows, and silver obeys every rule."""

from __future__ import annotations

import tempfile

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raycore.data.layers import ingest, quarantine, read, refine
from raycore.specs import DatasetSpec

SPEC = DatasetSpec.model_validate(
    {
        "name": "events",
        "source": {"path": "events.csv", "format": "csv"},
        "columns": [
            {"name": "id", "dtype": "int", "min": 0},
            {"name": "kind", "dtype": "str", "allowed": ["a", "b", "c"]},
            {"name": "amount", "dtype": "float", "min": 0, "max": 100, "nullable": True},
            {"name": "day", "dtype": "date"},
            {"name": "code", "dtype": "str", "regex": "^[A-Z]{2}$", "unique": True},
        ],
        "primary_key": ["id"],
        "quality_gate": {"min_pass_rate": 0.0},
    }
)

cells = {
    "id": st.one_of(st.integers(-3, 25).map(str), st.sampled_from(["x", "1.5", "", "7.0"]), st.none()),
    "kind": st.one_of(st.sampled_from(["a", "b", "c"]), st.sampled_from(["z", "A", ""]), st.none()),
    "amount": st.one_of(
        st.floats(-50, 150, allow_nan=False).map(lambda v: f"{v:.2f}"), st.sampled_from(["abc", "1e3"]), st.none()
    ),
    "day": st.one_of(
        st.dates().map(lambda d: d.isoformat()), st.sampled_from(["2024-02-30", "2024-01-01T12:00:00", "soon"]), st.none()
    ),
    "code": st.one_of(st.sampled_from(["AB", "CD", "EF", "GH"]), st.sampled_from(["abc", "A1"]), st.none()),
}
frames = st.lists(st.fixed_dictionaries(cells), min_size=0, max_size=40).map(
    lambda rows: pd.DataFrame(rows, columns=list(cells), dtype=object)
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(frames, min_size=1, max_size=2))
def test_rows_reconcile_and_silver_obeys_every_rule(batches: list[pd.DataFrame]) -> None:
    with tempfile.TemporaryDirectory() as lake:
        total = 0
        for frame in batches:
            result = ingest(SPEC, lake=lake, source=frame, engine="pandas")
            total += 0 if result.skipped else len(frame)
            refine(SPEC, lake=lake, engine="pandas")

        bronze = read("events", lake=lake, layer="bronze")
        silver = read("events", lake=lake, layer="silver")
        bad = quarantine("events", lake=lake)
        assert len(bronze) == total == len(silver) + len(bad)

        # every bronze row is in exactly one of silver and quarantine
        key = ["_batch_id", "_row_number"]
        both = pd.concat([f[key].astype(str) for f in (silver, bad) if len(f)] or [bronze[key]], ignore_index=True)
        assert not both.duplicated().any()
        assert len(both.merge(bronze[key].astype(str))) == len(bronze)

        # every quarantined row names each rule it failed, with a reason
        for rules, reasons in zip(bad["_failed_rules"], bad["_reasons"], strict=True):
            assert rules and all(f"{rule}: " in reasons for rule in rules.split("; "))

        # silver obeys the rules
        if len(silver):
            assert silver["id"].is_unique and (silver["id"] >= 0).all()
            assert silver["kind"].isin(["a", "b", "c"]).all()
            amount = silver["amount"].dropna()
            assert ((amount >= 0) & (amount <= 100)).all()
            assert (silver["day"] == silver["day"].dt.normalize()).all()
            assert silver["code"].str.fullmatch("[A-Z]{2}").all() and silver["code"].is_unique
