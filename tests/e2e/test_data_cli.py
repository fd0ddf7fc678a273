"""`foundry data` in process (typer's CliRunner): bad CSVs, reconciliation, quarantine, generate + status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raycore.cli.main import app, console, err_console
from raycore.data.lake import Lake
from raycore.data.layers import load_manifest

SPEC = """\
name: products_demo
description: One row per product.
source:
  path: products.csv
  format: csv
columns:
  - name: product_id
    dtype: int
    min: 1
  - name: category
    dtype: str
    allowed: [food, toys, tools]
  - name: price
    dtype: float
    min: 0
    max: 1000
  - name: launched
    dtype: date
    min: 2000-01-01
primary_key: [product_id]
quality_gate:
  min_pass_rate: 0.9
"""

# 12 rows: 6 clean; a wrong type in price and in launched, prices out of range on both
# sides, an unknown category, and product 1 sent twice.
BAD_CSV = """\
product_id,category,price,launched
1,food,2.50,2020-01-01
2,toys,abc,2021-05-03
3,tools,-4,2019-07-07
4,food,12.00,2021-12-31
5,cars,7.00,2022-02-02
1,food,2.50,2020-01-01
6,toys,20.00,2023-03-03
7,tools,1500,2018-08-08
8,food,3.25,not-a-date
9,toys,9.99,2021-01-01
10,tools,5.00,2022-06-01
11,food,1.00,2022-07-01
"""
Invoke = Callable[..., tuple[int, str]]
FAILED_RULES = ("type:price", "range:price", "allowed:category", "type:launched", "primary_key:product_id")


@pytest.fixture()
def run(foundry_home: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Invoke `foundry ...` in process; wide consoles so table cells do not wrap."""
    monkeypatch.setattr(console, "width", 400)
    monkeypatch.setattr(err_console, "width", 400)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    return invoke


def _counts(lake: Lake, name: str) -> tuple[int, int, int]:
    versions = [load_manifest(lake, layer, name).latest for layer in ("bronze", "silver", "quarantine")]
    b, s, q = (v.rows if v else 0 for v in versions)
    return b, s, q


def test_ingest_a_bad_csv_reports_rules_reconciles_and_quarantines(run: Invoke, foundry_home: Path, tmp_path: Path) -> None:
    spec, data = tmp_path / "products_demo.yaml", tmp_path / "products.csv"
    spec.write_text(SPEC)
    data.write_text(BAD_CSV)
    lake = Lake(str(foundry_home / "lake"))

    code, out = run("data", "ingest", str(spec), "--source", str(data), "--engine", "pandas")
    assert code == 1, out  # 6 of 12 rows pass, below the 90% gate
    for rule in FAILED_RULES:
        assert rule in out
    assert "quality gate failed" in out and "pass rate 50.0% < min 90.0%" in out
    assert "range:price 83.3%" in out  # the error names the rules with their pass rates
    assert "reconciled yes (12 = 6 + 6)" in out
    assert _counts(lake, "products_demo") == (12, 6, 6)  # stored although the gate failed
    assert list((foundry_home / "lake" / "reports" / "silver").glob("*.json"))

    code, out = run("data", "ingest", str(spec), "--source", str(data), "--engine", "pandas")
    assert code == 0, out
    assert "already ingested; nothing was added" in out
    assert _counts(lake, "products_demo") == (12, 6, 6)

    code, out = run("data", "quarantine", "products_demo", "--limit", "50")
    assert code == 0, out
    assert "products_demo (6 rows, showing 6)" in out
    assert "price='abc' is not a valid float" in out
    assert "price=1500.0 is above max 1000" in out
    assert "category='cars' is not one of ['food', 'tools', 'toys']" in out
    assert "product_id=1 duplicates an earlier row of this batch" in out

    code, out = run("data", "status")
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if "silver" in ln and "products_demo" in ln)
    assert "50.00%" in line and "not promoted" in line


def test_ingest_fails_clearly_on_a_missing_column_or_a_malformed_spec(run: Invoke, foundry_home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "products_demo.yaml"
    spec.write_text(SPEC)
    missing = tmp_path / "no_launch.csv"
    missing.write_text("product_id,category,price\n1,food,2.5\n")

    code, out = run("data", "ingest", str(spec), "--source", str(missing), "--engine", "pandas")
    assert code == 1
    assert "required column(s) ['launched']" in out and "nothing was written" in out
    assert load_manifest(Lake(str(foundry_home / "lake")), "bronze", "products_demo").latest is None
    assert not (foundry_home / "lake" / "bronze" / "products_demo").exists()

    bad = tmp_path / "bad_spec.yaml"
    bad.write_text(SPEC.replace("dtype: float", "dtype: money"))
    code, out = run("data", "ingest", str(bad), "--source", str(missing))
    assert code == 2
    assert "bad_spec.yaml" in out and "columns.2.dtype" in out and "money" in out

    bad.write_text("name: products_demo\ncolumns: [oops\n")
    code, out = run("data", "ingest", str(bad))
    assert code == 2 and "malformed YAML" in out and "bad_spec.yaml" in out

    code, out = run("data", "ingest", "stores")  # its foreign key needs regions in silver first
    assert code == 1 and "['regions']" in out and "foundry data ingest regions" in out
    assert not (foundry_home / "lake" / "bronze" / "stores").exists()


def test_generate_small_then_status(run: Invoke, foundry_home: Path) -> None:
    code, out = run("data", "generate", "--scale", "small", "--engine", "pandas")
    assert code == 0, out
    assert "+6,240 rows" in out and "version 1" in out
    lake = Lake(str(foundry_home / "lake"))
    assert _counts(lake, "store_sales_weekly") == (6240, 6240, 0)

    code, out = run("data", "generate", "--scale", "small", "--engine", "pandas")
    assert code == 0, out
    assert "nothing new" in out and "no rows were added" in out
    assert _counts(lake, "store_sales_weekly") == (6240, 6240, 0)
    assert load_manifest(lake, "gold", "store_sales_weekly").latest.version == 1  # type: ignore[union-attr]

    code, out = run("data", "status")
    assert code == 0, out
    for layer, table in (("bronze", "regions"), ("silver", "stores"), ("gold", "store_sales_weekly")):
        assert any(layer in ln and table in ln for ln in out.splitlines()), (layer, table)
    line = next(ln for ln in out.splitlines() if "silver" in ln and "store_sales_weekly" in ln)
    assert "6,240" in line and "100.00%" in line and "promoted" in line
