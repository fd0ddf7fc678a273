"""The Ray Data path writes exactly what the pandas path writes, and fails just as clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.data.layers import ingest, load_dataset_spec, quarantine, read, run_pipeline
from raycore.data.layers.engine import resolve_engine
from raycore.data.world import WorldConfig, generate_world
from raycore.errors import DataError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """World tables as CSV exports; weekly sales split in three files with typical defects."""
    folder = tmp_path_factory.mktemp("exports")
    tables = generate_world(WorldConfig(scale="small")).tables
    for name in ("regions", "stores"):
        tables[name].to_csv(folder / f"{name}.csv", index=False)
    sales = tables["store_sales_weekly"].astype({"revenue": object, "store_id": object, "on_promo": object})
    rng = np.random.default_rng(0)
    rows = rng.choice(len(sales), size=40, replace=False)
    sales.loc[rows[:8], "revenue"] = "twelve"  # wrong type
    sales.loc[rows[8:16], "revenue"] = -5.0  # out of range
    sales.loc[rows[16:24], "on_promo"] = 3  # unknown category
    sales.loc[rows[24:32], "store_id"] = np.arange(9000, 9008)  # unknown stores (foreign key)
    sales = pd.concat([sales, sales.iloc[rows[32:40]]], ignore_index=True)  # re-sent rows: duplicates
    sales_dir = folder / "sales"
    sales_dir.mkdir()
    bounds = np.linspace(0, len(sales), 4).astype(int)
    for i in range(3):
        sales.iloc[bounds[i] : bounds[i + 1]].to_csv(sales_dir / f"part-{i}.csv", index=False)
    return {"regions": folder / "regions.csv", "stores": folder / "stores.csv", "store_sales_weekly": sales_dir}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["_ingested_at"], errors="ignore")


def test_ray_and_pandas_paths_write_identical_layers(ray_session: None, tmp_path: Path, exports: dict[str, Path]) -> None:
    results = {
        engine: run_pipeline(lake=tmp_path / engine, sources=exports, engine=engine, raise_on_gate=False)
        for engine in ("ray", "pandas")
    }
    assert {b["engine"] for b in results["ray"].refined.report.to_dict()["tables"]["store_sales_weekly"]["batches"]} == {"ray"}
    assert results["ray"].ingested["store_sales_weekly"].engine == "ray"
    for layer in ("bronze", "silver", "gold"):
        for name in ("regions", "stores", "store_sales_weekly"):
            if layer == "gold" and name != "store_sales_weekly":
                continue
            ray_frame = read(name, lake=tmp_path / "ray", layer=layer)
            pandas_frame = read(name, lake=tmp_path / "pandas", layer=layer)
            pd.testing.assert_frame_equal(_comparable(ray_frame), _comparable(pandas_frame))
    bad_ray = quarantine("store_sales_weekly", lake=tmp_path / "ray")
    bad_pandas = quarantine("store_sales_weekly", lake=tmp_path / "pandas")
    pd.testing.assert_frame_equal(_comparable(bad_ray), _comparable(bad_pandas))

    counts = bad_ray["_failed_rules"].str.split("; ").explode().value_counts().to_dict()
    assert counts == {
        "type:revenue": 8,
        "range:revenue": 8,
        "allowed:on_promo": 8,
        "foreign_key:store_id": 8,
        "primary_key:store_id,week_start": 8,
    }
    table = results["ray"].refined.report.tables["store_sales_weekly"]
    assert table.rows == table.silver_rows + table.quarantined_rows == len(read("store_sales_weekly", lake=tmp_path / "ray", layer="bronze"))
    assert table.passed  # 40 bad rows of 6,248 is within the 95% gate


def test_gold_built_during_refine_is_kept_only_when_silver_matches(
    ray_session: None, tmp_path: Path, exports: dict[str, Path]
) -> None:
    """On Ray, gold is built while refine checks the key rules; the guess must leave no trace."""
    clean = {**exports, "store_sales_weekly": exports["regions"].parent / "clean_sales.csv"}
    generate_world(WorldConfig(scale="small")).tables["store_sales_weekly"].to_csv(clean["store_sales_weekly"], index=False)
    for name, sources in (("clean", clean), ("defects", exports)):
        ray_lake, pandas_lake = tmp_path / f"{name}-ray", tmp_path / f"{name}-pandas"
        built = run_pipeline(lake=ray_lake, sources=sources, engine="ray", raise_on_gate=False).gold["store_sales_weekly"]
        run_pipeline(lake=pandas_lake, sources=sources, engine="pandas", raise_on_gate=False)
        assert built.engine == "ray" and not built.skipped
        gold = read("store_sales_weekly", lake=ray_lake, layer="gold")
        pd.testing.assert_frame_equal(gold, read("store_sales_weekly", lake=pandas_lake, layer="gold"))
        # One build folder: the committed one (a discarded guess is deleted).
        builds = [p.name for p in (ray_lake / "gold" / "store_sales_weekly").iterdir()]
        assert len(builds) == 1, (name, builds)


def test_a_corrupt_file_in_a_ray_batch_fails_clearly_and_keeps_earlier_data(
    ray_session: None, tmp_path: Path, exports: dict[str, Path]
) -> None:
    spec, lake = load_dataset_spec("stores"), tmp_path / "lake"
    ingest(spec, lake=lake, source=exports["stores"], engine="ray")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "a.csv").write_text("store_id,region_id,store_format,opened_at\n900,1,mall,2015-01-01\n")
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(DataError, match=r"b\.parquet is corrupt or not valid parquet"):
        ingest(spec, lake=lake, source=folder, engine="ray")
    assert len(read("stores", lake=lake, layer="bronze")) == 40
    assert len(list((lake / "bronze" / "stores").iterdir())) == 1


def test_auto_uses_ray_only_for_large_inputs(ray_session: None) -> None:
    assert resolve_engine("auto", input_bytes=1 << 40) == "ray"
    assert resolve_engine("auto", input_bytes=1_000) == "pandas"
