"""Gold: entity x time tables that feature views read, built from declarations.

A :class:`~raycore.specs.GoldSpec` names a base silver dataset (one row per
entity and time) and the silver datasets joined to it. ``build_gold`` reads only
*promoted* silver batches, joins the (small) dimension tables onto every base
part (a broadcast join: on Ray Data each task joins its own parts), and writes
a new gold version. A build whose inputs (spec and input digests) equal the
latest version's is skipped.

Example:
    >>> from raycore.data.layers import build_gold
    >>> build_gold("store_sales_weekly", lake="/tmp/lake").rows  # doctest: +SKIP
    83200
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from raycore.data.lake import Lake, frame_digest
from raycore.data.layers.engine import Engine, resolve_engine, run_items
from raycore.data.layers.registry import gold_spec
from raycore.data.layers.snapshots import (
    LakeLike,
    Part,
    Version,
    as_lake,
    commit,
    load_manifest,
    read_parts,
)
from raycore.errors import DataError
from raycore.specs.dataset import GoldSpec

__all__ = [
    "GoldBuild",
    "GoldResult",
    "build_gold",
    "check_gold_grain",
    "commit_gold",
    "discard_gold",
    "inputs_digest",
    "promoted_parts",
    "write_gold",
]


@dataclass(frozen=True)
class GoldResult:
    """What one gold build did; ``skipped`` means its inputs had not changed."""

    name: str
    version: int
    digest: str
    rows: int
    skipped: bool
    engine: str


def build_gold(spec: GoldSpec | str, *, lake: LakeLike, engine: Engine = "auto") -> GoldResult:
    """Build (or rebuild) one gold table from promoted silver batches.

    Args:
        spec: a GoldSpec, or the name of a shipped/registered one.
        lake: a :class:`~raycore.data.lake.Lake`, a local folder or a URI.
        engine: ``"pandas"``, ``"ray"`` (Ray Data over silver parts) or ``"auto"``.

    Example:
        >>> build_gold("store_sales_weekly", lake="/tmp/lake", engine="pandas")  # doctest: +SKIP
    """
    gold = gold_spec(spec) if isinstance(spec, str) else spec
    the_lake = as_lake(lake)
    return commit_gold(the_lake, write_gold(gold, lake=the_lake, silver=promoted_parts(the_lake, gold), engine=engine))


@dataclass(frozen=True)
class GoldBuild:
    """Gold parts written but not yet committed; ``previous`` is set when the inputs are unchanged."""

    gold: GoldSpec
    inputs: str
    parts: tuple[Part, ...]
    engine: str
    previous: Version | None = None


def promoted_parts(lake: Lake, gold: GoldSpec) -> dict[str, list[Part]]:
    """The promoted silver parts of every dataset a gold table reads, from the manifests."""
    out = {gold.base: _promoted(lake, gold.base, role=f"base of gold '{gold.name}'")}
    for join in gold.joins:
        out[join.dataset] = _promoted(lake, join.dataset, role=f"joined into gold '{gold.name}'")
    return out


def inputs_digest(gold: GoldSpec, silver: Mapping[str, Sequence[Part]]) -> str:
    """What a gold version is built from: its spec and its input parts' digests, in order."""
    digests = {name: [p.digest for p in silver[name]] for name in gold.depends_on}
    return hashlib.sha256(json.dumps([gold.model_dump(mode="json"), digests], sort_keys=True).encode()).hexdigest()[:16]


def write_gold(
    gold: GoldSpec,
    *,
    lake: Lake,
    silver: Mapping[str, Sequence[Part]],
    engine: Engine,
    check_grain: bool = True,
) -> GoldBuild:
    """Write the gold parts built from ``silver`` (promoted parts per dataset); commit nothing.

    ``check_grain=False`` leaves :func:`check_gold_grain` to the caller.
    """
    base = list(silver[gold.base])
    inputs = inputs_digest(gold, silver)
    previous = load_manifest(lake, "gold", gold.name).latest
    if previous is not None and previous.meta.get("inputs") == inputs:
        return GoldBuild(gold, inputs, previous.parts, "none", previous)
    dims = tuple(
        _dimension(read_parts(lake, list(silver[join.dataset])), join.dataset, join.keys, join.columns)
        for join in gold.joins
    )
    if check_grain:
        check_gold_grain(lake, gold, silver)
    fs, _ = lake.filesystem()
    sizes = [fs.get_file_info(lake.file(p.path)).size or 0 for p in base]
    chosen = resolve_engine(engine, input_bytes=sum(sizes))
    writer = _GoldWriter(gold=gold, lake=lake, build=inputs, dims=dims)
    summaries = run_items(
        lambda item: writer.build_part(int(item["index"]), base[int(item["index"])].path),
        [{"index": i} for i in range(len(base))],
        engine=chosen,
        weights=sizes,
    )
    return GoldBuild(gold, inputs, tuple(Part(s["path"], s["rows"], s["digest"]) for s in summaries), chosen)


