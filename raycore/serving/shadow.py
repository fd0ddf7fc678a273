"""Shadow calls: the challenger answers a copy of live traffic, and only the log hears it.

``run_shadow`` returns the primary's answer and sends the shadow copy
fire-and-forget in its own asyncio task: the shadow's answer is never
returned, its exceptions are swallowed and counted, and a slow shadow is
cancelled after ``timeout_s``. Once both have finished, one comparison record
(both answers, errors, latency, agreement) is appended to
``$FOUNDRY_HOME/shadow/<model>/<host>-<pid>.jsonl``; ``shadow_stats`` reads
every record back into agreement and failure figures.

Example:
    >>> stats = shadow_stats(home=Path("/tmp/no-such-home"), model="m")
    >>> (stats.records, stats.agree_rate)
    (0, None)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ShadowCounters",
    "ShadowLog",
    "ShadowStats",
    "compare_answers",
    "run_shadow",
    "shadow_stats",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
PRIMARY = "champion"


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class ShadowLog:
    """Append-only JSONL comparison records under ``$FOUNDRY_HOME/shadow/<model>/``.

    Each process writes its own file (``<host>-<pid>.jsonl``), one line per
    record in a single write, so replicas never interleave.
    """

    def __init__(self, *, home: Path, model: str) -> None:
        self.folder = Path(home) / "shadow" / model
        self.model = model
        self._lock = threading.Lock()
        self.written = 0

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps({"model": self.model, **record}, default=str, sort_keys=True) + "\n"
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{socket.gethostname()}-{os.getpid()}.jsonl"
        with self._lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
        self.written += 1

    def records(self) -> list[dict[str, Any]]:
        """Every record of this model, all processes, in file order."""
        out = []
        for path in sorted(self.folder.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out.append(json.loads(line))
        return out


@dataclass
class ShadowCounters:
    """What the shadow path did in this process."""

    started: int = 0
    failed: int = 0
    logged: int = 0
    log_errors: int = 0


def _numbers(answer: Any) -> list[float] | None:
    if isinstance(answer, Mapping):
        answer = answer.get("predictions")
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, (int, float)):
        return [float(answer)]
    if isinstance(answer, (list, tuple)):
        out: list[float] = []
        for item in answer:
            inner = _numbers(item)
            if inner is None:
                return None
            out.extend(inner)
        return out
    return None


def compare_answers(primary: Any, shadow: Any) -> dict[str, Any]:
    """How far a shadow answer is from the primary's: numeric max abs difference, else equality."""
    a, b = _numbers(primary), _numbers(shadow)
    if a is not None and b is not None and len(a) == len(b):
        diff = max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)
        return {"agree": diff <= 1e-9, "max_abs_diff": diff}
    return {"agree": primary == shadow, "max_abs_diff": None}


async def run_shadow(
    *,
    primary: Awaitable[T],
    shadow: Callable[[], Awaitable[Any]] | None,
    log_to: ShadowLog,
    primary_alias: str = PRIMARY,
    shadow_alias: str | None = None,
    request_id: str | None = None,
    counters: ShadowCounters | None = None,
    tasks: set[asyncio.Task[Any]] | None = None,
    timeout_s: float = 30.0,
) -> T:
    """Return the primary's answer; send a shadow copy fire-and-forget and log both answers.

    The shadow starts alongside the primary in its own task; whatever it does
    (answer, raise, hang) never changes what the caller gets. Its exceptions
    are swallowed and counted; once both have finished, one comparison
    record goes to ``log_to`` (a shadow slower than ``timeout_s`` is
    cancelled and logged as failed). ``tasks`` keeps the background tasks
    referenced (pass a set owned by the replica; one is made otherwise).

    Example:
        >>> answer = await run_shadow(primary=call("champion"), shadow=lambda: call("challenger"),
        ...                           log_to=ShadowLog(home=home, model="m"), shadow_alias="challenger")  # doctest: +SKIP
    """
    started = time.perf_counter()
    primary_task: asyncio.Future[T] = asyncio.ensure_future(primary)
    if shadow is not None:
        counters = counters if counters is not None else ShadowCounters()
        pending = tasks if tasks is not None else _BACKGROUND
        job = asyncio.ensure_future(
            _shadow_job(
                primary_task,
                shadow,
                log_to=log_to,
                counters=counters,
                started=started,
                primary_alias=primary_alias,
                shadow_alias=shadow_alias or "?",
                request_id=request_id,
                timeout_s=timeout_s,
            )
        )
        pending.add(job)
        job.add_done_callback(pending.discard)
    return await primary_task


