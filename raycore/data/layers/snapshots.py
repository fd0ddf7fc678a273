"""Snapshots: every write of a layer table is a version with a content digest.

A layer table is a list of immutable parquet *parts*. Each write records a new
:class:`Version` (its parts, row count, digest, time) in a JSON manifest at
``<lake>/_manifests/<layer>/<table>.json``. Bronze, silver and quarantine append
parts; gold replaces them. Old parts are never deleted, so any version can be
read back by number or digest.

The digest of a version with one part is ``frame_digest`` of that part (equal to
``frame_digest(read(...))``); with several parts it is a hash of the parts'
digests in order.

Example:
    >>> from raycore.data.layers import read
    >>> read("stores", lake="/tmp/lake", layer="silver", as_of=1)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from raycore.data.lake import Lake
from raycore.errors import DataError

__all__ = [
    "LAYERS",
    "LakeLike",
    "Layer",
    "Manifest",
    "Part",
    "Version",
    "as_lake",
    "combined_digest",
    "commit",
    "load_manifest",
    "read",
    "read_parts",
]

Layer = Literal["bronze", "silver", "quarantine", "gold"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "quarantine", "gold")
LakeLike = Lake | str | os.PathLike[str]


def as_lake(lake: LakeLike) -> Lake:
    """Accept a :class:`Lake`, a local path or a filesystem URI."""
    if isinstance(lake, Lake):
        return lake
    return Lake(str(lake) if "://" in str(lake) else str(Path(lake).expanduser().resolve()))


@dataclass(frozen=True)
class Part:
    """One immutable parquet file of a layer table (path relative to the lake root)."""

    path: str
    rows: int
    digest: str
    batch_id: str | None = None
    partition: str | None = None
    promoted: bool = True


@dataclass(frozen=True)
class Version:
    """One state of a layer table: the parts that make it up."""

    version: int
    digest: str
    rows: int
    created_at: str
    parts: tuple[Part, ...]
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_ids(self) -> list[str]:
        return list(dict.fromkeys(p.batch_id for p in self.parts if p.batch_id))


@dataclass(frozen=True)
class Manifest:
    """All versions of one layer table, oldest first."""

    layer: str
    table: str
    versions: tuple[Version, ...] = ()

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def resolve(self, as_of: int | str | None) -> Version:
        """The version numbered ``as_of``, or whose digest is ``as_of``; latest if None."""
        if not self.versions:
            raise DataError(
                f"{self.layer} table '{self.table}' has no versions yet",
                hint=_hint_for_empty(self.layer),
            )
        if as_of is None:
            return self.versions[-1]
        for v in self.versions:
            if (isinstance(as_of, int) and v.version == as_of) or (isinstance(as_of, str) and v.digest == as_of):
                return v
        known = ", ".join(f"{v.version}={v.digest}" for v in self.versions[-10:])
        raise DataError(
            f"{self.layer} table '{self.table}' has no version {as_of!r}",
            hint=f"use a version number or digest; latest versions: {known}",
        )

    def to_json(self) -> str:
        return json.dumps(
            {"layer": self.layer, "table": self.table, "versions": [asdict(v) for v in self.versions]},
            indent=1,
            default=str,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        versions = tuple(
            Version(**{**v, "parts": tuple(Part(**p) for p in v["parts"])}) for v in raw["versions"]
        )
        return cls(layer=raw["layer"], table=raw["table"], versions=versions)


def _hint_for_empty(layer: str) -> str:
    return {
        "bronze": "ingest a batch first: raycore.data.layers.ingest(spec, lake=...)",
        "silver": "refine bronze first: raycore.data.layers.refine(spec, lake=...)",
        "quarantine": "refine bronze first: raycore.data.layers.refine(spec, lake=...)",
        "gold": "build it first: raycore.data.layers.build_gold(name, lake=...)",
    }.get(layer, "write the table first")


def manifest_path(layer: str, table: str) -> str:
    return f"_manifests/{layer}/{table}.json"


def load_manifest(lake: Lake, layer: str, table: str) -> Manifest:
    """The manifest of one layer table (empty if the table was never written)."""
    path = manifest_path(layer, table)
    if not lake.file_exists(path):
        return Manifest(layer=layer, table=table)
    try:
        return Manifest.from_json(lake.read_bytes(path).decode("utf-8"))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"manifest {lake.file(path)} is corrupt: {exc}",
            hint="restore it from backup; the parquet parts it lists are still in the lake",
        ) from exc


def combined_digest(parts: Sequence[Part]) -> str:
    """Digest of a version: its part's digest, or a hash of its parts' digests in order."""
    if len(parts) == 1:
        return parts[0].digest
    return hashlib.sha256("|".join(p.digest for p in parts).encode()).hexdigest()[:16]


def commit(
    lake: Lake,
    layer: str,
    table: str,
    parts: Sequence[Part],
    *,
    mode: Literal["append", "replace"],
    note: str = "",
    meta: dict[str, Any] | None = None,
) -> Version:
    """Record a new version: previous parts + ``parts`` (append) or ``parts`` alone (replace).

    The manifest is replaced atomically, so a crash leaves the previous version intact.
    """
    manifest = load_manifest(lake, layer, table)
    previous = manifest.latest
    all_parts = tuple(parts) if mode == "replace" or previous is None else (*previous.parts, *parts)
    version = Version(
        version=(previous.version + 1) if previous else 1,
        digest=combined_digest(all_parts),
        rows=sum(p.rows for p in all_parts),
        created_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        parts=all_parts,
        note=note,
        meta=dict(meta or {}),
    )
    updated = replace(manifest, versions=(*manifest.versions, version))
    lake.write_bytes(manifest_path(layer, table), updated.to_json().encode("utf-8"))
    return version


def read_parts(lake: Lake, parts: Sequence[Part], *, columns: list[str] | None = None) -> pd.DataFrame:
    """Concatenate parts into one frame, in order.

    Parts with one schema are joined in arrow (fast, keeps dtypes); bronze and
    quarantine parts may hold different raw types per batch and fall back to pandas.
    """
    tables = []
    for part in parts:
        table = lake.read_arrow(part.path)
        if columns is not None:
            table = table.select([c for c in columns if c in table.column_names])
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=columns or [])
    try:
        combined = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        combined = pa.concat_tables(_as_text_where_types_differ(tables), promote_options="permissive")
    return combined.to_pandas()


def _as_text_where_types_differ(tables: list[pa.Table]) -> list[pa.Table]:
    """Raw parts may disagree on a column's type (numbers in one file, text in another): use text."""
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for f in table.schema:
            if not pa.types.is_null(f.type):
                types.setdefault(f.name, set()).add(f.type)
    mixed = {name for name, kinds in types.items() if len(kinds) > 1}
    out = []
    for table in tables:
        for name in mixed & set(table.column_names):
            i = table.column_names.index(name)
            column = table.column(i)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            table = table.set_column(i, name, column.cast(pa.string()))
        out.append(table)
    return out


def read(
    dataset: str,
    *,
    lake: LakeLike,
    layer: Layer = "silver",
    as_of: int | str | None = None,
    columns: list[str] | None = None,
    promoted_only: bool = False,
) -> pd.DataFrame:
    """Read a layer table, latest or as of an earlier version (number or digest).

    Example:
        >>> df = read("stores", lake="/tmp/lake", layer="silver")             # doctest: +SKIP
        >>> old = read("stores", lake="/tmp/lake", layer="silver", as_of=1)   # doctest: +SKIP
    """
    if layer not in LAYERS:
        raise DataError(f"unknown layer {layer!r}", hint=f"use one of {', '.join(LAYERS)}")
    the_lake = as_lake(lake)
    version = load_manifest(the_lake, layer, dataset).resolve(as_of)
    parts = [p for p in version.parts if p.promoted] if promoted_only else list(version.parts)
    return read_parts(the_lake, parts, columns=columns)