def check_gold_grain(lake: Lake, gold: GoldSpec, silver: Mapping[str, Sequence[Part]]) -> None:
    """Raise unless the base parts hold one row per entity and time."""
    _check_grain(read_parts(lake, list(silver[gold.base]), columns=[*gold.entity, gold.time]), gold)


def commit_gold(lake: Lake, build: GoldBuild) -> GoldResult:
    """Record a written build as the gold table's new version (nothing to do if unchanged)."""
    gold, previous = build.gold, build.previous
    if previous is not None:
        return GoldResult(gold.name, previous.version, previous.digest, previous.rows, True, "none")
    version = commit(
        lake, "gold", gold.name, list(build.parts), mode="replace",
        note=f"build from {sorted(gold.depends_on)}", meta={"inputs": build.inputs},
    )
    return GoldResult(gold.name, version.version, version.digest, version.rows, False, build.engine)


def discard_gold(lake: Lake, build: GoldBuild) -> None:
    """Delete the files of a build that will not be committed."""
    if build.previous is None:
        lake.delete_dir(f"gold/{build.gold.name}/{build.inputs}")


def _promoted(lake: Lake, dataset: str, *, role: str) -> list[Part]:
    latest = load_manifest(lake, "silver", dataset).latest
    if latest is None:
        raise DataError(
            f"silver dataset '{dataset}' ({role}) has no rows yet",
            hint=f"ingest and refine '{dataset}' first",
        )
    return [p for p in latest.parts if p.promoted]


def _dimension(frame: pd.DataFrame, dataset: str, on: list[str], columns: list[str]) -> pd.DataFrame:
    missing = [c for c in [*on, *columns] if c not in frame.columns]
    if missing and not frame.empty:
        raise DataError(
            f"silver dataset '{dataset}' has no column(s) {missing}",
            hint=f"fix the gold spec's join; '{dataset}' has: {[c for c in frame.columns if not c.startswith('_')]}",
        )
    frame = frame.reindex(columns=[*on, *columns])
    if frame.duplicated(subset=on).any():
        raise DataError(
            f"joined dataset '{dataset}' has several rows per key {on}; a gold join must not multiply rows",
            hint=f"join on '{dataset}''s primary key",
        )
    # Nullable dtypes, so unmatched rows of a left join keep every part's schema equal.
    for col in columns:
        if pd.api.types.is_integer_dtype(frame[col]) and not pd.api.types.is_extension_array_dtype(frame[col]):
            frame[col] = frame[col].astype("Int64")
        elif pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].astype("boolean")
    return frame


def _check_grain(keys: pd.DataFrame, gold: GoldSpec) -> None:
    dup = keys.duplicated()
    if dup.any():
        example = keys[dup].iloc[0].to_dict()
        raise DataError(
            f"gold '{gold.name}': base '{gold.base}' has {int(dup.sum())} rows sharing entity x time "
            f"{[*gold.entity, gold.time]}, e.g. {example}",
            hint="choose entity and time columns that form the base dataset's primary key",
        )


@dataclass(frozen=True)
class _GoldWriter:
    """Joins one base part with the dimensions and writes it; runs in the driver or a Ray task."""

    gold: GoldSpec
    lake: Lake
    build: str
    dims: tuple[pd.DataFrame, ...]

    def build_part(self, index: int, path: str) -> list[dict[str, Any]]:
        frame = self.lake.read_arrow(path).to_pandas()
        frame = frame[[c for c in frame.columns if not c.startswith("_")]]
        for join, dim in zip(self.gold.joins, self.dims, strict=True):
            frame = frame.merge(dim, on=join.keys, how=join.how, validate="many_to_one")
        if self.gold.columns is not None:
            missing = [c for c in self.gold.columns if c not in frame.columns]
            if missing:
                raise DataError(
                    f"gold '{self.gold.name}': column(s) {missing} are neither in '{self.gold.base}' nor joined",
                    hint=f"available: {list(frame.columns)}",
                )
            frame = frame[self.gold.columns]
        frame = frame.sort_values([*self.gold.entity, self.gold.time], kind="stable").reset_index(drop=True)
        target = f"gold/{self.gold.name}/{self.build}/part-{index:05d}.parquet"
        self.lake.write_arrow(target, pa.Table.from_pandas(frame, preserve_index=False))
        return [{"path": target, "rows": len(frame), "digest": frame_digest(frame)}]
