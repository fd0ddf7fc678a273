"""The audit log: every alias change with who, when, why, evidence and the previous holder.

MLflow keeps the current alias only; this log keeps the history. It is a
SQLite file under FOUNDRY_HOME in WAL mode with a busy timeout, so several
processes can write at once without "database is locked".

Example:
    >>> log = AuditLog(Path("/tmp/audit.db"))                       # doctest: +SKIP
    >>> log.record(model="sales_forecasting", action="promote", alias="champion",
    ...            version="3", previous="2", actor="cli:alice", reason="better MAPE")  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["AuditEvent", "AuditLog", "default_actor"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    alias TEXT,
    version TEXT,
    previous TEXT,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_model ON audit_events(model, id);
"""


def default_actor() -> str:
    """Who is acting: the OS user, for commands run by a person."""
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover - no passwd entry in some containers
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: str
    model: str
    action: str
    alias: str | None
    version: str | None
    previous: str | None
    actor: str
    reason: str
    evidence: dict[str, Any]


class AuditLog:
    """Append-only record of registry decisions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def record(
        self,
        *,
        model: str,
        action: str,
        actor: str,
        reason: str,
        alias: str | None = None,
        version: str | None = None,
        previous: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> int:
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO audit_events (at, model, action, alias, version, previous, actor, reason, evidence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (at, model, action, alias, version, previous, actor, reason, json.dumps(evidence or {}, sort_keys=True)),
            )
            return int(cur.lastrowid or 0)

    def history(self, model: str | None = None) -> list[AuditEvent]:
        with self._connect() as conn:
            if model is None:
                rows = conn.execute("SELECT * FROM audit_events ORDER BY id").fetchall()
            else:
                rows = conn.execute("SELECT * FROM audit_events WHERE model = ? ORDER BY id", (model,)).fetchall()
        return [
            AuditEvent(
                id=r[0], at=r[1], model=r[2], action=r[3], alias=r[4], version=r[5],
                previous=r[6], actor=r[7], reason=r[8], evidence=json.loads(r[9]),
            )
            for r in rows
        ]
