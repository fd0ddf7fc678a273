"""What the lake holds: every layer table's latest version, pass rates and quarantine.

Example:
    >>> from raycore.data.layers import quarantine, status
    >>> status("/tmp/lake").to_frame()                  # doctest: +SKIP
         layer               table  version            digest   rows  ...
    >>> quarantine("store_sales_weekly", lake="/tmp/lake")[["_failed_rules", "_reasons"]]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
import pyarrow.fs as pafs

from raycore.data.layers.bronze import METADATA_COLUMNS
from raycore.data.layers.snapshots import LAYERS, LakeLike, as_lake, load_manifest, read
from raycore.errors import DataError

__all__ = ["LakeStatus", "TableStatus", "quarantine", "status"]


@dataclass(frozen=True)
class TableStatus:
    """The latest version of one layer table.

    For silver tables, ``pass_rate`` is silver rows / (silver + quarantined rows)
    over all refined batches, ``quarantined_rows`` the quarantine's size, and
    ``last_batch_pass_rate`` / ``last_batch_promoted`` describe the newest batch.
    """

    layer: str
    table: str
    version: int
    digest: str
    rows: int
    parts: int
    created_at: str
    pass_rate: float | None = None
    quarantined_rows: int | None = None
    last_batch_pass_rate: float | None = None
    last_batch_promoted: bool | None = None


@dataclass(frozen=True)
class LakeStatus:
    """Every layer table in one lake."""

    root: str
    tables: tuple[TableStatus, ...]

    def get(self, layer: str, table: str) -> TableStatus | None:
        return next((t for t in self.tables if t.layer == layer and t.table == table), None)

    def to_frame(self) -> pd.DataFrame:
        columns = list(TableStatus.__dataclass_fields__)
        return pd.DataFrame([asdict(t) for t in self.tables], columns=columns)


def status(lake: LakeLike) -> LakeStatus:
    """List every layer table of ``lake`` with rows, digest and (silver) quality.

    Example:
        >>> status("/tmp/lake").get("silver", "stores").pass_rate  # doctest: +SKIP
        1.0
    """
    the_lake = as_lake(lake)
    fs, _ = the_lake.filesystem()
    tables: list[TableStatus] = []
    for layer in LAYERS:
        folder = the_lake.file(f"_manifests/{layer}")
        if fs.get_file_info(folder).type != pafs.FileType.Directory:
            continue
        names = sorted(i.base_name[: -len(".json")] for i in fs.get_file_info(pafs.FileSelector(folder)) if i.base_name.endswith(".json"))
        for name in names:
            latest = load_manifest(the_lake, layer, name).latest
            if latest is None:
                continue
            extra: dict[str, float | int | bool | None] = {}
            if layer == "silver":
                q = load_manifest(the_lake, "quarantine", name).latest
                q_rows = q.rows if q else 0
                total = latest.rows + q_rows
                extra = {
                    "pass_rate": round(latest.rows / total, 6) if total else 1.0,
                    "quarantined_rows": q_rows,
                    "last_batch_pass_rate": latest.meta.get("pass_rate"),
                    "last_batch_promoted": latest.meta.get("promoted"),
                }
            tables.append(
                TableStatus(
                    layer=layer,
                    table=name,
                    version=latest.version,
                    digest=latest.digest,
                    rows=latest.rows,
                    parts=len(latest.parts),
                    created_at=latest.created_at,
                    **extra,  # type: ignore[arg-type]
                )
            )
    return LakeStatus(root=the_lake.root, tables=tuple(tables))


def quarantine(dataset: str, *, lake: LakeLike, as_of: int | str | None = None) -> pd.DataFrame:
    """The quarantined rows of a dataset: raw values plus ``_failed_rules`` and ``_reasons``.

    Example:
        >>> bad = quarantine("stores", lake="/tmp/lake")               # doctest: +SKIP
        >>> bad["_failed_rules"].str.split("; ").explode().value_counts()  # doctest: +SKIP
    """
    the_lake = as_lake(lake)
    if load_manifest(the_lake, "silver", dataset).latest is None:
        raise DataError(
            f"dataset '{dataset}' was never refined, so it has no quarantine",
            hint="refine it first: raycore.data.layers.refine(spec, lake=...)",
        )
    frame = read(dataset, lake=the_lake, layer="quarantine", as_of=as_of)
    if frame.empty and "_failed_rules" not in frame.columns:
        return pd.DataFrame(columns=[*METADATA_COLUMNS, "_failed_rules", "_reasons"])
    return frame
