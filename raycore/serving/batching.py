"""Dynamic batching of prediction requests inside one process, with a bounded queue (Ray-free).

Requests of one model that arrive within ``batch_wait_timeout_s`` of each other
(up to ``max_batch_size``) are predicted in one call: their rows are
concatenated, predicted once and split back (``Predictor.run_many``). The queue
is bounded: past ``max_queued_requests`` waiting requests, ``submit`` raises
``Overloaded`` at once (HTTP 503 with ``Retry-After``) instead of letting
latency grow without bound.

Each queued request carries the ``Predictor`` it was routed to, so a batch that
straddles a hot reload predicts every request with the version that will be
named in its answer.

Example:
    >>> batcher = RowBatcher(max_batch_size=32, batch_wait_timeout_s=0.002, max_queued_requests=256)  # doctest: +SKIP
    >>> prediction = await batcher.submit(predictor, RowRequest(frame, locate))                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from raycore.errors import RaycoreError, ServingError
from raycore.serving.predictor import Prediction, Predictor, RowRequest

__all__ = ["Overloaded", "RowBatcher"]

log = logging.getLogger(__name__)


class Overloaded(ServingError):
    """Too many requests are waiting: the caller should retry after ``retry_after_s`` seconds."""

    def __init__(
        self, message: str, *, retry_after_s: float = 1.0, hint: str | None = None
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"retry_after_s": self.retry_after_s, "hint": self.hint}


BatchHook = Callable[[Predictor, int], None]


class RowBatcher:
    """Collects concurrent requests into batches and predicts each batch in one call."""

    def __init__(
        self,
        *,
        max_batch_size: int,
        batch_wait_timeout_s: float,
        max_queued_requests: int,
        retry_after_s: float = 1.0,
        on_batch: BatchHook | None = None,
        in_thread: bool = False,
    ) -> None:
        if max_batch_size < 1 or max_queued_requests < 1 or batch_wait_timeout_s < 0:
            raise ValueError(
                "RowBatcher needs max_batch_size >= 1, max_queued_requests >= 1, batch_wait_timeout_s >= 0; got "
                f"{max_batch_size}, {max_queued_requests}, {batch_wait_timeout_s}"
            )
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self.max_queued_requests = max_queued_requests
        self.retry_after_s = retry_after_s
        self.on_batch = on_batch
        # One worker thread: batches still run one at a time, in arrival order.
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch") if in_thread else None
        )
        self._queue: (
            asyncio.Queue[tuple[Predictor, RowRequest, asyncio.Future[Prediction]]] | None
        ) = None
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Requests waiting for a batch right now."""
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, predictor: Predictor, item: RowRequest) -> Prediction:
        """Predict ``item`` with ``predictor`` in the next batch; its own error, or ``Overloaded``."""
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop(self._queue))
        if self._queue.qsize() >= self.max_queued_requests:
            raise Overloaded(
                f"model '{predictor.name}' has {self._queue.qsize()} requests waiting "
                f"(max_queued_requests={self.max_queued_requests})",
                retry_after_s=self.retry_after_s,
                hint=f"retry after {self.retry_after_s:g}s, or raise the model's serving.max_replicas",
            )
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((predictor, item, future))
        return await future

    async def close(self) -> None:
        """Stop the batching loop; waiting requests get a ServingError."""
        task, queue = self._task, self._queue
        self._task = self._queue = None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        while queue is not None and not queue.empty():
            _, _, future = queue.get_nowait()
            if not future.done():
                future.set_exception(
                    ServingError("the replica is shutting down", hint="retry the request")
                )

    async def _loop(
        self, queue: asyncio.Queue[tuple[Predictor, RowRequest, asyncio.Future[Prediction]]]
    ) -> None:
        while True:
            batch = [await queue.get()]
            if (
                self.max_batch_size > 1
                and self.batch_wait_timeout_s > 0
                and queue.qsize() < self.max_batch_size - 1
            ):
                await asyncio.sleep(self.batch_wait_timeout_s)
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            await self._run(batch)

    async def _run(
        self, batch: list[tuple[Predictor, RowRequest, asyncio.Future[Prediction]]]
    ) -> None:
        live = [
            entry for entry in batch if not entry[2].done()
        ]  # a client that hung up is not predicted
        groups: dict[int, list[tuple[Predictor, RowRequest, asyncio.Future[Prediction]]]] = {}
        for entry in live:
            groups.setdefault(id(entry[0]), []).append(entry)
        for group in groups.values():
            predictor = group[0][0]
            try:
                items = [item for _, item, _ in group]
                if self._executor is None:
                    results: list[Prediction | RaycoreError] | None = predictor.run_many(items)
                else:  # the event loop keeps reading and validating requests meanwhile
                    loop = asyncio.get_running_loop()
                    results = await loop.run_in_executor(self._executor, predictor.run_many, items)
                failure: BaseException | None = None
            except Exception as exc:  # a bug must fail these requests, never the loop
                log.exception(
                    "batch prediction failed for %s v%s", predictor.name, predictor.version
                )
                results, failure = None, exc
            if self.on_batch is not None:
                self.on_batch(predictor, len(group))
            for i, (_, _, future) in enumerate(group):
                if future.done():
                    continue
                if results is None:
                    assert failure is not None
                    future.set_exception(failure)
                elif isinstance(results[i], Prediction):
                    future.set_result(results[i])  # type: ignore[arg-type]
                else:
                    future.set_exception(results[i])  # type: ignore[arg-type]
