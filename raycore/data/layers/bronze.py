"""Bronze: raw batches, append-only, with ingest metadata.

Each ingest is one batch whose id is a content digest of its input (the bytes
of its files, or the frame). Its rows land unchanged (CSV as text) in
``<lake>/bronze/<dataset>/_batch_id=<id>/part-<n>.parquet`` with four metadata
columns: ``_source`` (file), ``_batch_id``, ``_ingested_at`` (UTC) and
``_row_number`` (0-based row in its file). Ingesting the same content again is
a no-op. A file that cannot be read or parsed fails the batch with a
:class:`DataError` naming the file; nothing of that batch is kept and earlier
batches are untouched.

Example:
    >>> from raycore.data.layers import ingest, load_dataset_spec
    >>> result = ingest(load_dataset_spec("stores"), lake="/tmp/lake", source="stores.csv")  # doctest: +SKIP
    >>> result.rows, result.skipped                                                        # doctest: +SKIP
    (400, False)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from raycore.data.lake import Lake, frame_digest
from raycore.data.layers.engine import Engine, resolve_engine, run_items
from raycore.data.layers.inputs import (
    InputFile,
    Inputs,
    RetryPolicy,
    SourceLike,
    check_required_columns,
    frame_to_arrow,
    parse_file,
    resolve_inputs,
)
from raycore.data.layers.snapshots import LakeLike, Part, as_lake, commit, load_manifest
from raycore.errors import DataError
from raycore.specs.dataset import DatasetSpec

__all__ = ["METADATA_COLUMNS", "AfterWrite", "IngestResult", "PartHook", "ingest", "ingest_batches", "ingest_many"]

METADATA_COLUMNS = ("_source", "_batch_id", "_ingested_at", "_row_number")
INGESTED_AT_TYPE = pa.timestamp("ns", tz="UTC")
# _source and _batch_id are constant per part: dictionary-encoded they cost almost
# nothing to write, read and digest (pandas reads them as categoricals).
LABEL_TYPE = pa.dictionary(pa.int32(), pa.string())


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], pa.string()))


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did. ``skipped`` means the batch was already in bronze."""

    dataset: str
    batch_id: str
    rows: int
    files: tuple[str, ...]
    skipped: bool
    version: int
    digest: str
    engine: str


def ingest(
    spec: DatasetSpec,
    *,
    lake: LakeLike,
    source: SourceLike | None = None,
    engine: Engine = "auto",
    filesystem: pafs.FileSystem | None = None,
    retry: RetryPolicy | None = None,
    world: Any = None,
) -> IngestResult:
    """Append one raw batch to bronze; a batch already ingested is skipped.

    Args:
        spec: the dataset.
        lake: a :class:`~raycore.data.lake.Lake`, a local folder or a URI.
        source: a file, folder or frame; default is ``spec.source``.
        engine: ``"pandas"`` (in process), ``"ray"`` (Ray Data over files) or ``"auto"``.
        filesystem: pyarrow filesystem of ``source`` (default: from the path/URI).
        retry: backoff for transient read failures.
        world: the ``WorldConfig`` whose tables a ``table:`` source reads (default seed 7, small).

    Example:
        >>> ingest(spec, lake="/tmp/lake", source="data/stores.csv", engine="pandas")  # doctest: +SKIP
    """
    sources = {} if source is None else {spec.name: source}
    return ingest_many(
        [spec], lake=lake, sources=sources, engine=engine, filesystem=filesystem, retry=retry, world=world
    )[spec.name]


def ingest_many(
    specs: Sequence[DatasetSpec],
    *,
    lake: LakeLike,
    sources: Mapping[str, SourceLike] | None = None,
    engine: Engine = "auto",
    filesystem: pafs.FileSystem | None = None,
    retry: RetryPolicy | None = None,
    world: Any = None,
) -> dict[str, IngestResult]:
    """Ingest one batch for each of several datasets, all files in one Ray Data pass.

    On Ray each pass has a fixed cost, so ingesting datasets together is faster
    than one by one. If any file fails, no batch of this call is kept.

    Example:
        >>> ingest_many(specs, lake="/tmp/lake", sources={"stores": "stores.csv"})  # doctest: +SKIP
    """
    results, _ = ingest_batches(
        specs, lake=lake, sources=sources, engine=engine, filesystem=filesystem, retry=retry, world=world
    )
    return results


