"""The parquet lake: tables stored under one root, a local path or a filesystem URI.

The embedded default is ``$FOUNDRY_HOME/lake``; any URI that pyarrow
understands (``s3://bucket/lake``, ``gs://...``) works the same way.

Example:
    >>> lake = Lake("/tmp/lake")
    >>> lake.write("world/tables/stores", df)          # doctest: +SKIP
    >>> lake.read("world/tables/stores").shape        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raycore.errors import DataError

__all__ = ["Lake", "frame_digest"]


@dataclass(frozen=True)
class Lake:
    """A root under which each table is one parquet file ``<root>/<name>.parquet``."""

    root: str

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        try:
            return pafs.FileSystem.from_uri(self.root) if "://" in self.root else (pafs.LocalFileSystem(), self.root)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"cannot open lake root {self.root!r}: {exc}",
                hint="set FOUNDRY_LAKE_URI to a local folder or a pyarrow filesystem URI",
            ) from exc

    def path(self, name: str) -> str:
        _, base = self._fs()
        return f"{base.rstrip('/')}/{name}.parquet"

    def exists(self, name: str) -> bool:
        fs, _ = self._fs()
        return fs.get_file_info(self.path(name)).type == pafs.FileType.File

    def write(self, name: str, frame: pd.DataFrame) -> str:
        """Write a table atomically (temp file, then rename) and return its content digest."""
        fs, _ = self._fs()
        target = self.path(name)
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        tmp = target + ".tmp"
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, target)
        return frame_digest(frame)

    def read(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        fs, _ = self._fs()
        target = self.path(name)
        if fs.get_file_info(target).type != pafs.FileType.File:
            raise DataError(
                f"table '{name}' is not in the lake at {self.root}",
                hint="generate or ingest it first, e.g. `foundry data generate`",
            )
        try:
            return pq.read_table(target, columns=columns, filesystem=fs).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"table '{name}' at {target} is unreadable: {exc}",
                hint="the file is corrupt or was written partly; re-generate or re-ingest it",
            ) from exc

    # --- file-level access, used by the medallion layers (raycore.data.layers) ---

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The pyarrow filesystem of the root and the root's path inside it."""
        fs, base = self._fs()
        return fs, base.rstrip("/")

    def file(self, relpath: str) -> str:
        """Full path (inside :meth:`filesystem`) of a file or folder under the root."""
        _, base = self.filesystem()
        return f"{base}/{relpath.lstrip('/')}"

    def file_exists(self, relpath: str) -> bool:
        fs, _ = self.filesystem()
        return fs.get_file_info(self.file(relpath)).type == pafs.FileType.File

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Write a file atomically (unique temp file, then rename); return its full path."""
        fs, _ = self.filesystem()
        target = self.file(relpath)
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, target)
        return target

    def read_bytes(self, relpath: str) -> bytes:
        fs, _ = self.filesystem()
        target = self.file(relpath)
        try:
            with fs.open_input_stream(target) as stream:
                return bytes(stream.read())
        except FileNotFoundError as exc:
            raise DataError(f"{target} is not in the lake", hint="check the lake root and the name") from exc
        except OSError as exc:
            raise DataError(f"cannot read {target}: {exc}", hint="check the lake's storage") from exc

    def write_arrow(self, relpath: str, table: pa.Table) -> str:
        """Write an arrow table as one parquet file atomically; return its full path."""
        fs, _ = self.filesystem()
        target = self.file(relpath)
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, target)
        return target

    def read_arrow(self, relpath: str, columns: list[str] | None = None) -> pa.Table:
        """Read one parquet file under the root; a missing or corrupt file raises DataError."""
        fs, _ = self.filesystem()
        target = self.file(relpath)
        try:
            return pq.read_table(target, columns=columns, filesystem=fs)
        except FileNotFoundError as exc:
            raise DataError(
                f"{target} is listed but missing from the lake",
                hint="the lake was changed outside the foundry; restore the file or re-ingest",
            ) from exc
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"{target} is unreadable: {exc}",
                hint="the file is corrupt or was written partly; restore it or re-ingest",
            ) from exc

    def delete_dir(self, relpath: str) -> None:
        """Delete a folder under the root if it exists (cleanup of a failed write)."""
        fs, _ = self.filesystem()
        target = self.file(relpath)
        if fs.get_file_info(target).type == pafs.FileType.Directory:
            fs.delete_dir(target)


def frame_digest(frame: pd.DataFrame) -> str:
    """A content digest of a frame: equal data (values, columns, dtypes) gives an equal digest."""
    h = hashlib.sha256()
    h.update(repr(list(zip(frame.columns, map(str, frame.dtypes), strict=True))).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
