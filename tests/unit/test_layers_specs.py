"""Dataset and gold specs: validation messages show the bad value; shipped YAMLs load."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from raycore.data.layers import dataset_specs, gold_spec, load_dataset_spec
from raycore.errors import SpecError
from raycore.specs import DatasetSpec, GoldSpec, parse_spec


def _spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "things",
        "source": {"path": "things.csv", "format": "csv"},
        "columns": [
            {"name": "id", "dtype": "int", "min": 1},
            {"name": "kind", "dtype": "str", "allowed": ["a", "b"]},
            {"name": "at", "dtype": "datetime"},
        ],
        "primary_key": "id",
    }
    return {**base, **overrides}


def test_a_valid_spec_parses_and_normalises_lists() -> None:
    spec = parse_spec(_spec(), DatasetSpec, path="things.yaml")
    assert spec.primary_key == ["id"]
    assert spec.quality_gate.min_pass_rate == 0.95
    assert spec.required_columns == ["id", "kind", "at"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"primary_key": ["nope"]}, "primary_key column 'nope' is not declared; declared columns: id, kind, at"),
        ({"event_time": "id"}, "event_time column 'id' must be datetime or date, got int"),
        ({"columns": [{"name": "id", "dtype": "int", "min": 5, "max": 1}]}, "min (5) must be <= max (1)"),
        ({"columns": [{"name": "id", "dtype": "int", "allowed": ["x"]}]}, "allowed value 'x' is not a int"),
        ({"columns": [{"name": "id", "dtype": "str", "regex": "("}]}, "regex '(' does not compile"),
        ({"columns": [{"name": "id", "dtype": "int", "required": False}]}, "must be nullable"),
        ({"columns": [{"name": "id", "dtype": "date", "min": "2020-13-01"}]}, "got '2020-13-01'"),
        ({"quality_gate": {"min_pass_rate": 1.5}}, "less than or equal to 1"),
        ({"foreign_keys": [{"column": "id", "references": "no-dot"}]}, "should match pattern"),
        ({"source": {"table": "a", "path": "b"}}, "exactly one of 'table'"),
    ],
)
def test_invalid_specs_name_the_bad_value(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_spec(**overrides), DatasetSpec, path="things.yaml")
    assert fragment in str(err.value)
    assert "things.yaml" in str(err.value)


def test_shipped_dataset_specs_load_and_reference_each_other() -> None:
    specs = dataset_specs()
    assert {"regions", "stores", "store_sales_weekly", "orders", "customers", "purchase_orders"} <= set(specs)
    sales = load_dataset_spec("store_sales_weekly")
    assert sales.primary_key == ["store_id", "week_start"]
    assert sales.event_time == "week_start"
    assert sales.depends_on == ["stores"]
    for spec in specs.values():
        for dep in spec.depends_on:
            assert dep in specs


def test_unknown_dataset_suggests_the_closest_name() -> None:
    with pytest.raises(SpecError, match="did you mean 'stores'"):
        load_dataset_spec("storez")


def test_gold_spec_must_keep_entity_and_time() -> None:
    gold = gold_spec("store_sales_weekly")
    assert gold.entity == ["store_id"] and gold.time == "week_start"
    with pytest.raises(SpecError, match="must keep the entity and time columns"):
        parse_spec(
            {"name": "g", "base": "b", "entity": "id", "time": "t", "columns": ["id"]}, GoldSpec, path="g.yaml"
        )


def test_importing_specs_and_layers_pulls_in_no_heavy_framework() -> None:
    code = (
        "import sys, raycore.specs, raycore.data.layers; "
        "heavy = [m for m in ('ray', 'torch', 'mlflow') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
