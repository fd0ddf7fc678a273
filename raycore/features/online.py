"""The online store: the latest feature row per entity, for serving.

Two implementations of one interface: SQLite (embedded default, a file under
FOUNDRY_HOME) and Redis (scale-out). Both store each entity's row as JSON
(Python's float repr round-trips exactly; dates as ISO strings), so a value
read back equals the value written.

Example:
    >>> store = open_online_store(settings)                             # doctest: +SKIP
    >>> materialize_online(STORE_WEEKLY_STATS, rows, store=store)        # doctest: +SKIP
    >>> store.read("store_weekly_stats_v1", [(3,)])                      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from raycore.errors import ConfigurationError, DataError
from raycore.features.pit import point_in_time_join
from raycore.features.table import FeatureTable

__all__ = [
    "OnlineStore",
    "RedisOnlineStore",
    "SqliteOnlineStore",
    "latest_rows",
    "materialize_online",
    "open_online_store",
]

Key = tuple[Any, ...]


class OnlineStore(Protocol):
    """Latest feature values per entity key, by feature-table store name."""

    def write(self, table: str, rows: Sequence[tuple[Key, dict[str, Any]]]) -> int:
        """Upsert ``(key, values)`` rows; return how many were written."""
        ...

    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        """Values for each key in order; None where the entity is unknown."""
        ...

    def count(self, table: str) -> int: ...

    def close(self) -> None: ...


def _encode_key(key: Key) -> str:
    return json.dumps([_plain(v) for v in key], separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _encode_values(values: dict[str, Any]) -> str:
    return json.dumps({k: _plain(v) for k, v in values.items()}, separators=(",", ":"), allow_nan=False)


class SqliteOnlineStore:
    """Embedded online store: one SQLite file, one table per feature table version."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._known: set[str] = set()

    def _ensure(self, table: str) -> str:
        name = f"ft_{table}"
        if not name.replace("_", "").isalnum():
            raise DataError(f"invalid feature table name {table!r}", hint="use letters, digits and underscores")
        if name not in self._known:
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            self._known.add(name)
        return name

    def write(self, table: str, rows: Sequence[tuple[Key, dict[str, Any]]]) -> int:
        payload = [(_encode_key(k), _encode_values(v)) for k, v in rows]
        with self._lock:
            name = self._ensure(table)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(f"INSERT OR REPLACE INTO {name} (k, v) VALUES (?, ?)", payload)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(payload)

    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        encoded = [_encode_key(k) for k in keys]
        with self._lock:
            name = self._ensure(table)
            if len(encoded) == 1:
                row = self._conn.execute(f"SELECT k, v FROM {name} WHERE k = ?", encoded).fetchone()
                found = {row[0]: row[1]} if row else {}
            else:
                found = {}
                for i in range(0, len(encoded), 500):
                    chunk = encoded[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    found.update(self._conn.execute(f"SELECT k, v FROM {name} WHERE k IN ({marks})", chunk).fetchall())
        return [json.loads(found[k]) if k in found else None for k in encoded]

    def count(self, table: str) -> int:
        with self._lock:
            name = self._ensure(table)
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


class RedisOnlineStore:
    """Scale-out online store on Redis: one string key per entity, read with MGET."""

    def __init__(self, url: str, *, prefix: str = "foundry:ft") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - redis is a dependency
            raise ConfigurationError("the redis package is not installed", hint="pip install redis") from exc
        self.url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=5.0)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise ConfigurationError(
                f"cannot reach Redis at {url}: {exc}",
                hint="start redis-server or unset FOUNDRY_ONLINE_STORE_URI to use the embedded SQLite store",
            ) from exc

    def _key(self, table: str, key: Key) -> str:
        return f"{self.prefix}:{table}:{_encode_key(key)}"

    def write(self, table: str, rows: Sequence[tuple[Key, dict[str, Any]]]) -> int:
        pipe = self._client.pipeline(transaction=True)
        for key, values in rows:
            pipe.set(self._key(table, key), _encode_values(values))
        pipe.execute()
        return len(rows)

    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        raw = self._client.mget([self._key(table, k) for k in keys])
        return [json.loads(v) if v is not None else None for v in raw]

    def count(self, table: str) -> int:
        return sum(1 for _ in self._client.scan_iter(match=f"{self.prefix}:{table}:*", count=1000))

    def close(self) -> None:
        self._client.close()


def open_online_store(*, uri: str | None, home: Path) -> OnlineStore:
    """The configured online store: Redis for ``redis://`` URIs, else SQLite under ``home``."""
    if uri and uri.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(uri)
    if uri and not uri.startswith("sqlite:///"):
        raise ConfigurationError(
            f"unsupported online store URI {uri!r}", hint="use redis://host:port/db or sqlite:///path"
        )
    path = Path(uri[len("sqlite:///") :]) if uri else home / "online.db"
    return SqliteOnlineStore(path)


def latest_rows(table: FeatureTable, rows: pd.DataFrame, *, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """The row per entity that a point-in-time join at ``as_of`` would pick (default: now)."""
    when = pd.Timestamp.now() if as_of is None else pd.Timestamp(as_of)
    entities = rows[list(table.entity)].drop_duplicates().reset_index(drop=True)
    labels = entities.assign(**{"__as_of__": when})
    joined = point_in_time_join(
        labels, rows, entity=list(table.entity), as_of="__as_of__", event_time=table.event_time,
        available_time="available_at", ttl=None, columns=table.field_names,
    )
    return joined.drop(columns="__as_of__").dropna(subset=table.field_names).reset_index(drop=True)


def materialize_online(
    table: FeatureTable, rows: pd.DataFrame, *, store: OnlineStore, as_of: pd.Timestamp | None = None
) -> int:
    """Write each entity's latest visible row (as of ``as_of``) to the online store."""
    latest = latest_rows(table, rows, as_of=as_of)
    keys = list(latest[list(table.entity)].itertuples(index=False, name=None))
    values = latest[table.field_names].to_dict("records")
    return store.write(table.store_name, list(zip(keys, values, strict=True)))
