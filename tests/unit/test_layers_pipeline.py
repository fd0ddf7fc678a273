"""run_pipeline refines while it ingests; the result equals ingest, then refine, then gold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.data.layers import (
    build_gold,
    dataset_specs,
    ingest_many,
    load_manifest,
    read,
    refine,
    run_pipeline,
)
from raycore.data.layers.engine import balanced_groups
from raycore.data.layers.snapshots import Part, as_lake
from raycore.data.world import WorldConfig, generate_world

NAMES = ("regions", "stores", "store_sales_weekly")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CSV exports with key defects: a duplicate region, unknown stores, re-sent sales rows.

    Every 2023 row of sales file 0 names an unknown store, so the key rules empty a
    silver partition that the row rules alone had written.
    """
    folder = tmp_path_factory.mktemp("exports")
    tables = generate_world(WorldConfig(scale="small")).tables
    regions = pd.concat([tables["regions"], tables["regions"].head(1)], ignore_index=True)
    regions.to_csv(folder / "regions.csv", index=False)
    tables["stores"].to_csv(folder / "stores.csv", index=False)
    sales = tables["store_sales_weekly"].copy()
    sales_dir = folder / "sales"
    sales_dir.mkdir()
    first = sales[sales["store_id"] <= 5].copy()
    first.loc[first["week_start"].dt.year == 2023, "store_id"] += 9000
    rest = sales[sales["store_id"] > 5]
    rest = pd.concat([rest, rest.iloc[np.arange(0, 60, 6)]], ignore_index=True)
    first.to_csv(sales_dir / "part-0.csv", index=False)
    rest.to_csv(sales_dir / "part-1.csv", index=False)
    return {"regions": folder / "regions.csv", "stores": folder / "stores.csv", "store_sales_weekly": sales_dir}


def _comparable(part: Part, layer: str) -> tuple[object, ...]:
    # Rows of bronze/silver/quarantine carry _ingested_at, so their digests differ between
    # the two lakes, and so does the gold build folder (named by its inputs' digests).
    if layer == "gold":
        return part.rows, part.digest
    return part.path, part.rows, part.promoted


def _files(lake: Path, layer: str) -> set[str]:
    return {str(p.relative_to(lake)) for p in (lake / layer).rglob("*.parquet")}


def test_refining_during_ingest_writes_what_the_separate_steps_write(tmp_path: Path, exports: dict[str, Path]) -> None:
    specs = [dataset_specs()[n] for n in NAMES]
    fused, steps = tmp_path / "fused", tmp_path / "steps"
    result = run_pipeline(specs, lake=fused, sources=exports, engine="pandas", raise_on_gate=False)
    ingest_many(specs, lake=steps, sources=exports, engine="pandas")
    refine(specs, lake=steps, engine="pandas", raise_on_gate=False)
    build_gold("store_sales_weekly", lake=steps, engine="pandas")

    for layer in ("bronze", "silver", "quarantine", "gold"):
        for name in NAMES if layer != "gold" else ("store_sales_weekly",):
            a, b = (load_manifest(as_lake(lake), layer, name).latest for lake in (fused, steps))
            assert a is not None and b is not None
            assert [_comparable(p, layer) for p in a.parts] == [_comparable(p, layer) for p in b.parts]
            pd.testing.assert_frame_equal(
                read(name, lake=fused, layer=layer).drop(columns=["_ingested_at"], errors="ignore"),
                read(name, lake=steps, layer=layer).drop(columns=["_ingested_at"], errors="ignore"),
            )
        if layer != "gold":  # no file left behind by a part refined again because a key rule failed
            assert _files(fused, layer) == _files(steps, layer), layer

    sales = result.refined.report.tables["store_sales_weekly"]
    assert sales.failed("foreign_key:store_id") == 260 and sales.failed("primary_key:store_id,week_start") == 10
    assert result.refined.report.tables["regions"].failed("primary_key:region_id") == 1
    emptied = [f for f in _files(fused, "silver") if "week_start_year=2023" in f and f.endswith("part-00000.parquet")]
    assert emptied == []


def test_a_second_run_adds_nothing(tmp_path: Path, exports: dict[str, Path]) -> None:
    specs = [dataset_specs()[n] for n in NAMES]
    lake = tmp_path / "lake"
    run_pipeline(specs, lake=lake, sources=exports, engine="pandas", raise_on_gate=False)
    before = {n: load_manifest(as_lake(lake), "silver", n).latest for n in NAMES}
    again = run_pipeline(specs, lake=lake, sources=exports, engine="pandas", raise_on_gate=False)
    assert all(r.skipped for r in again.ingested.values())
    assert all(not t.batches for t in again.refined.report.tables.values())
    assert {n: load_manifest(as_lake(lake), "silver", n).latest for n in NAMES} == before
    assert again.gold["store_sales_weekly"].skipped


def test_items_are_dealt_into_balanced_groups() -> None:
    assert balanced_groups([5, 1, 4, 2], groups=2) == [[0, 1], [2, 3]]
    assert balanced_groups([1.0] * 3, groups=8) == [[0], [1], [2]]
    groups = balanced_groups([100, 100, 100, 100, 1, 1], groups=2)
    assert sorted(len(g) for g in groups) == [3, 3] and sorted(groups) == [[0, 2, 4], [1, 3, 5]]
