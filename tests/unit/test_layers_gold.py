"""Gold tables from declarations, snapshots with digests, `as_of` reads, lake status."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from raycore.data.lake import frame_digest
from raycore.data.layers import (
    build_gold,
    ingest,
    load_dataset_spec,
    load_manifest,
    read,
    refine,
    register_gold,
    registry,
    run_pipeline,
    status,
)
from raycore.data.layers.snapshots import as_lake
from raycore.data.world import WorldConfig, generate_world
from raycore.errors import DataError
from raycore.specs import GoldSpec


@pytest.fixture(scope="module")
def world_tables() -> dict[str, pd.DataFrame]:
    return generate_world(WorldConfig(scale="small")).tables


def test_the_pipeline_builds_gold_entity_by_time(tmp_path: Path, world_tables: dict[str, pd.DataFrame]) -> None:
    lake = tmp_path / "lake"
    result = run_pipeline(lake=lake, sources=world_tables, engine="pandas")
    assert result.passed and set(result.gold) == {"store_sales_weekly"}
    gold = read("store_sales_weekly", lake=lake, layer="gold")
    sales, stores = world_tables["store_sales_weekly"], world_tables["stores"]
    assert len(gold) == len(sales)
    assert list(gold.columns) == [
        "store_id", "week_start", "on_promo", "revenue", "available_at", "region_id", "region", "store_format", "opened_at"
    ]
    assert not gold.duplicated(["store_id", "week_start"]).any()
    one = gold[gold["store_id"] == 3].iloc[0]
    expected = stores.set_index("store_id").loc[3]
    assert one["store_format"] == expected["store_format"] and one["region_id"] == expected["region_id"]
    assert one["region"] == f"region_{expected['region_id']:02d}"

    again = run_pipeline(lake=lake, sources=world_tables, engine="pandas")
    assert all(r.skipped for r in again.ingested.values())
    assert again.gold["store_sales_weekly"].skipped  # inputs unchanged: no new version


def test_as_of_reads_an_earlier_snapshot_by_version_or_digest(tmp_path: Path, world_tables: dict[str, pd.DataFrame]) -> None:
    lake = tmp_path / "lake"
    spec = load_dataset_spec("regions")
    regions = world_tables["regions"]
    ingest(spec, lake=lake, source=regions.head(3), engine="pandas")
    refine(spec, lake=lake, engine="pandas")
    first = read("regions", lake=lake)
    ingest(spec, lake=lake, source=regions.tail(3), engine="pandas")
    refine(spec, lake=lake, engine="pandas")

    manifest = load_manifest(as_lake(lake), "silver", "regions")
    v1, v2 = manifest.versions
    assert len(read("regions", lake=lake)) == 6
    pd.testing.assert_frame_equal(read("regions", lake=lake, as_of=1), first)
    pd.testing.assert_frame_equal(read("regions", lake=lake, as_of=v1.digest), first)
    assert frame_digest(read("regions", lake=lake, as_of=1)) == v1.digest  # digest = content of the version
    assert v1.digest != v2.digest
    with pytest.raises(DataError, match="has no version 7"):
        read("regions", lake=lake, as_of=7)


def test_a_new_gold_version_keeps_the_old_one_readable(tmp_path: Path, world_tables: dict[str, pd.DataFrame]) -> None:
    lake = tmp_path / "lake"
    sales = world_tables["store_sales_weekly"]
    weeks = sorted(sales["week_start"].unique())
    early, late = sales[sales["week_start"] < weeks[10]], sales[sales["week_start"] >= weeks[10]]
    run_pipeline(lake=lake, sources={**world_tables, "store_sales_weekly": early}, engine="pandas")
    v1 = load_manifest(as_lake(lake), "gold", "store_sales_weekly").latest
    spec = load_dataset_spec("store_sales_weekly")
    ingest(spec, lake=lake, source=late, engine="pandas")
    refine(spec, lake=lake, engine="pandas")
    v2 = build_gold("store_sales_weekly", lake=lake, engine="pandas")
    assert v1 is not None and v2.version == v1.version + 1 and v2.rows == len(sales)
    assert len(read("store_sales_weekly", lake=lake, layer="gold", as_of=v1.version)) == len(early)


def test_gold_is_declarative_and_checks_its_grain(
    tmp_path: Path, world_tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_REGISTERED_GOLD", {})  # keep the registration local to this test
    lake = tmp_path / "lake"
    run_pipeline(lake=lake, sources=world_tables, gold=[], engine="pandas")
    by_region = GoldSpec.model_validate(
        {
            "name": "stores_by_region",
            "base": "stores",
            "entity": ["store_id"],
            "time": "opened_at",
            "joins": [{"dataset": "regions", "keys": "region_id", "columns": "region"}],
        }
    )
    register_gold(by_region)
    result = build_gold("stores_by_region", lake=lake, engine="pandas")
    assert result.rows == len(world_tables["stores"])
    bad_grain = GoldSpec(name="bad", base="store_sales_weekly", entity=["on_promo"], time="week_start")
    with pytest.raises(DataError, match="rows sharing entity x time"):
        build_gold(bad_grain, lake=lake, engine="pandas")


def test_status_lists_tables_rows_digests_and_pass_rates(tmp_path: Path, world_tables: dict[str, pd.DataFrame]) -> None:
    lake = tmp_path / "lake"
    run_pipeline(lake=lake, sources=world_tables, engine="pandas")
    frame = status(lake).to_frame()
    assert set(zip(frame["layer"], frame["table"], strict=True)) >= {
        ("bronze", "stores"), ("silver", "store_sales_weekly"), ("quarantine", "regions"), ("gold", "store_sales_weekly")
    }
    silver = status(lake).get("silver", "stores")
    assert silver is not None
    assert (silver.rows, silver.pass_rate, silver.quarantined_rows) == (len(world_tables["stores"]), 1.0, 0)
    assert len(silver.digest) == 16
