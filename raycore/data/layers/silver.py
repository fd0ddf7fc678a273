"""Silver: typed, validated rows; every failing row goes to quarantine with its reasons.

``refine`` takes each bronze batch not yet refined, types it against the
declared schema and checks every rule (see :mod:`~raycore.data.layers.rules`).
Passing rows go to ``<lake>/silver/<dataset>/``, failing rows (raw, with
``_failed_rules`` and ``_reasons``) to ``<lake>/quarantine/<dataset>/``. Then:

- reconciliation: bronze rows = silver rows + quarantined rows, per batch (from
  the written files' footers) and per dataset (from the manifests); a violation
  raises and nothing of that batch is committed;
- the quality gate: a batch whose pass rate is below ``min_pass_rate`` is kept
  in silver but not promoted to gold, and refine raises :class:`QualityGateError`
  after writing everything and the report.

``run_pipeline`` refines while it ingests: :class:`RowRefiner` writes each new
bronze part's silver and quarantine files by the row rules in the ingest task,
then :func:`refine_ingested` checks the key rules over the whole batch, refines
again only the parts where one fails, and commits. The files are the ones
``ingest`` then ``refine`` write, in one Ray Data pass instead of one per dataset.

Example:
    >>> from raycore.data.layers import load_dataset_spec, refine
    >>> result = refine([load_dataset_spec("stores")], lake="/tmp/lake")   # doctest: +SKIP
    >>> result.report.tables["stores"].pass_rate                          # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from raycore.data.lake import Lake, frame_digest
from raycore.data.layers.bronze import INGESTED_AT_TYPE, LABEL_TYPE, METADATA_COLUMNS, AfterWrite
from raycore.data.layers.casting import ARROW_TYPES, TypedColumn, silver_series
from raycore.data.layers.engine import Engine, resolve_engine, run_items
from raycore.data.layers.inputs import check_required_columns
from raycore.data.layers.quality import BatchQuality, QualityReport, TableQuality, write_report
from raycore.data.layers.rules import (
    RuleFailures,
    assemble_failures,
    declared_rules,
    key_columns,
    key_rules,
    row_rules,
    type_columns,
)
from raycore.data.layers.snapshots import LakeLike, Part, as_lake, commit, load_manifest, read_parts
from raycore.errors import DataError
from raycore.specs.dataset import DatasetSpec

__all__ = ["RefineResult", "RowRefiner", "order_by_dependencies", "refine", "refine_ingested", "silver_schema"]

KeyFailures = list[tuple[str, np.ndarray, np.ndarray]]  # (rule, row positions, reasons) per part


@dataclass(frozen=True)
class RefineResult:
    """What one refine run did; ``report`` is also written as JSON under ``<lake>/reports/``."""

    report: QualityReport

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def report_path(self) -> str:
        return self.report.path


def refine(
    specs: DatasetSpec | Sequence[DatasetSpec],
    *,
    lake: LakeLike,
    engine: Engine = "auto",
    raise_on_gate: bool = True,
) -> RefineResult:
    """Refine every bronze batch not yet in silver, for one or several datasets.

    Datasets are processed in foreign-key order. Raises :class:`QualityGateError`
    (after writing silver, quarantine and the report) when a batch misses its
    gate, unless ``raise_on_gate`` is False.

    Example:
        >>> result = refine(specs, lake="/tmp/lake", engine="pandas")  # doctest: +SKIP
        >>> result.report.tables["store_sales_weekly"].failing_rules()  # doctest: +SKIP
        {'range:revenue': 0.9993}
    """
    return refine_ingested(specs, lake=lake, engine=engine, raise_on_gate=raise_on_gate, prewritten=None)


def refine_ingested(
    specs: DatasetSpec | Sequence[DatasetSpec],
    *,
    lake: LakeLike,
    engine: Engine = "auto",
    raise_on_gate: bool = True,
    prewritten: Mapping[str, AfterWrite] | None,
) -> RefineResult:
    """:func:`refine`, reusing parts that :class:`RowRefiner` wrote during ingest.

    ``prewritten[dataset]`` holds, per part of that dataset's new batch, what
    ``RowRefiner`` wrote with the row rules alone. A part whose key rules fail is
    refined again here (the key rules need the whole batch and the referenced
    silver rows); the others are only checked and committed, so a clean batch
    costs no second pass over its rows.
    """
    the_lake = as_lake(lake)
    ordered = order_by_dependencies([specs] if isinstance(specs, DatasetSpec) else list(specs))
    started = datetime.now(timezone.utc)
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    pre = prewritten or {}
    tables = {
        spec.name: _refine_dataset(spec, the_lake, engine=engine, run_id=run_id, prewritten=pre.get(spec.name))
        for spec in ordered
    }
    report = QualityReport(
        run_id=run_id,
        engine=engine,
        started_at=started.isoformat(timespec="milliseconds"),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        tables=tables,
        path=the_lake.file(f"reports/silver/{run_id}.json"),
    )
    write_report(the_lake, report)
    for spec in ordered:
        check_reconciliation(the_lake, spec.name)
    error = report.gate_error()
    if raise_on_gate and error is not None:
        raise error
    return RefineResult(report)


def order_by_dependencies(specs: Sequence[DatasetSpec]) -> list[DatasetSpec]:
    """Specs sorted so that referenced datasets come before those referencing them."""
    by_name = {s.name: s for s in specs}
    done: list[DatasetSpec] = []
    visiting: set[str] = set()

    def visit(spec: DatasetSpec) -> None:
        if spec in done:
            return
        if spec.name in visiting:
            raise DataError(f"foreign keys form a cycle through '{spec.name}'", hint="remove one foreign key")
        visiting.add(spec.name)
        for dep in spec.depends_on:
            if dep in by_name:
                visit(by_name[dep])
        visiting.discard(spec.name)
        done.append(spec)

    for spec in specs:
        visit(spec)
    return done


def silver_schema(spec: DatasetSpec) -> pa.Schema:
    """The arrow schema of a silver table: declared columns, then ingest metadata."""
    fields = [pa.field(c.name, ARROW_TYPES[c.dtype], nullable=c.nullable) for c in spec.columns]
    meta = [("_source", LABEL_TYPE), ("_batch_id", LABEL_TYPE), ("_ingested_at", INGESTED_AT_TYPE), ("_row_number", pa.int64())]
    return pa.schema(fields + [pa.field(n, t) for n, t in meta])


def _refine_dataset(
    spec: DatasetSpec, lake: Lake, *, engine: Engine, run_id: str, prewritten: AfterWrite | None = None
) -> TableQuality:
    bronze = load_manifest(lake, "bronze", spec.name).latest
    if bronze is None:
        raise DataError(
            f"dataset '{spec.name}' has no bronze batches to refine",
            hint="ingest it first: raycore.data.layers.ingest(spec, lake=...)",
        )
    done = {v.meta.get("batch_id") for v in load_manifest(lake, "silver", spec.name).versions}
    batches, ignored = [], set()
    for batch_id in bronze.batch_ids:
        if batch_id in done:
            continue
        parts = [p for p in bronze.parts if p.batch_id == batch_id]
        pre = prewritten if prewritten is not None and prewritten.batch_id == batch_id else None
        quality, extra = _refine_batch(spec, lake, parts, batch_id, engine=engine, run_id=run_id, prewritten=pre)
        batches.append(quality)
        ignored |= extra
    return TableQuality(
        dataset=spec.name,
        rules=tuple(declared_rules(spec)),
        batches=tuple(batches),
        min_pass_rate=spec.quality_gate.min_pass_rate,
        ignored_columns=tuple(sorted(ignored)),
    )


def _refine_batch(
    spec: DatasetSpec,
    lake: Lake,
    parts: list[Part],
    batch_id: str,
    *,
    engine: Engine,
    run_id: str,
    prewritten: AfterWrite | None = None,
) -> tuple[BatchQuality, set[str]]:
    fs, _ = lake.filesystem()
    schemas = [pq.read_schema(lake.file(p.path), filesystem=fs) for p in parts]
    ignored: set[str] = set()
    for part, schema in zip(parts, schemas, strict=True):
        check_required_columns(schema.names, spec, where=f"bronze part {part.path}")
        ignored |= {c for c in schema.names if c not in spec.column_names and c not in METADATA_COLUMNS}
    key_failures = _key_failures(spec, lake, parts, schemas)
    done = prewritten.parts if prewritten is not None else {}
    # Parts written during ingest with the row rules alone stand unless a key rule fails in them.
    todo = [i for i in range(len(parts)) if i not in done or key_failures[i]]
    sizes = [fs.get_file_info(lake.file(parts[i].path)).size or 0 for i in todo]
    chosen = resolve_engine(engine, input_bytes=sum(sizes))
    writer = _SilverWriter(spec=spec, lake=lake, batch_id=batch_id, key_failures=tuple(key_failures))

    def refine_part(item: dict[str, Any]) -> list[dict[str, Any]]:
        i = int(item["index"])
        return [{**s, "part": i} for s in writer.refine_part(i, parts[i].path)]

    fresh = run_items(refine_part, [{"index": i} for i in todo], engine=chosen, weights=sizes)
    by_part: dict[int, list[dict[str, Any]]] = {i: list(done[i]) for i in range(len(parts)) if i not in todo}
    for s in fresh:
        by_part.setdefault(int(s.pop("part")), []).append(s)
    rewritten = {s["path"] for i in todo for s in by_part.get(i, []) if "path" in s}
    for i in todo:  # a rewritten part may no longer have a file its first version had
        for s in done.get(i, []):
            if "path" in s and s["path"] not in rewritten:
                fs.delete_file(lake.file(s["path"]))
    summaries = [s for i in range(len(parts)) for s in by_part.get(i, [])]
    used = prewritten.engine if prewritten is not None and not todo else chosen
    silver = [Part(s["path"], s["rows"], s["digest"], batch_id, s["partition"]) for s in summaries if s["kind"] == "silver"]
    quarantined = [Part(s["path"], s["rows"], s["digest"], batch_id) for s in summaries if s["kind"] == "quarantine"]
    failures: dict[str, int] = {}
    for s in summaries:
        for rule, count in s.get("failures", {}).items():
            failures[rule] = failures.get(rule, 0) + count
    rows = sum(p.rows for p in parts)
    written = sum(_footer_rows(lake, p.path) for p in [*silver, *quarantined])
    if written != rows:
        for p in [*silver, *quarantined]:
            fs.delete_file(lake.file(p.path))
        raise DataError(
            f"reconciliation failed for '{spec.name}' batch {batch_id}: bronze has {rows} rows but "
            f"silver + quarantine files hold {written}; the batch was not committed",
            hint="this is a bug or the lake changed during the run; run refine again",
        )
    quality = BatchQuality(
        batch_id=batch_id,
        rows=rows,
        silver_rows=sum(p.rows for p in silver),
        quarantined_rows=sum(p.rows for p in quarantined),
        failures=failures,
        min_pass_rate=spec.quality_gate.min_pass_rate,
        engine=used,
    )
    silver = [Part(p.path, p.rows, p.digest, p.batch_id, p.partition, quality.promoted) for p in silver]
    meta = {"run_id": run_id, **quality.to_dict()}
    meta.pop("failures")
    # Quarantine first: the silver commit marks the batch as refined. Parts of this
    # batch left by an interrupted earlier run are replaced, not doubled.
    previous_q = load_manifest(lake, "quarantine", spec.name).latest
    kept = [p for p in (previous_q.parts if previous_q else ()) if p.batch_id != batch_id]
    commit(lake, "quarantine", spec.name, [*kept, *quarantined], mode="replace", note=f"refine batch {batch_id}", meta=meta)
    commit(lake, "silver", spec.name, silver, mode="append", note=f"refine batch {batch_id}", meta=meta)
    return quality, ignored


def _footer_rows(lake: Lake, path: str) -> int:
    fs, _ = lake.filesystem()
    return int(pq.read_metadata(lake.file(path), filesystem=fs).num_rows)


def _key_failures(spec: DatasetSpec, lake: Lake, parts: list[Part], schemas: list[pa.Schema]) -> list[KeyFailures]:
    """Key rules over the whole batch, on the key columns only; split back per part."""
    cols = key_columns(spec)
    if not cols:
        return [[] for _ in parts]
    typed_parts = []
    for part, schema in zip(parts, schemas, strict=True):
        table = lake.read_arrow(part.path, columns=[c for c in cols if c in schema.names])
        typed_parts.append(type_columns(table, spec, columns=cols))
    typed = {c: _concat_typed([t[c] for t in typed_parts]) for c in cols}
    existing: dict[str, pd.DataFrame | None] = {}
    silver = load_manifest(lake, "silver", spec.name).latest
    if spec.primary_key:
        rule = f"primary_key:{','.join(spec.primary_key)}"
        existing[rule] = read_parts(lake, silver.parts, columns=spec.primary_key) if silver else None
    for col in spec.columns:
        if col.unique and spec.primary_key != [col.name]:
            existing[f"unique:{col.name}"] = read_parts(lake, silver.parts, columns=[col.name]) if silver else None
    references = {}
    for fk in spec.foreign_keys:
        ref = load_manifest(lake, "silver", fk.dataset).latest
        if ref is None:
            raise DataError(
                f"dataset '{spec.name}' references {fk.references} (foreign key '{fk.column}') "
                f"but '{fk.dataset}' has no silver rows yet",
                hint=f"ingest and refine '{fk.dataset}' first, or refine both in one call",
            )
        references[fk.column] = read_parts(lake, ref.parts, columns=[fk.ref_column])[fk.ref_column].drop_duplicates()
    failures = key_rules(typed, spec, existing=existing, references=references)
    per_part: list[KeyFailures] = []
    start = 0
    for part in parts:
        stop = start + part.rows
        mine: KeyFailures = []
        for f in failures:
            positions = np.flatnonzero(f.mask)
            reasons = f.reasons
            sel = (positions >= start) & (positions < stop)
            if sel.any():
                mine.append((f.rule, positions[sel] - start, reasons[sel]))
        per_part.append(mine)
        start = stop
    return per_part


def _concat_typed(columns: list[TypedColumn]) -> TypedColumn:
    if len(columns) == 1:
        return columns[0]
    return TypedColumn(
        values=pd.concat([c.values for c in columns], ignore_index=True),
        missing=np.concatenate([c.missing for c in columns]),
        unparseable=np.concatenate([c.unparseable for c in columns]),
    )


def partition_paths(frame: pd.DataFrame, spec: DatasetSpec) -> pd.Series:
    """The hive-style partition folder of every row (``col=value/...``)."""
    unit = {"day": "D", "month": "M", "year": "Y", "value": "D"}[spec.partition_granularity]
    keys: pd.Series | None = None
    for name in spec.partition_by:
        values = frame[name].to_numpy()
        label = name
        if spec.column(name).dtype in ("datetime", "date"):
            values = values.astype(f"datetime64[{unit}]")
            if spec.partition_granularity != "value":
                label = f"{name}_{spec.partition_granularity}"
        # Format each distinct value once: the partition columns have few of them.
        codes, uniques = pd.factorize(values)
        labels = np.asarray([f"{label}={_partition_value(u)}" for u in uniques], dtype=object)
        piece = pd.Series(labels[codes], index=frame.index)
        keys = piece if keys is None else keys + "/" + piece
    assert keys is not None
    return keys


def _partition_value(value: Any) -> str:
    return str(np.datetime_as_string(value)) if isinstance(value, np.datetime64) else str(value)


@dataclass(frozen=True)
class _SilverWriter:
    """Types, validates and writes one bronze part; runs in the driver or in a Ray task."""

    spec: DatasetSpec
    lake: Lake
    batch_id: str
    key_failures: tuple[KeyFailures, ...]

    def refine_part(self, index: int, path: str, table: pa.Table | None = None) -> list[dict[str, Any]]:
        """Refine the bronze part at ``path`` (``table``: its content, if already in memory)."""
        spec, n_name = self.spec, f"part-{index:05d}.parquet"
        table = self.lake.read_arrow(path) if table is None else table
        n = table.num_rows
        typed = type_columns(table, spec)
        failures = row_rules(table, typed, spec)
        for rule, positions, why in self.key_failures[index] if self.key_failures else ():
            mask = np.zeros(n, dtype=bool)
            mask[positions] = True
            failures.append(RuleFailures(rule, mask, why))
        bad, rules, reasons = assemble_failures(n, failures)
        good = np.flatnonzero(~bad)
        out: list[dict[str, Any]] = [{"kind": "counts", "failures": {f.rule: f.count for f in failures}}]

        silver = pd.DataFrame({c.name: silver_series(typed[c.name], c, good) for c in spec.columns})
        meta = table.select(list(METADATA_COLUMNS)).take(pa.array(good)).to_pandas()
        silver = pd.concat([silver, meta], axis=1)
        groups = [("", silver)] if not spec.partition_by else list(silver.groupby(partition_paths(silver, spec), sort=True))
        if not groups:  # no row passed: an empty part still records the silver schema
            groups = [("", silver)]
        for key, frame in groups:
            frame = frame.reset_index(drop=True)
            folder = f"silver/{spec.name}/{key + '/' if key else ''}_batch_id={self.batch_id}"
            target = f"{folder}/{n_name}"
            self.lake.write_arrow(target, pa.Table.from_pandas(frame, schema=silver_schema(spec), preserve_index=False))
            out.append({"kind": "silver", "path": target, "rows": len(frame), "digest": frame_digest(frame), "partition": key or None})

        if bad.any():
            quarantine = table.filter(pa.array(bad)).to_pandas()
            quarantine["_failed_rules"] = rules
            quarantine["_reasons"] = reasons
            target = f"quarantine/{spec.name}/_batch_id={self.batch_id}/{n_name}"
            self.lake.write_arrow(target, pa.Table.from_pandas(quarantine, preserve_index=False))
            out.append({"kind": "quarantine", "path": target, "rows": len(quarantine), "digest": frame_digest(quarantine)})
        return out


@dataclass(frozen=True)
class RowRefiner:
    """A :data:`~raycore.data.layers.bronze.PartHook` that refines a fresh bronze part by its row rules.

    Run inside the ingest task, it writes the part's silver and quarantine files as
    if no key rule failed; :func:`refine_ingested` then checks the key rules over
    the whole batch and refines again only the parts where one fails.
    """

    lake: Lake

    def __call__(self, spec: DatasetSpec, batch_id: str, index: int, path: str, table: pa.Table) -> list[dict[str, Any]]:
        writer = _SilverWriter(spec=spec, lake=self.lake, batch_id=batch_id, key_failures=())
        # The part in memory is what a read would return only if parquet kept every type
        # (it stores timestamp[s] as ms, for one): then skip the read, else read it back.
        fs, _ = self.lake.filesystem()
        kept = pq.read_schema(self.lake.file(path), filesystem=fs).remove_metadata().equals(table.schema.remove_metadata())
        return writer.refine_part(index, path, table if kept else None)


def check_reconciliation(lake: Lake, dataset: str) -> None:
    """Raise unless bronze rows of refined batches = silver rows + quarantined rows."""
    bronze = load_manifest(lake, "bronze", dataset).latest
    silver = load_manifest(lake, "silver", dataset)
    quarantine = load_manifest(lake, "quarantine", dataset).latest
    refined = {v.meta.get("batch_id") for v in silver.versions}
    expected = sum(p.rows for p in (bronze.parts if bronze else ()) if p.batch_id in refined)
    got_silver = silver.latest.rows if silver.latest else 0
    got_quarantine = quarantine.rows if quarantine else 0
    if expected != got_silver + got_quarantine:
        raise DataError(
            f"reconciliation failed for '{dataset}': bronze has {expected} rows in refined batches but "
            f"silver has {got_silver} and quarantine {got_quarantine} (sum {got_silver + got_quarantine})",
            hint="the lake's manifests were changed outside the foundry; restore them from the parts or re-ingest",
        )
