"""Where layer work runs: in this process (pandas) or on Ray Data.

A layer step is a list of work items (one per file or part) and a function that
processes one item and returns small JSON-able summaries; the function reads
and writes the data itself, so only summaries come back to the driver. Both
engines call the same function on the same items, so they write the same parts.

On Ray, items are dealt into one group per CPU (largest first, each to the
least loaded group, by ``weights`` such as input bytes) and each group is one
row of ``ray.data.from_items(...)``, mapped by ``map_batches`` with pandas
batches. Measured on the 2-core build machines: one Ray Data execution costs
45-90 ms however small (plain Ray tasks: ~4 ms), so a step is one execution
with as many tasks as CPUs, and the pipeline runs as few steps as it can.

``engine="auto"`` uses Ray Data when Ray is already initialised in this process
and the step's input is at least :data:`AUTO_RAY_MIN_BYTES`; otherwise pandas.

Example:
    >>> run_items(lambda item: [{"n": item["i"] * 2}], [{"i": 1}, {"i": 2}], engine="pandas")
    [{'n': 2}, {'n': 4}]
    >>> balanced_groups([5, 1, 4, 2], groups=2)
    [[0, 1], [2, 3]]
"""

from __future__ import annotations

import base64
import json
import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

from raycore.errors import DataError, RaycoreError

__all__ = ["AUTO_RAY_MIN_BYTES", "Engine", "balanced_groups", "resolve_engine", "run_items"]

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
    """The map_batches function: runs ``fn`` on every item of every group in a pandas batch."""

    def per_batch(batch: Any) -> Any:
        import pandas as pd

        try:
            out = [json.dumps(s) for group in batch["items"] for item in json.loads(group) for s in fn(item)]
        except RaycoreError as exc:
            # Ray Data wraps task errors in UserCodeException and drops their cause;
            # send ours back in band so the caller gets the same DataError as in process.
            out = [json.dumps({"_error": base64.b64encode(pickle.dumps(exc)).decode()})]
        return pd.DataFrame({"summary": out})

    return per_batch


def balanced_groups(weights: Sequence[float], *, groups: int) -> list[list[int]]:
    """Item positions dealt into at most ``groups`` groups of similar total weight (LPT), each in order."""
    loads = [0.0] * max(1, min(groups, len(weights)))
    members: list[list[int]] = [[] for _ in loads]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        g = loads.index(min(loads))
        loads[g] += weights[i]
        members[g].append(i)
    return [sorted(m) for m in members if m]


def run_items(
    fn: ItemFn,
    items: Sequence[dict[str, Any]],
    *,
    engine: Literal["pandas", "ray"],
    weights: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """Run ``fn`` over ``items`` and return the summaries in item order.

    ``weights`` (e.g. input bytes per item) balance the Ray tasks; default equal.
    A :class:`RaycoreError` raised inside a Ray task is re-raised as itself in the caller.
    """
    if not items:
        return []
    if engine == "pandas":
        return [s for item in items for s in fn(item)]
    import ray
    import ray.data

    # Cluster CPUs, not available ones: right after a step Ray may still count the last
    # task's CPU as busy, and one group would then run every item on one core.
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1)
    groups = balanced_groups(list(weights) if weights is not None else [1.0] * len(items), groups=cpus)
    rows = [{"items": json.dumps([{**items[i], "_order": i} for i in group])} for group in groups]
    source = ray.data.from_items(rows, override_num_blocks=len(rows))
    _configure(source.context)
    ds = source.map_batches(_batches(_ordered(fn)), batch_format="pandas", batch_size=1)
    summaries = [json.loads(r["summary"]) for r in ds.take_all()]
    for s in summaries:
        if "_error" in s:
            raise pickle.loads(base64.b64decode(s["_error"]))
    summaries.sort(key=lambda s: (s.pop("_order"), s.pop("_seq")))
    return summaries


def _configure(context: Any) -> None:
    """Settings of this dataset's own DataContext copy; the process-wide context is untouched."""
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # The reservation allocator holds back part of the CPUs for other operators of a
    # streaming pipeline. A step has one map operator; with reservation on 2 cores its
    # two tasks ran one after the other (measured: 2 x 50 ms tasks took 180 ms, not 125).
    context.op_resource_reservation_enabled = False


def _ordered(fn: ItemFn) -> ItemFn:
    def wrapped(item: dict[str, Any]) -> list[dict[str, Any]]:
        order = item.pop("_order")
        return [{**s, "_order": order, "_seq": k} for k, s in enumerate(fn(item))]

    return wrapped
