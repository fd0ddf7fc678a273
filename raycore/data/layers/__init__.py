"""The medallion layers of the lake: bronze (raw), silver (validated), gold (entity x time).

    <lake>/bronze/<dataset>/_batch_id=<id>/part-N.parquet       raw batches + ingest metadata
    <lake>/silver/<dataset>/[<partition>/]_batch_id=<id>/...    typed rows that pass every rule
    <lake>/quarantine/<dataset>/_batch_id=<id>/...              failing rows, raw, with reasons
    <lake>/gold/<table>/<build>/part-N.parquet                  joined entity x time tables
    <lake>/_manifests/<layer>/<table>.json                      versions with content digests
    <lake>/reports/silver/<run_id>.json                         data-quality report per run

Invariants: re-ingesting a batch is a no-op; bronze rows = silver rows +
quarantined rows (checked every run); a batch below its quality gate never
reaches gold; every write is a version that ``read(..., as_of=...)`` can return to.
Work runs in process (``engine="pandas"``) or on Ray Data (``engine="ray"``); both
write the same parts.

Example:
    >>> from raycore.data.layers import build_gold, ingest, load_dataset_spec, read, refine, status
    >>> spec = load_dataset_spec("stores")
    >>> ingest(spec, lake="/tmp/lake", source="exports/stores.csv")      # doctest: +SKIP
    >>> refine([load_dataset_spec("regions"), spec], lake="/tmp/lake")   # doctest: +SKIP
    >>> read("stores", lake="/tmp/lake", layer="silver").head()          # doctest: +SKIP
    >>> status("/tmp/lake").to_frame()                                   # doctest: +SKIP
"""

from raycore.data.layers.bronze import METADATA_COLUMNS, IngestResult, ingest, ingest_many
from raycore.data.layers.engine import AUTO_RAY_MIN_BYTES, Engine
from raycore.data.layers.gold import GoldResult, build_gold
from raycore.data.layers.inputs import RetryPolicy
from raycore.data.layers.pipeline import PipelineResult, run_pipeline
from raycore.data.layers.quality import BatchQuality, QualityGateError, QualityReport, TableQuality
from raycore.data.layers.registry import (
    dataset_specs,
    gold_spec,
    gold_specs,
    load_dataset_spec,
    register_gold,
)
from raycore.data.layers.silver import RefineResult, refine
from raycore.data.layers.snapshots import (
    LAYERS,
    Layer,
    Manifest,
    Part,
    Version,
    load_manifest,
    read,
)
from raycore.data.layers.status import LakeStatus, TableStatus, quarantine, status

__all__ = [
    "AUTO_RAY_MIN_BYTES",
    "LAYERS",
    "METADATA_COLUMNS",
    "BatchQuality",
    "Engine",
    "GoldResult",
    "IngestResult",
    "LakeStatus",
    "Layer",
    "Manifest",
    "Part",
    "PipelineResult",
    "QualityGateError",
    "QualityReport",
    "RefineResult",
    "RetryPolicy",
    "TableQuality",
    "TableStatus",
    "Version",
    "build_gold",
    "dataset_specs",
    "gold_spec",
    "gold_specs",
    "ingest",
    "ingest_many",
    "load_dataset_spec",
    "load_manifest",
    "quarantine",
    "read",
    "refine",
    "register_gold",
    "run_pipeline",
    "status",
]