_BACKGROUND: set[asyncio.Task[Any]] = set()


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an error; for a Ray task error, of the user's exception inside it."""
    cause = getattr(
        exc, "cause", None
    )  # RayTaskError wraps the replica's exception with a long traceback
    inner = cause if isinstance(cause, BaseException) else exc
    return f"{type(inner).__name__}: {inner}"[:500]


async def _shadow_job(
    primary_task: asyncio.Future[Any],
    shadow: Callable[[], Awaitable[Any]],
    *,
    log_to: ShadowLog,
    counters: ShadowCounters,
    started: float,
    primary_alias: str,
    shadow_alias: str,
    request_id: str | None,
    timeout_s: float,
) -> None:
    counters.started += 1
    shadow_answer: Any = None
    shadow_error: str | None = None
    try:
        shadow_answer = await asyncio.wait_for(shadow(), timeout=timeout_s)
    except asyncio.TimeoutError as exc:
        shadow_error = f"{type(exc).__name__}: no answer within {timeout_s:g} s"
        counters.failed += 1
    except Exception as exc:  # the shadow's failures never reach the caller
        shadow_error = _describe(exc)
        counters.failed += 1
    shadow_ms = (time.perf_counter() - started) * 1000.0
    primary_answer: Any = None
    primary_error: str | None = None
    try:
        primary_answer = await asyncio.shield(primary_task)
    except BaseException as exc:  # the caller sees the primary's error; the record notes it
        primary_error = _describe(exc)
    record = {
        "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "request_id": request_id,
        "primary_alias": primary_alias,
        "shadow_alias": shadow_alias,
        "primary": primary_answer,
        "shadow": shadow_answer,
        "primary_error": primary_error,
        "shadow_error": shadow_error,
        "shadow_ms": round(shadow_ms, 3),
        **(
            compare_answers(primary_answer, shadow_answer)
            if shadow_error is None and primary_error is None
            else {"agree": None, "max_abs_diff": None}
        ),
    }
    try:
        log_to.write(record)
        counters.logged += 1
    except Exception:  # a full disk must not take the replica down with it
        counters.log_errors += 1
        log.exception("cannot write a shadow comparison record for %s", log_to.model)


@dataclass(frozen=True)
class ShadowStats:
    """Summary of a model's shadow comparison records."""

    records: int
    shadow_errors: int
    primary_errors: int
    compared: int
    agree_rate: float | None
    mean_abs_diff: float | None
    max_abs_diff: float | None
    shadow_p99_ms: float | None


def shadow_stats(*, home: Path, model: str) -> ShadowStats:
    """Read every comparison record of ``model`` and summarise agreement and shadow failures.

    Example:
        >>> shadow_stats(home=Path("/tmp/empty-home"), model="m").records
        0
    """
    rows = ShadowLog(home=home, model=model).records()
    compared = [r for r in rows if r.get("agree") is not None]
    diffs = [float(r["max_abs_diff"]) for r in compared if r.get("max_abs_diff") is not None]
    return ShadowStats(
        records=len(rows),
        shadow_errors=sum(1 for r in rows if r.get("shadow_error")),
        primary_errors=sum(1 for r in rows if r.get("primary_error")),
        compared=len(compared),
        agree_rate=sum(1 for r in compared if r["agree"]) / len(compared) if compared else None,
        mean_abs_diff=sum(diffs) / len(diffs) if diffs else None,
        max_abs_diff=max(diffs) if diffs else None,
        shadow_p99_ms=_p99([float(r.get("shadow_ms") or 0.0) for r in rows]),
    )
