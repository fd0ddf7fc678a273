"""Where layer work runs: in this process (pandas) or on Ray Data.

A layer step is a list of work items (one per file or part) and a function that
processes one item and returns small JSON-able summaries; the function reads
and writes the data itself, so only summaries come back to the driver. Both
engines call the same function on the same items, so they write the same parts.

On Ray, items go through ``ray.data.from_items(...).map_batches`` with pandas
batches, one block per CPU. Measured on the 2-core build machines: one Ray Data
execution costs 50-90 ms however small (plain Ray tasks: ~4 ms), and each extra
task ~25 ms, so items are grouped into as few tasks as there are CPUs.

``engine="auto"`` uses Ray Data when Ray is already initialised in this process
and the step's input is at least :data:`AUTO_RAY_MIN_BYTES`; otherwise pandas.

Example:
    >>> run_items(lambda item: [{"n": item["i"] * 2}], [{"i": 1}, {"i": 2}], engine="pandas")
    [{'n': 2}, {'n': 4}]
"""

from __future__ import annotations

import base64
import json
import math
import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

from raycore.errors import DataError, RaycoreError

__all__ = ["AUTO_RAY_MIN_BYTES", "Engine", "resolve_engine", "run_items"]

Engine = Literal["pandas", "ray", "auto"]
ItemFn = Callable[[dict[str, Any]], list[dict[str, Any]]]
# benchmarks/data_layers.py on 2 cores: at 1M rows (27 MB of CSV) every step was still
# faster in process, because pyarrow already uses both cores; Ray Data pays off above
# that, or on more cores and nodes.
AUTO_RAY_MIN_BYTES = 64 << 20


def resolve_engine(engine: str, *, input_bytes: int) -> Literal["pandas", "ray"]:
    """The engine to use for an input of ``input_bytes``."""
    if engine == "pandas":
        return "pandas"
    if engine == "ray":
        return "ray"
    if engine != "auto":
        raise DataError(f"unknown engine {engine!r}", hint="use 'pandas', 'ray' or 'auto'")
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized() and input_bytes >= AUTO_RAY_MIN_BYTES:
        return "ray"
    return "pandas"


def _batches(fn: ItemFn) -> Callable[[Any], Any]:
    """The map_batches function: runs ``fn`` on every item of a pandas batch."""

    def per_batch(batch: Any) -> Any:
        import pandas as pd

        try:
            out = [json.dumps(s) for item in batch.to_dict("records") for s in fn(item)]
        except RaycoreError as exc:
            # Ray Data wraps task errors in UserCodeException and drops their cause;
            # send ours back in band so the caller gets the same DataError as in process.
            out = [json.dumps({"_error": base64.b64encode(pickle.dumps(exc)).decode()})]
        return pd.DataFrame({"summary": out})

    return per_batch


def run_items(fn: ItemFn, items: Sequence[dict[str, Any]], *, engine: Literal["pandas", "ray"]) -> list[dict[str, Any]]:
    """Run ``fn`` over ``items`` and return the summaries in item order.

    A :class:`RaycoreError` raised inside a Ray task is re-raised as itself in the caller.
    """
    if not items:
        return []
    if engine == "pandas":
        return [s for item in items for s in fn(item)]
    import ray
    import ray.data

    cpus = max(1, int(ray.available_resources().get("CPU", 1)) if ray.is_initialized() else 1)
    blocks = min(len(items), cpus)
    source = ray.data.from_items([{**item, "_order": i} for i, item in enumerate(items)], override_num_blocks=blocks)
    source.context.enable_progress_bars = False
    ds = source.map_batches(_batches(_ordered(fn)), batch_format="pandas", batch_size=math.ceil(len(items) / blocks))
    rows = ds.take_all()
    summaries = [json.loads(r["summary"]) for r in rows]
    for s in summaries:
        if "_error" in s:
            raise pickle.loads(base64.b64decode(s["_error"]))
    summaries.sort(key=lambda s: (s.pop("_order"), s.pop("_seq")))
    return summaries


def _ordered(fn: ItemFn) -> ItemFn:
    def wrapped(item: dict[str, Any]) -> list[dict[str, Any]]:
        order = item.pop("_order")
        return [{**s, "_order": order, "_seq": k} for k, s in enumerate(fn(item))]

    return wrapped