@dataclass(frozen=True)
class AfterWrite:
    """What a :data:`PartHook` returned for the parts of one new batch, by part index."""

    batch_id: str
    engine: str
    parts: dict[int, list[dict[str, Any]]]


# Runs on each new bronze part right after it is written, in the same task (the
# pipeline refines there): (spec, batch id, part index, part path, part as written) -> summaries.
PartHook = Callable[[DatasetSpec, str, int, str, pa.Table], list[dict[str, Any]]]


def ingest_batches(
    specs: Sequence[DatasetSpec],
    *,
    lake: LakeLike,
    sources: Mapping[str, SourceLike] | None = None,
    engine: Engine = "auto",
    filesystem: pafs.FileSystem | None = None,
    retry: RetryPolicy | None = None,
    world: Any = None,
    after_write: PartHook | None = None,
) -> tuple[dict[str, IngestResult], dict[str, AfterWrite]]:
    """:func:`ingest_many`, and ``after_write`` on every new part in the same pass.

    Returns the ingest results and, per dataset with a new batch, the hook's summaries.
    """
    the_lake = as_lake(lake)
    retry = retry or RetryPolicy()
    sources = sources or {}
    results: dict[str, IngestResult] = {}
    plans: list[_Plan] = []
    for spec in specs:
        planned = _plan(spec, the_lake, sources.get(spec.name), filesystem=filesystem, retry=retry, world=world)
        if isinstance(planned, IngestResult):
            results[spec.name] = planned
        else:
            plans.append(planned)
    files = [(k, i) for k, plan in enumerate(plans) for i in range(len(plan.inputs.files))]
    sizes = [_file_size(plans[k].inputs.files[i]) for k, i in files]
    frames = sum(p.inputs.total_bytes() for p in plans if p.inputs.frame is not None)
    chosen = resolve_engine(engine, input_bytes=sum(sizes) + frames)
    summaries: list[list[dict[str, Any]]] = [[] for _ in plans]
    hooked: list[dict[int, list[dict[str, Any]]]] = [{} for _ in plans]
    try:
        for k, plan in enumerate(plans):
            if plan.inputs.frame is not None:
                summary, table = plan.writer.write(0, frame_to_arrow(plan.inputs.frame), plan.inputs.frame_name)
                summaries[k] = [summary]
                if after_write is not None:
                    hooked[k][0] = after_write(plan.writer.spec, plan.writer.batch_id, 0, summary["path"], table)
        # Only writers and file lists travel to Ray tasks, not in-memory frames.
        writers = [p.writer for p in plans]
        file_lists = [p.inputs.files for p in plans]

        def write_part(item: dict[str, Any]) -> list[dict[str, Any]]:
            k, i = int(item["plan"]), int(item["index"])
            summary, table = writers[k].write_file(i, file_lists[k][i])
            out = [{**summary, "plan": k}]
            if after_write is not None:
                spec, batch_id = writers[k].spec, writers[k].batch_id
                out += [{"after": s, "plan": k, "index": i} for s in after_write(spec, batch_id, i, summary["path"], table)]
            return out

        done = run_items(write_part, [{"plan": k, "index": i} for k, i in files], engine=chosen, weights=sizes)
    except BaseException:
        for plan in plans:
            the_lake.delete_dir(plan.writer.batch_dir)  # nothing of a failed batch is kept
        raise
    for s in done:
        if "after" in s:
            hooked[s["plan"]].setdefault(s["index"], []).append(s["after"])
        else:
            summaries[s["plan"]].append(s)
    after: dict[str, AfterWrite] = {}
    for k, plan in enumerate(plans):
        used = "pandas" if plan.inputs.frame is not None else chosen
        results[plan.writer.spec.name] = _commit(the_lake, plan, summaries[k], engine=used)
        if after_write is not None:
            after[plan.writer.spec.name] = AfterWrite(plan.writer.batch_id, used, hooked[k])
    return {spec.name: results[spec.name] for spec in specs}, after


def _file_size(file: InputFile) -> int:
    return file.filesystem.get_file_info(file.path).size or 0


@dataclass(frozen=True)
class _Plan:
    """A batch to write: its inputs and the writer that knows its id."""

    inputs: Inputs
    names: tuple[str, ...]
    writer: _PartWriter


