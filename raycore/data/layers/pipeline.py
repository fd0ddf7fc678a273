"""The whole medallion run: ingest every dataset, refine them, build their gold tables.

Example:
    >>> from raycore.data.layers import run_pipeline
    >>> result = run_pipeline(lake="/tmp/lake", sources={"stores": "exports/stores.csv"})  # doctest: +SKIP
    >>> result.gold["store_sales_weekly"].rows                                            # doctest: +SKIP
    83200
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from raycore.data.layers.bronze import IngestResult, ingest_many
from raycore.data.layers.engine import Engine
from raycore.data.layers.gold import GoldResult, build_gold
from raycore.data.layers.inputs import RetryPolicy, SourceLike
from raycore.data.layers.registry import dataset_specs, gold_spec, gold_specs
from raycore.data.layers.silver import RefineResult, refine
from raycore.data.layers.snapshots import LakeLike, as_lake
from raycore.specs.dataset import DatasetSpec, GoldSpec

__all__ = ["PipelineResult", "run_pipeline"]


@dataclass(frozen=True)
class PipelineResult:
    """Results of every step of one run."""

    ingested: dict[str, IngestResult]
    refined: RefineResult
    gold: dict[str, GoldResult]

    @property
    def passed(self) -> bool:
        """Whether every refined batch passed its quality gate."""
        return self.refined.passed


def run_pipeline(
    specs: Sequence[DatasetSpec] | None = None,
    *,
    lake: LakeLike,
    sources: Mapping[str, SourceLike] | None = None,
    gold: Sequence[GoldSpec | str] | None = None,
    engine: Engine = "auto",
    retry: RetryPolicy | None = None,
    filesystem: pafs.FileSystem | None = None,
    world: Any = None,
    raise_on_gate: bool = True,
) -> PipelineResult:
    """Bronze -> silver -> gold for ``specs`` (default: every shipped dataset).

    ``sources`` overrides a dataset's spec source by name. ``gold`` defaults to
    every known gold table whose inputs are all among ``specs``. A batch that
    misses its quality gate stays out of gold; the gate error is raised after
    gold is built from the promoted batches (unless ``raise_on_gate`` is False).

    Example:
        >>> run_pipeline(lake="/tmp/lake", engine="pandas").passed  # doctest: +SKIP
        True
    """
    the_lake = as_lake(lake)
    chosen = list(specs) if specs is not None else list(dataset_specs().values())
    sources = sources or {}
    ingested = ingest_many(
        chosen, lake=the_lake, sources=sources, engine=engine, retry=retry, filesystem=filesystem, world=world
    )
    refined = refine(chosen, lake=the_lake, engine=engine, raise_on_gate=False)
    names = {s.name for s in chosen}
    if gold is None:
        golds: list[GoldSpec] = [g for g in gold_specs().values() if set(g.depends_on) <= names]
    else:
        golds = [gold_spec(g) if isinstance(g, str) else g for g in gold]
    built = {g.name: build_gold(g, lake=the_lake, engine=engine) for g in golds}
    error = refined.report.gate_error()
    if raise_on_gate and error is not None:
        raise error
    return PipelineResult(ingested=ingested, refined=refined, gold=built)
