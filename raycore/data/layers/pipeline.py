"""The whole medallion run: ingest every dataset, refine them, build their gold tables.

On Ray Data each pass costs 45-90 ms however small, so the run makes two: one
that writes bronze and refines every new part by its row rules (all datasets at
once), and one that builds gold. The driver then checks the key rules in
foreign-key order and commits silver while, in a second thread, gold is built
from silver as it will be if no key rule fails; that build is kept only if the
committed silver has the same digests. A part where a key rule fails is refined
again, and gold built again, only then.

Example:
    >>> from raycore.data.layers import run_pipeline
    >>> result = run_pipeline(lake="/tmp/lake", sources={"stores": "exports/stores.csv"})  # doctest: +SKIP
    >>> result.gold["store_sales_weekly"].rows                                            # doctest: +SKIP
    83200
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from raycore.data.lake import Lake
from raycore.data.layers.bronze import AfterWrite, IngestResult, ingest_batches
from raycore.data.layers.engine import Engine
from raycore.data.layers.gold import (
    GoldBuild,
    GoldResult,
    check_gold_grain,
    commit_gold,
    discard_gold,
    inputs_digest,
    promoted_parts,
    write_gold,
)
from raycore.data.layers.inputs import RetryPolicy, SourceLike
from raycore.data.layers.quality import BatchQuality
from raycore.data.layers.registry import dataset_specs, gold_spec, gold_specs
from raycore.data.layers.silver import RefineResult, RowRefiner, refine_ingested
from raycore.data.layers.snapshots import LakeLike, Part, as_lake, load_manifest
from raycore.errors import RaycoreError
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
    ingested, prewritten = ingest_batches(
        chosen,
        lake=the_lake,
        sources=sources,
        engine=engine,
        retry=retry,
        filesystem=filesystem,
        world=world,
        after_write=RowRefiner(the_lake),
    )
    names = {s.name for s in chosen}
    if gold is None:
        golds: list[GoldSpec] = [g for g in gold_specs().values() if set(g.depends_on) <= names]
    else:
        golds = [gold_spec(g) if isinstance(g, str) else g for g in gold]
    on_ray = any(p.engine == "ray" for p in prewritten.values())
    guesses = _GoldGuesses(the_lake, golds, chosen, ingested, prewritten, engine=engine) if on_ray else None
    try:
        refined = refine_ingested(chosen, lake=the_lake, engine=engine, raise_on_gate=False, prewritten=prewritten)
        built = {g.name: _build_gold(the_lake, g, guesses, engine=engine) for g in golds}
    finally:
        if guesses is not None:
            guesses.discard_unused()
    error = refined.report.gate_error()
    if raise_on_gate and error is not None:
        raise error
    return PipelineResult(ingested=ingested, refined=refined, gold=built)


def _build_gold(lake: Lake, gold: GoldSpec, guesses: _GoldGuesses | None, *, engine: Engine) -> GoldResult:
    silver = promoted_parts(lake, gold)
    if guesses is None or not guesses.pending(gold.name):
        return commit_gold(lake, write_gold(gold, lake=lake, silver=silver, engine=engine))
    check_gold_grain(lake, gold, silver)  # the guess skips it: checked here while it is still running
    guess = guesses.take(gold.name)
    if guess is not None and guess.inputs == inputs_digest(gold, silver):
        return commit_gold(lake, guess)
    if guess is not None:
        guesses.discard(guess)
    return commit_gold(lake, write_gold(gold, lake=lake, silver=silver, engine=engine, check_grain=False))


class _GoldGuesses:
    """Gold built in a background thread from silver as it will be if no key rule fails.

    On Ray Data each pass has a fixed cost (45-90 ms); building gold while the
    driver checks the key rules and commits silver hides most of it. A guess is
    used only if the committed silver gives the same inputs digest (spec and
    input parts' digests, in order), so its parts are exactly the ones a build
    after refine would write; otherwise it is deleted and gold is built again.
    The grain check is left to the main thread, which has time to spare meanwhile.
    """

    def __init__(
        self,
        lake: Lake,
        golds: Sequence[GoldSpec],
        specs: Sequence[DatasetSpec],
        ingested: Mapping[str, IngestResult],
        prewritten: Mapping[str, AfterWrite],
        *,
        engine: Engine,
    ) -> None:
        self.lake = lake
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gold-guess")
        self._futures: dict[str, Future[GoldBuild]] = {}
        gates = {s.name: s.quality_gate.min_pass_rate for s in specs}
        for gold in golds:
            if not any(d in prewritten for d in gold.depends_on):
                continue  # nothing new in its inputs: the build after refine just finds it unchanged
            silver = {d: _expected_silver(lake, d, ingested, prewritten, gates) for d in gold.depends_on}
            if all(silver.values()):
                self._futures[gold.name] = self._pool.submit(
                    write_gold, gold, lake=lake, silver=silver, engine=engine, check_grain=False
                )
        self._pool.shutdown(wait=False)

    def pending(self, name: str) -> bool:
        return name in self._futures

    def take(self, name: str) -> GoldBuild | None:
        future = self._futures.pop(name, None)
        if future is None:
            return None
        try:
            return future.result()
        except RaycoreError:
            return None  # e.g. a part it read was refined again meanwhile; the build after refine decides

    def discard(self, build: GoldBuild) -> None:
        committed = {v.meta.get("inputs") for v in load_manifest(self.lake, "gold", build.gold.name).versions}
        if build.inputs not in committed:
            discard_gold(self.lake, build)

    def discard_unused(self) -> None:
        for name in list(self._futures):
            build = self.take(name)
            if build is not None:
                self.discard(build)


def _expected_silver(
    lake: Lake,
    dataset: str,
    ingested: Mapping[str, IngestResult],
    prewritten: Mapping[str, AfterWrite],
    gates: Mapping[str, float],
) -> list[Part]:
    """Promoted silver parts of ``dataset`` after this run, if no key rule fails in its new batch."""
    latest = load_manifest(lake, "silver", dataset).latest
    parts = [p for p in latest.parts if p.promoted] if latest is not None else []
    pre = prewritten.get(dataset)
    if pre is None:
        return parts
    new = [s for i in sorted(pre.parts) for s in pre.parts[i] if s["kind"] == "silver"]
    rows, passed = ingested[dataset].rows, sum(int(s["rows"]) for s in new)
    if BatchQuality(pre.batch_id, rows, passed, rows - passed, {}, gates[dataset]).promoted:
        parts += [Part(s["path"], s["rows"], s["digest"], pre.batch_id, s["partition"], True) for s in new]
    return parts