def _plan(
    spec: DatasetSpec,
    lake: Lake,
    source: SourceLike | None,
    *,
    filesystem: pafs.FileSystem | None,
    retry: RetryPolicy,
    world: Any,
) -> _Plan | IngestResult:
    """Digest the inputs; a batch already in bronze comes back as a skipped result."""
    prefix = _world_prefix(spec, lake, source, world)
    inputs = resolve_inputs(spec, source=source, lake=lake, filesystem=filesystem, world_prefix=prefix)
    if inputs.frame is not None:
        batch_id = frame_digest(inputs.frame)
        names: tuple[str, ...] = (inputs.frame_name,)
    else:
        digests = [f.content_digest(retry) for f in inputs.files]
        batch_id = hashlib.sha256(json.dumps(digests).encode()).hexdigest()[:16]
        names = tuple(f.name for f in inputs.files)
    previous = load_manifest(lake, "bronze", spec.name).latest
    if previous is not None and batch_id in previous.batch_ids:
        rows = sum(p.rows for p in previous.parts if p.batch_id == batch_id)
        return IngestResult(spec.name, batch_id, rows, names, True, previous.version, previous.digest, "none")
    writer = _PartWriter(
        spec=spec, lake=lake, batch_id=batch_id, ingested_at=datetime.now(timezone.utc), retry=retry
    )
    return _Plan(inputs=inputs, names=names, writer=writer)


def _commit(lake: Lake, plan: _Plan, summaries: list[dict[str, Any]], *, engine: str) -> IngestResult:
    writer = plan.writer
    parts = [Part(s["path"], s["rows"], s["digest"], batch_id=writer.batch_id) for s in summaries]
    version = commit(
        lake,
        "bronze",
        writer.spec.name,
        parts,
        mode="append",
        note=f"ingest batch {writer.batch_id}",
        meta={"batch_id": writer.batch_id, "files": list(plan.names), "ingested_at": writer.ingested_at.isoformat()},
    )
    rows = sum(p.rows for p in parts)
    return IngestResult(
        writer.spec.name, writer.batch_id, rows, plan.names, False, version.version, version.digest, engine
    )


def _world_prefix(spec: DatasetSpec, lake: Lake, source: SourceLike | None, world: Any) -> str:
    """For a data-world source, make sure the world is in the lake and return its folder."""
    if source is not None or spec.source.table is None:
        return ""
    from raycore.data.sources import ensure_world, world_prefix
    from raycore.data.world import WorldConfig

    config = world or WorldConfig()
    ensure_world(lake, config)
    return world_prefix(config)


@dataclass(frozen=True)
class _PartWriter:
    """Writes one bronze part per input file; runs in the driver or in a Ray task."""

    spec: DatasetSpec
    lake: Lake
    batch_id: str
    ingested_at: datetime
    retry: RetryPolicy

    @property
    def batch_dir(self) -> str:
        return f"bronze/{self.spec.name}/_batch_id={self.batch_id}"

    def write_file(self, index: int, file: InputFile) -> tuple[dict[str, Any], pa.Table]:
        """Parse and write one input file; the summary and the part as written."""
        data = file.read_bytes(self.retry)
        typed = [c.name for c in self.spec.columns if c.dtype != "str"]
        return self.write(index, parse_file(data, fmt=file.format, name=file.name, typed_columns=typed), file.name)

    def write(self, index: int, table: pa.Table, name: str) -> tuple[dict[str, Any], pa.Table]:
        """Write one part; the summary and the part as written (with the metadata columns)."""
        reserved = [c for c in table.column_names if c in METADATA_COLUMNS]
        if reserved:
            raise DataError(
                f"input {name} has column(s) {reserved}, reserved for bronze ingest metadata",
                hint="rename those columns in the input",
            )
        check_required_columns(table.column_names, self.spec, where=f"input {name}")
        n = table.num_rows
        table = (
            table.append_column("_source", _constant(name, n))
            .append_column("_batch_id", _constant(self.batch_id, n))
            .append_column("_ingested_at", pa.repeat(pa.scalar(self.ingested_at, INGESTED_AT_TYPE), n))
            .append_column("_row_number", pa.array(np.arange(n, dtype=np.int64)))
        )
        path = f"{self.batch_dir}/part-{index:05d}.parquet"
        self.lake.write_arrow(path, table)
        return {"path": path, "rows": n, "digest": frame_digest(table.to_pandas())}, table
