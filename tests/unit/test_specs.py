"""Specs and the YAML loader: valid catalog entries load, bad ones name file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from raycore.catalog import load_catalog, packaged_models_dir
from raycore.errors import CatalogError, SpecError
from raycore.specs import GateSpec, HoldoutSpec, ModelSpec, load_spec

MDL_001 = packaged_models_dir() / "mdl-001.yaml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_packaged_catalog_loads_and_validates() -> None:
    catalog = load_catalog()
    spec = catalog.get("mdl-001")
    assert spec.name == "sales_forecasting"
    assert catalog.get("sales_forecasting") is spec
    assert spec.gate.passes(0.10) and not spec.gate.passes(0.20)
    assert spec.holdout.kind == "time"


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog().get("mdl-999")
    assert "mdl-001 (sales_forecasting)" in str(info.value)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mdl-050.yaml", "id: mdl-050\nname: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, ModelSpec)
    text = str(info.value)
    assert str(path) in text and "malformed YAML" in text and "line" in text


def test_missing_field_is_named_with_the_fix(tmp_path: Path) -> None:
    text = MDL_001.read_text().replace("label: revenue\n", "")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "mdl-001.yaml", text), ModelSpec)
    assert info.value.field == "label"
    assert "add 'label:'" in str(info.value)


def test_misspelled_field_suggests_the_right_name(tmp_path: Path) -> None:
    text = MDL_001.read_text().replace("  num_workers: 2", "  num_workrs: 2")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "mdl-001.yaml", text), ModelSpec)
    assert info.value.field == "resources.num_workrs"
    assert "num_workers" in (info.value.hint or "")
    assert "(line" in info.value.message


def test_bad_value_shows_the_value(tmp_path: Path) -> None:
    text = MDL_001.read_text().replace('op: "<="', 'op: "=<"')
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "mdl-001.yaml", text), ModelSpec)
    assert info.value.field == "gate.op"
    assert "'=<'" in str(info.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="mapping"):
        load_spec(write(tmp_path, "x.yaml", "- a\n- b\n"), ModelSpec)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "nope.yaml", ModelSpec)


def test_catalog_rejects_file_name_id_mismatch(tmp_path: Path) -> None:
    write(tmp_path, "mdl-077.yaml", MDL_001.read_text().replace("id: mdl-001", "id: mdl-078").replace(
        "name: sales_forecasting", "name: other_model"))
    with pytest.raises(CatalogError, match="does not match id"):
        load_catalog(extra_dirs=[tmp_path])


def test_catalog_rejects_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "mdl-031.yaml", MDL_001.read_text().replace("id: mdl-001", "id: mdl-031"))
    with pytest.raises(CatalogError, match="duplicate model name"):
        load_catalog(extra_dirs=[tmp_path])


def test_model_31_is_one_file(tmp_path: Path) -> None:
    write(tmp_path, "mdl-031.yaml", MDL_001.read_text().replace("id: mdl-001", "id: mdl-031").replace(
        "name: sales_forecasting", "name: sales_forecasting_v2"))
    catalog = load_catalog(extra_dirs=[tmp_path])
    assert catalog.get("mdl-031").name == "sales_forecasting_v2"
    assert len(catalog) == len(load_catalog()) + 1


def test_gate_never_passes_nan() -> None:
    assert not GateSpec(metric="r2", op=">=", threshold=0.5).passes(float("nan"))


def test_holdout_needs_exactly_one_size() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        HoldoutSpec(time_column="t", last_periods=3, fraction=0.2)
    with pytest.raises(ValueError, match="time_column"):
        HoldoutSpec(last_periods=3)


def test_specs_are_frozen() -> None:
    spec = load_catalog().get("mdl-001")
    with pytest.raises(ValueError):
        spec.name = "x"  # type: ignore[misc]
