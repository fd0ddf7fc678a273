"""Reading a model's source table: the gold layer of the lake, or a file.

The data world is written to the lake once per (seed, scale) under
``world/<seed>-<scale>/{tables,truth}/<name>`` with a manifest of content
digests. A model whose source is a data-world table trains on that table's
gold version (or silver, if it has no gold spec), after the bronze → silver →
gold run of the medallion layers; the layer version's digest is its lineage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from raycore.data.lake import Lake
from raycore.data.world import WorldConfig, generate_world
from raycore.errors import ConfigurationError, DataError
from raycore.specs import DataSourceSpec

__all__ = ["SourceTable", "ensure_world", "read_source", "read_truth", "world_prefix"]


@dataclass(frozen=True)
class SourceTable:
    """A loaded table and the digest that identifies its content (lineage)."""

    name: str
    frame: pd.DataFrame
    digest: str


def world_prefix(config: WorldConfig) -> str:
    return f"world/{config.seed}-{config.scale}"


def ensure_world(lake: Lake, config: WorldConfig) -> dict[str, str]:
    """Generate and store the data world unless it is already in the lake; return digests."""
    prefix = world_prefix(config)
    if lake.exists(f"{prefix}/manifest"):
        manifest = lake.read(f"{prefix}/manifest")
        return dict(zip(manifest["table"], manifest["digest"], strict=True))
    world = generate_world(config)
    digests: dict[str, str] = {}
    for name, frame in world.tables.items():
        digests[name] = lake.write(f"{prefix}/tables/{name}", frame)
    for name, frame in world.truth.items():
        digests[name] = lake.write(f"{prefix}/truth/{name}", frame)
    # The manifest goes last: its presence means the world is complete.
    lake.write(
        f"{prefix}/manifest",
        pd.DataFrame({"table": list(digests), "digest": list(digests.values())}),
    )
    return digests


def read_source(spec: DataSourceSpec, *, lake: Lake, world: WorldConfig) -> SourceTable:
    """The rows a model trains on, with their content digest."""
    if spec.table is not None:
        return _read_layered(spec.table, lake=lake, world=world)
    assert spec.path is not None
    return _read_file(spec.path, spec.format)


def _read_layered(table: str, *, lake: Lake, world: WorldConfig) -> SourceTable:
    from raycore.data.layers import dataset_specs, gold_specs, load_manifest, read, run_pipeline

    datasets = dataset_specs()
    if table not in datasets:
        raise DataError(
            f"no dataset spec for table '{table}'",
            hint=f"use one of: {', '.join(sorted(datasets))}, or add raycore/data/datasets/{table}.yaml",
        )
    layer = "gold" if table in gold_specs() else "silver"
    if load_manifest(lake, layer, table).latest is None:
        ensure_world(lake, world)
        run_pipeline(lake=lake, world=world)
    for name in {table, *(gold_specs()[table].depends_on if layer == "gold" else ())}:
        other = lake_world(lake, name)
        if other is not None and other != world_prefix(world):
            raise ConfigurationError(
                f"the lake at {lake.root} holds '{name}' from data world {other}, not {world_prefix(world)}",
                hint="use another FOUNDRY_HOME (or FOUNDRY_LAKE_URI) per data world seed and scale",
            )
    version = load_manifest(lake, layer, table).resolve(None)
    frame = read(
        table, lake=lake, layer="gold" if layer == "gold" else "silver", promoted_only=True
    )
    return SourceTable(f"{layer}/{table}", frame, version.digest)


def lake_world(lake: Lake, table: str) -> str | None:
    """The data world (``world/<seed>-<scale>``) whose batches fill ``table``'s bronze layer, if any."""
    from raycore.data.layers import load_manifest

    worlds = lake.file("world") + "/"
    for version in load_manifest(lake, "bronze", table).versions:
        for name in map(str, version.meta.get("files", [])):
            if name.startswith(worlds):
                return f"world/{name[len(worlds) :].split('/', 1)[0]}"
    return None


def read_truth(table: str, *, lake: Lake, world: WorldConfig) -> pd.DataFrame:
    """A truth table of the data world (for oracle metrics)."""
    ensure_world(lake, world)
    return lake.read(f"{world_prefix(world)}/truth/{table}")


def _read_file(path: str, fmt: str) -> SourceTable:
    from raycore.data.lake import frame_digest

    try:
        if fmt == "csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise DataError(
            f"data file not found: {path}", hint="check data.path in the model spec"
        ) from exc
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot read {fmt} data at {path}: {exc}",
            hint=f"check that the file is valid {fmt} and data.format matches",
        ) from exc
    return SourceTable(Path(path).stem, frame, frame_digest(frame))


def describe_digests(digests: dict[str, str]) -> str:
    return json.dumps(digests, sort_keys=True)
