"""Small JSON state files under FOUNDRY_HOME: atomic writes, a file lock, change stamps.

Live operator state (thresholds, traffic policies, retrain state) is a few
hundred bytes per model. It is written to a temp file and renamed over the old
one, so a reader never sees half a file; writers serialise with ``flock`` on a
lock file next to it; readers that poll compare ``change_stamp`` (mtime and
inode: every rename makes a new inode) before re-reading.

Example:
    >>> with file_lock(Path("/tmp/x/.lock")):                 # doctest: +SKIP
    ...     write_json_atomic(Path("/tmp/x/m.json"), {"a": 1})
    >>> read_json(Path("/tmp/x/m.json"))                         # doctest: +SKIP
    {'a': 1}
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["change_stamp", "file_lock", "read_json", "write_json_atomic"]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fd:
        fcntl.flock(fd.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd.fileno(), fcntl.LOCK_UN)


def write_json_atomic(path: Path, data: Any, *, mode: int | None = None) -> None:
    """Write ``data`` as JSON to ``path`` through a temp file and a rename (fsync'd).

    ``mode`` (e.g. ``0o600`` for a file of secrets' hashes) is set before any byte is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when the file does not exist (invalid JSON raises ValueError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json.loads(text)


def change_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, inode) of ``path``, or None when it does not exist: cheap change detection."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino)
