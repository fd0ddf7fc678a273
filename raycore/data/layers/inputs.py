"""Raw inputs of a bronze batch: find the files, digest their content, parse them.

CSV is read with every column as text (bronze keeps what arrived; silver types
it), parquet with its own types. Reads retry transient ``OSError`` with
exponential backoff; a file that cannot be parsed raises :class:`DataError`
naming the file.

Example:
    >>> policy = RetryPolicy(attempts=3, base_delay_s=0.01)
    >>> policy.delays()
    [0.01, 0.02]
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raycore.data.lake import Lake
from raycore.errors import DataError
from raycore.specs.dataset import DatasetSpec

__all__ = [
    "InputFile",
    "Inputs",
    "RetryPolicy",
    "SourceLike",
    "check_required_columns",
    "frame_to_arrow",
    "parse_file",
    "resolve_inputs",
]

T = TypeVar("T")
Format = Literal["parquet", "csv"]
SourceLike: TypeAlias = pd.DataFrame | str | os.PathLike[str]
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Missing errors are not transient: retrying them only delays a clear message.
_PERMANENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for transient read failures (OSError)."""

    attempts: int = 4
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError(
                f"need 0 <= base_delay_s <= max_delay_s, got {self.base_delay_s} and {self.max_delay_s}"
            )

    def delays(self) -> list[float]:
        """The waits between attempts."""
        return [min(self.base_delay_s * 2**i, self.max_delay_s) for i in range(self.attempts - 1)]

    def call(self, fn: Callable[[], T], *, what: str) -> T:
        """Run ``fn``, retrying transient OSErrors; the last failure becomes a DataError."""
        delays = self.delays()
        for attempt in range(self.attempts):
            try:
                return fn()
            except _PERMANENT as exc:
                raise DataError(f"cannot read {what}: {exc}", hint="check the path and permissions") from exc
            except OSError as exc:
                if attempt == self.attempts - 1:
                    raise DataError(
                        f"cannot read {what} after {self.attempts} attempts: {exc}",
                        hint="the storage kept failing; check it and ingest again (ingest is idempotent)",
                    ) from exc
                self.sleep(delays[attempt])
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class InputFile:
    """One raw input file on a pyarrow filesystem."""

    filesystem: pafs.FileSystem
    path: str
    format: Format
    name: str  # as shown in _source and in errors

    def read_bytes(self, retry: RetryPolicy) -> bytes:
        def read() -> bytes:
            with self.filesystem.open_input_stream(self.path) as stream:
                return bytes(stream.read())

        return retry.call(read, what=self.name)

    def content_digest(self, retry: RetryPolicy) -> str:
        """sha256 of the file's bytes, streamed (the file is not held in memory)."""

        def digest() -> str:
            h = hashlib.sha256()
            with self.filesystem.open_input_stream(self.path) as stream:
                while chunk := stream.read(8 << 20):
                    h.update(chunk)
            return h.hexdigest()

        return retry.call(digest, what=self.name)


@dataclass(frozen=True)
class Inputs:
    """What one ingest reads: either files, or a frame already in memory."""

    files: tuple[InputFile, ...] = ()
    frame: pd.DataFrame | None = None
    frame_name: str = "dataframe"

    def total_bytes(self) -> int:
        if self.frame is not None:
            return int(self.frame.memory_usage(deep=False).sum())
        return sum(f.filesystem.get_file_info(f.path).size or 0 for f in self.files)


