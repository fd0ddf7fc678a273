"""Silver: every problem reported by rule, bad rows quarantined with reasons, counts reconcile."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from raycore.data.layers import (
    QualityGateError,
    build_gold,
    ingest,
    load_dataset_spec,
    quarantine,
    read,
    refine,
    status,
)
from raycore.data.world import WorldConfig, generate_world
from raycore.errors import DataError
from raycore.specs import DatasetSpec

MESSY_STORES = """store_id,region_id,store_format,opened_at
1,1,mall,2015-03-01
2,2,street,2016-01-01T10:30:00+02:00
x3,1,mall,2015-01-01
4,1,kiosk,2015-01-01
5,-1,mall,2015-01-01
6,1,outlet,1980-01-01
1,2,mall,2015-01-01
7,99,mall,2015-01-01
8,1,mall,not-a-date
9,,mall,2015-01-01
10,1,street,2015-01-01
"""

EXPECTED_RULES = {
    2: "type:store_id",
    3: "allowed:store_format",
    4: "range:region_id; foreign_key:region_id",
    5: "range:opened_at",
    6: "primary_key:store_id",
    7: "foreign_key:region_id",
    8: "type:opened_at",
    9: "not_null:region_id",
}


@pytest.fixture()
def lake(tmp_path: Path) -> Path:
    """A lake whose silver already holds the six regions of a small world."""
    lake = tmp_path / "lake"
    regions = generate_world(WorldConfig(scale="small")).tables["regions"]
    ingest(load_dataset_spec("regions"), lake=lake, source=regions, engine="pandas")
    refine(load_dataset_spec("regions"), lake=lake, engine="pandas")
    return lake


def _messy(tmp_path: Path) -> Path:
    path = tmp_path / "stores.csv"
    path.write_text(MESSY_STORES)
    return path


def test_every_problem_is_reported_by_rule_and_bad_rows_are_quarantined(tmp_path: Path, lake: Path) -> None:
    spec = load_dataset_spec("stores")
    ingest(spec, lake=lake, source=_messy(tmp_path), engine="pandas")
    with pytest.raises(QualityGateError) as err:
        refine(spec, lake=lake, engine="pandas")

    silver = read("stores", lake=lake, layer="silver")
    assert silver["store_id"].tolist() == [1, 2, 10]
    assert str(silver["opened_at"].iloc[1]) == "2016-01-01 08:30:00"  # offset converted to UTC
    assert silver["store_id"].dtype == "int64" and silver["opened_at"].dtype == "datetime64[ns]"

    bad = quarantine("stores", lake=lake)
    assert dict(zip(bad["_row_number"], bad["_failed_rules"], strict=True)) == EXPECTED_RULES
    reasons = dict(zip(bad["_row_number"], bad["_reasons"], strict=True))
    assert "store_id='x3' is not a valid int" in reasons[2]
    assert "store_format='kiosk' is not one of ['mall', 'outlet', 'street']" in reasons[3]
    assert "region_id=-1 is below min 1" in reasons[4]
    assert "opened_at='1980-01-01T00:00:00' is below min '1990-01-01'" in reasons[5]
    assert "store_id=1 duplicates an earlier row of this batch" in reasons[6]
    assert "region_id=99 is not in regions.region_id" in reasons[7]
    assert bad["store_id"].tolist()[0] == "x3"  # quarantine keeps the raw value

    # bronze = silver + quarantine, and the report agrees
    assert len(read("stores", lake=lake, layer="bronze")) == len(silver) + len(bad) == 11
    report = json.loads(Path(err.value.report_path).read_text())
    table = report["tables"]["stores"]
    assert (table["rows"], table["silver_rows"], table["quarantined_rows"]) == (11, 3, 8)
    rates = {r["rule"]: r["pass_rate"] for r in table["rules"]}
    assert rates["allowed:store_format"] == pytest.approx(10 / 11, abs=1e-6)
    assert rates["foreign_key:region_id"] == pytest.approx(9 / 11, abs=1e-6)
    assert rates["type:region_id"] == 1.0  # every declared rule is listed, passing ones too


def test_the_quality_gate_names_failing_rules_and_blocks_gold(tmp_path: Path, lake: Path) -> None:
    spec = load_dataset_spec("stores")
    ingest(spec, lake=lake, source=_messy(tmp_path), engine="pandas")
    with pytest.raises(QualityGateError) as err:
        refine(spec, lake=lake, engine="pandas")
    message = str(err.value)
    assert "'stores' pass rate 27.3% < min 99.0%" in message
    assert "foreign_key:region_id 81.8%" in message and "type:store_id 90.9%" in message
    assert err.value.datasets == ["stores"]

    row = status(lake).get("silver", "stores")
    assert row is not None and row.last_batch_promoted is False and row.quarantined_rows == 8
    # The batch is in silver but not promoted: a gold table joining stores sees no store.
    sales = generate_world(WorldConfig(scale="small")).tables["store_sales_weekly"].head(5)
    sales_spec = load_dataset_spec("store_sales_weekly")
    ingest(sales_spec, lake=lake, source=sales, engine="pandas")
    refine(sales_spec, lake=lake, engine="pandas")
    gold = read("store_sales_weekly", lake=lake, layer="gold", as_of=build_gold("store_sales_weekly", lake=lake).version)
    assert gold["store_format"].isna().all()


def test_a_clean_batch_passes_and_duplicates_of_earlier_silver_rows_are_caught(tmp_path: Path, lake: Path) -> None:
    spec = load_dataset_spec("stores")
    first = tmp_path / "a.csv"
    first.write_text("store_id,region_id,store_format,opened_at\n1,1,mall,2015-03-01\n2,2,street,2016-01-01\n")
    ingest(spec, lake=lake, source=first, engine="pandas")
    result = refine(spec, lake=lake, engine="pandas")
    assert result.passed and result.report.tables["stores"].pass_rate == 1.0

    second = tmp_path / "b.csv"
    second.write_text("store_id,region_id,store_format,opened_at\n2,1,mall,2015-03-01\n3,2,street,2016-01-01\n")
    ingest(spec, lake=lake, source=second, engine="pandas")
    result = refine(spec, lake=lake, engine="pandas", raise_on_gate=False)
    assert not result.passed
    bad = quarantine("stores", lake=lake)
    assert bad["_reasons"].tolist() == ["primary_key:store_id: store_id=2 is already in silver"]
    assert read("stores", lake=lake, layer="silver")["store_id"].tolist() == [1, 2, 3]


def test_a_missing_required_column_in_bronze_fails_refine_and_writes_nothing(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    loose = DatasetSpec.model_validate(
        {
            "name": "things",
            "source": {"path": "x.csv", "format": "csv"},
            "columns": [{"name": "id", "dtype": "int"}, {"name": "note", "dtype": "str", "nullable": True, "required": False}],
        }
    )
    ingest(loose, lake=lake, source=pd.DataFrame({"id": [1, 2]}), engine="pandas")
    strict = loose.model_copy(update={"columns": [loose.columns[0], loose.columns[1].model_copy(update={"required": True})]})
    with pytest.raises(DataError, match=r"required column\(s\) \['note'\] .* found columns: \['id'\]"):
        refine(strict, lake=lake, engine="pandas")
    assert not (lake / "silver").exists() and not (lake / "quarantine").exists()
    # The optional column is filled with nulls by the spec that allows it to be absent.
    refine(loose, lake=lake, engine="pandas")
    assert read("things", lake=lake)["note"].isna().all()


def test_silver_is_partitioned_and_types_are_stable(tmp_path: Path, lake: Path) -> None:
    world = generate_world(WorldConfig(scale="small"))
    for name in ("stores", "store_sales_weekly"):
        spec = load_dataset_spec(name)
        ingest(spec, lake=lake, source=world.tables[name], engine="pandas")
        refine(spec, lake=lake, engine="pandas")
    folders = sorted(p.name for p in (lake / "silver" / "store_sales_weekly").iterdir())
    assert folders == ["week_start_year=2023", "week_start_year=2024", "week_start_year=2025"]
    sales = read("store_sales_weekly", lake=lake)
    assert len(sales) == len(world.tables["store_sales_weekly"])
    assert sales["available_at"].isna().all()  # optional column absent in the clean world
    assert str(sales["week_start"].dtype) == "datetime64[ns]" and str(sales["on_promo"].dtype) == "int64"


def test_refining_before_the_referenced_dataset_says_what_to_do(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ingest(load_dataset_spec("stores"), lake=lake, source=_messy(tmp_path), engine="pandas")
    with pytest.raises(DataError, match="'regions' has no silver rows yet"):
        refine(load_dataset_spec("stores"), lake=lake, engine="pandas")
