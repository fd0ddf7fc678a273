"""The dataset and gold specs shipped with the foundry, and gold tables registered at run time.

Shipped specs are YAML package data: ``raycore/data/datasets/<name>.yaml``
(:class:`~raycore.specs.DatasetSpec`) and ``raycore/data/datasets/gold/<name>.yaml``
(:class:`~raycore.specs.GoldSpec`). They are read on first use, never at import.

Example:
    >>> sorted(dataset_specs())
    ['regions', 'store_sales_weekly', 'stores']
    >>> gold_spec("store_sales_weekly").base
    'store_sales_weekly'
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path

from raycore.errors import SpecError
from raycore.specs.dataset import DatasetSpec, GoldSpec
from raycore.specs.loader import load_spec

__all__ = ["dataset_specs", "gold_spec", "gold_specs", "load_dataset_spec", "register_gold"]

_REGISTERED_GOLD: dict[str, GoldSpec] = {}


def _folder(*parts: str) -> Path:
    return Path(str(resources.files("raycore.data").joinpath("datasets", *parts)))


def _load_folder(folder: Path, model: type[DatasetSpec] | type[GoldSpec]) -> dict[str, DatasetSpec | GoldSpec]:
    specs: dict[str, DatasetSpec | GoldSpec] = {}
    for path in sorted(folder.glob("*.yaml")):
        spec = load_spec(path, model)
        if spec.name != path.stem:
            raise SpecError(
                f"spec name '{spec.name}' differs from the file name",
                path=str(path),
                field="name",
                hint=f"rename the file to {spec.name}.yaml or set name: {path.stem}",
            )
        specs[spec.name] = spec
    return specs


@cache
def _shipped_datasets() -> dict[str, DatasetSpec]:
    return {k: v for k, v in _load_folder(_folder(), DatasetSpec).items() if isinstance(v, DatasetSpec)}


@cache
def _shipped_gold() -> dict[str, GoldSpec]:
    return {k: v for k, v in _load_folder(_folder("gold"), GoldSpec).items() if isinstance(v, GoldSpec)}


def dataset_specs() -> dict[str, DatasetSpec]:
    """Every shipped dataset spec, by name."""
    return dict(_shipped_datasets())


def load_dataset_spec(name: str) -> DatasetSpec:
    """One shipped dataset spec; an unknown name raises SpecError with the closest match."""
    specs = _shipped_datasets()
    if name not in specs:
        raise SpecError(f"no dataset spec named '{name}'", hint=_did_you_mean(name, specs))
    return specs[name]


def gold_specs() -> dict[str, GoldSpec]:
    """Every gold spec: shipped, then registered (a registered spec overrides a shipped one)."""
    return {**_shipped_gold(), **_REGISTERED_GOLD}


def gold_spec(name: str) -> GoldSpec:
    specs = gold_specs()
    if name not in specs:
        raise SpecError(f"no gold spec named '{name}'", hint=_did_you_mean(name, specs))
    return specs[name]


def register_gold(spec: GoldSpec) -> None:
    """Make a gold table buildable by name (e.g. by ``run_pipeline``)."""
    _REGISTERED_GOLD[spec.name] = spec


def _did_you_mean(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return (f"did you mean '{close[0]}'? " if close else "") + f"known: {', '.join(sorted(known))}"