def resolve_inputs(
    spec: DatasetSpec,
    *,
    source: SourceLike | None,
    lake: Lake,
    filesystem: pafs.FileSystem | None = None,
    world_prefix: str = "world/7-small",
) -> Inputs:
    """Resolve a batch's inputs: ``source`` if given, else the spec's source."""
    if isinstance(source, pd.DataFrame):
        return Inputs(frame=source)
    if source is not None:
        return Inputs(files=_list_files(str(source), fmt=None, default=spec.source.format, filesystem=filesystem))
    if spec.source.table is not None:
        name = f"{world_prefix}/tables/{spec.source.table}"
        if not lake.exists(name):
            raise DataError(
                f"data-world table '{spec.source.table}' is not in the lake at {lake.root}/{world_prefix}",
                hint="write the world first (raycore.data.sources.ensure_world) or pass source=<file or frame>",
            )
        fs, _ = lake.filesystem()
        return Inputs(files=(InputFile(fs, lake.path(name), "parquet", lake.path(name)),))
    assert spec.source.path is not None  # DataSourceSpec guarantees one of table/path
    return Inputs(files=_list_files(spec.source.path, fmt=spec.source.format, default="parquet", filesystem=filesystem))


def _list_files(
    uri: str, *, fmt: Format | None, default: Format, filesystem: pafs.FileSystem | None
) -> tuple[InputFile, ...]:
    if filesystem is not None:
        fs, path = filesystem, uri
    elif "://" in uri:
        try:
            fs, path = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot open source {uri!r}: {exc}", hint="use a local path or a pyarrow URI") from exc
    else:
        fs, path = pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"source {uri!r} does not exist", hint="check the path in the dataset spec or source=")
    if info.type == pafs.FileType.File:
        chosen = fmt or _EXTENSIONS.get(Path(path).suffix.lower(), default)
        return (InputFile(fs, path, chosen, uri),)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    files = []
    for item in sorted(infos, key=lambda i: i.path):
        base = item.base_name
        if item.type != pafs.FileType.File or base.startswith((".", "_")):
            continue
        kind = _EXTENSIONS.get(Path(base).suffix.lower())
        if kind is not None and (fmt is None or kind == fmt):
            files.append(InputFile(fs, item.path, kind, item.path))
    if not files:
        raise DataError(
            f"source folder {uri!r} holds no {fmt or 'csv/parquet'} files",
            hint="put .csv or .parquet files in it, or point source at a file",
        )
    return tuple(files)


def parse_file(data: bytes, *, fmt: Format, name: str, typed_columns: Sequence[str] = ()) -> pa.Table:
    """Parse raw bytes: parquet as stored; CSV as text except ``typed_columns``.

    The CSV reader types a column of ``typed_columns`` (numbers, dates, booleans)
    only when every value of it parses, else keeps it as text, so no raw value is
    lost; every other column (declared text, undeclared) stays text verbatim.
    Typed columns make bronze ~5x cheaper to write, digest and refine.
    """
    try:
        if fmt == "parquet":
            return pq.read_table(pa.BufferReader(data))
        header = _csv_header(data)
        return pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header if c not in typed_columns},
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise DataError(
            f"input file {name} is corrupt or not valid {fmt}: {exc}",
            hint=f"replace the file with a valid {fmt} file (nothing was written for this batch)",
        ) from exc


def _csv_header(data: bytes) -> list[str]:
    first = data[: data.find(b"\n") if b"\n" in data else len(data)].decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(first)), [])
    if not header:
        raise csv.Error("the file is empty or has no header line")
    return header


def frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A frame as arrow; object columns arrow cannot type are kept as text."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        fixed = frame.copy()
        for col in fixed.columns[fixed.dtypes.map(pd.api.types.is_object_dtype)]:
            fixed[col] = fixed[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        return pa.Table.from_pandas(fixed, preserve_index=False)


def check_required_columns(found: Sequence[str], spec: DatasetSpec, *, where: str) -> None:
    """A missing required column fails the whole batch, naming the column and what was found."""
    missing = [c for c in spec.required_columns if c not in found]
    if missing:
        shown = [c for c in found if not c.startswith("_")]
        raise DataError(
            f"{where}: required column(s) {missing} of dataset '{spec.name}' are missing; "
            f"found columns: {shown}",
            hint="add the column(s) to the input, or mark them 'required: false' (and nullable) in the spec; "
            "nothing was written for this batch",
        )
