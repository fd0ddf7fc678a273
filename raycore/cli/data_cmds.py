"""``foundry data``: the lake's medallion layers from the command line.

    foundry data generate [--scale small|medium|large] [--seed N]   world -> bronze -> silver -> gold
    foundry data ingest SPEC [--source PATH]                         one dataset, with its rule results
    foundry data status                                              every layer table
    foundry data quarantine TABLE [--limit N]                        rejected rows and why

Work runs in this process unless ``--engine ray`` (which starts or joins Ray from
the settings); ``auto`` uses Ray Data only when Ray is already running and the
input is large. Helpers (``guarded``, ``steps``, ``console``) come from
:mod:`raycore.cli.main`, imported when a command runs, because that module
imports this one to register ``data_app``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.table import Table

from raycore.cli.common import guarded as _guarded

if TYPE_CHECKING:

    from raycore.data.lake import Lake
    from raycore.data.layers import LakeStatus, PipelineResult, TableQuality
    from raycore.specs.dataset import DatasetSpec

__all__ = ["data_app"]

data_app = typer.Typer(
    help="The data lake: generate the data world, ingest and validate datasets, inspect layers and quarantine.",
    no_args_is_help=True,
)

T = TypeVar("T")


class Scale(str, Enum):
    small = "small"
    medium = "medium"
    large = "large"


class EngineChoice(str, Enum):
    auto = "auto"
    pandas = "pandas"
    ray = "ray"


ENGINE_HELP = "Where layer work runs: 'pandas' (this process), 'ray' (Ray Data) or 'auto'."


def _console() -> Any:
    from raycore.cli.main import console

    return console


def _lake(engine: EngineChoice) -> Lake:
    from raycore.cli.main import _settings
    from raycore.data.layers.snapshots import as_lake

    settings = _settings()
    if engine is EngineChoice.ray:
        from raycore.runtime.ray_runtime import connect_ray

        connect_ray(settings)
    return as_lake(settings.lake)


@data_app.command("generate")
@_guarded
def generate(
    scale: Scale = typer.Option(Scale.small, help="Size of the simulated business."),
    seed: int = typer.Option(7, help="Seed of the data world; equal seeds give equal data."),
    engine: EngineChoice = typer.Option(EngineChoice.auto, help=ENGINE_HELP),
) -> None:
    """Write the data world into the lake, then run bronze -> silver -> gold for every world dataset.

    Running it again adds nothing: the world and every ingested batch are content-addressed.
    """
    from raycore.cli.main import steps
    from raycore.data.layers import dataset_specs, gold_specs, run_pipeline, status
    from raycore.data.sources import ensure_world, world_prefix
    from raycore.data.world import WorldConfig

    console = _console()
    lake = _lake(engine)
    config = WorldConfig(seed=seed, scale=scale.value)
    prefix = world_prefix(config)
    specs = [s for s in dataset_specs().values() if s.source.table is not None]
    _refuse_other_world(lake, specs, prefix)
    existed = lake.exists(f"{prefix}/manifest")
    with steps() as step:
        step(f"data world {prefix}: {'already in the lake' if existed else 'generating'}")
        ensure_world(lake, config)
        specs = [s for s in specs if lake.exists(f"{prefix}/tables/{s.source.table}")]
        golds = [g for g in gold_specs().values() if set(g.depends_on) <= {s.name for s in specs}]
        step(f"bronze -> silver -> gold: {len(specs)} datasets, {len(golds)} gold tables ({engine.value})")
        result = run_pipeline(specs, lake=lake, world=config, gold=golds, engine=engine.value, raise_on_gate=False)
    lake_status = status(lake)
    names = {s.name for s in specs}
    for layer in ("bronze", "silver", "gold"):
        console.print(_layer_table(lake_status, layer, names if layer != "gold" else {g.name for g in golds}, result))
    added = sum(r.rows for r in result.ingested.values() if not r.skipped)
    if added == 0:
        console.print(f"nothing new: every dataset of {prefix} was already ingested; no rows were added")
    else:
        new = sum(1 for r in result.ingested.values() if not r.skipped)
        console.print(f"added {added:,} rows in {new} new bronze batch(es); lake: {lake.root}")
    if result.refined.report.tables and any(t.batches for t in result.refined.report.tables.values()):
        console.print(f"quality report: {result.refined.report_path}")
    error = result.refined.report.gate_error()
    if error is not None:
        raise error


def _refuse_other_world(lake: Lake, specs: list[DatasetSpec], prefix: str) -> None:
    """Batches of another seed/scale would collide on primary keys: say so before writing anything."""
    from raycore.data.layers import load_manifest
    from raycore.errors import ConfigurationError

    worlds = lake.file("world") + "/"
    for spec in specs:
        for version in load_manifest(lake, "bronze", spec.name).versions:
            for name in map(str, version.meta.get("files", [])):
                other = f"world/{name[len(worlds):].split('/', 1)[0]}" if name.startswith(worlds) else prefix
                if other != prefix:
                    raise ConfigurationError(
                        f"the lake at {lake.root} already holds dataset '{spec.name}' from data world {other}; "
                        f"rows of {prefix} with the same keys would be quarantined as duplicates",
                        hint="use another FOUNDRY_HOME (or FOUNDRY_LAKE_URI) per seed and scale",
                    )


def _layer_table(lake_status: LakeStatus, layer: str, names: set[str], result: PipelineResult | None) -> Table:
    table = Table(title=f"{layer}")
    for col in ("table", "rows", "digest", "pass rate", "quarantined", "this run"):
        table.add_column(col, justify="right" if col in ("rows", "pass rate", "quarantined") else "left")
    for t in lake_status.tables:
        if t.layer != layer or t.table not in names:
            continue
        table.add_row(
            t.table,
            f"{t.rows:,}",
            t.digest,
            "-" if t.pass_rate is None else _pct(t.pass_rate),
            "-" if t.quarantined_rows is None else f"{t.quarantined_rows:,}",
            _this_run(result, layer, t.table),
        )
    return table


def _this_run(result: PipelineResult | None, layer: str, name: str) -> str:
    if result is None:
        return "-"
    if layer == "bronze" and name in result.ingested:
        r = result.ingested[name]
        return "already ingested" if r.skipped else f"+{r.rows:,} rows"
    if layer == "silver" and name in result.refined.report.tables:
        t = result.refined.report.tables[name]
        if not t.batches:
            return "nothing to refine"
        return f"+{t.silver_rows:,} rows" + ("" if t.passed else " [red](gate failed)[/]")
    if layer == "gold" and name in result.gold:
        g = result.gold[name]
        return "unchanged" if g.skipped else f"version {g.version}"
    return "-"


def _pct(rate: float) -> str:
    return f"{rate:.2%}"


@data_app.command("ingest")
@_guarded
def ingest_cmd(
    spec: str = typer.Argument(..., help="A dataset spec YAML file, or the name of a shipped dataset."),
    source: str = typer.Option(None, help="File or folder to ingest (default: the spec's source)."),
    engine: EngineChoice = typer.Option(EngineChoice.auto, help=ENGINE_HELP),
) -> None:
    """Ingest one batch into bronze, refine it into silver (+ quarantine), rebuild dependent gold.

    Prints every rule's result and checks bronze rows = silver rows + quarantined rows.
    A batch below its quality gate is stored but not promoted to gold, and the command exits 1.
    """
    from raycore.cli.main import steps
    from raycore.data.layers import gold_specs, load_manifest, run_pipeline
    from raycore.errors import DataError

    console = _console()
    dataset = _load_spec(spec)
    lake = _lake(engine)
    missing = [d for d in dataset.depends_on if load_manifest(lake, "silver", d).latest is None]
    if missing:  # checked before anything is written: the batch could not be refined
        raise DataError(
            f"dataset '{dataset.name}' references {missing} through foreign keys, which have no silver rows yet",
            hint=f"ingest them first: {' ; '.join(f'foundry data ingest {d}' for d in missing)} (or `foundry data generate`)",
        )
    golds = [
        g for g in gold_specs().values()
        if dataset.name in g.depends_on
        and all(d == dataset.name or load_manifest(lake, "silver", d).latest is not None for d in g.depends_on)
    ]
    sources = {dataset.name: source} if source else {}
    with steps() as step:
        step(f"bronze -> silver -> gold: {dataset.name} from {source or _describe_source(dataset)} ({engine.value})")
        result = run_pipeline([dataset], lake=lake, sources=sources, gold=golds, engine=engine.value, raise_on_gate=False)
    ingested = result.ingested[dataset.name]
    quality = result.refined.report.tables.get(dataset.name)
    if ingested.skipped:
        console.print(
            f"bronze: batch {ingested.batch_id} ({ingested.rows:,} rows) was already ingested; nothing was added"
        )
    else:
        console.print(
            f"bronze: batch {ingested.batch_id}, {ingested.rows:,} rows from {', '.join(ingested.files)}"
        )
    if quality is not None and quality.batches:
        console.print(_rules_table(quality))
        if quality.ignored_columns:
            console.print(f"columns not in the spec (kept in bronze only): {', '.join(quality.ignored_columns)}")
    _print_counts(lake, dataset.name)
    for name, built in result.gold.items():
        state = "unchanged" if built.skipped else f"version {built.version}"
        console.print(f"gold: {name} {state}, {built.rows:,} rows, digest {built.digest}")
    if quality is not None and quality.batches:
        console.print(f"quality report: {result.refined.report_path}")
    error = result.refined.report.gate_error()
    if error is not None:
        console.print(f"rejected rows and reasons: foundry data quarantine {dataset.name}")
        raise error


def _load_spec(spec: str) -> DatasetSpec:
    from raycore.data.layers import load_dataset_spec
    from raycore.specs.dataset import DatasetSpec
    from raycore.specs.loader import load_spec

    if spec.endswith((".yaml", ".yml")) or Path(spec).exists():
        return load_spec(spec, DatasetSpec)
    return load_dataset_spec(spec)


def _describe_source(spec: DatasetSpec) -> str:
    if spec.source.table is not None:
        return f"data-world table '{spec.source.table}'"
    return str(spec.source.path)


def _rules_table(quality: TableQuality) -> Table:
    table = Table(title=f"silver rules: {quality.dataset} (gate: pass rate >= {_pct(quality.min_pass_rate)})")
    for col in ("rule", "checked", "failed", "pass rate"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for rule in quality.to_dict()["rules"]:
        failed = int(rule["failed"])
        table.add_row(
            rule["rule"],
            f"{rule['checked']:,}",
            f"[red]{failed:,}[/]" if failed else "0",
            _pct(float(rule["pass_rate"])),
        )
    verdict = "[green]passed[/]" if quality.passed else "[red]failed[/]"
    table.caption = f"batch pass rate {_pct(quality.pass_rate)}: gate {verdict}"
    return table


def _print_counts(lake: Lake, dataset: str) -> None:
    from raycore.data.layers import load_manifest

    b, s, q = (
        v.rows if v else 0 for v in (load_manifest(lake, layer, dataset).latest for layer in ("bronze", "silver", "quarantine"))
    )
    verdict = f"[green]yes[/] ({b:,} = {s:,} + {q:,})" if b == s + q else f"[red]NO[/] ({b:,} != {s:,} + {q:,})"
    _console().print(f"rows: bronze {b:,} | silver {s:,} | quarantine {q:,} | reconciled {verdict}")


@data_app.command("status")
@_guarded
def status_cmd() -> None:
    """Every layer table of the lake: version, rows, latest digest, pass rate and quarantine."""
    from raycore.data.layers import status

    console = _console()
    lake = _lake(EngineChoice.pandas)
    lake_status = status(lake)
    if not lake_status.tables:
        console.print(f"the lake at {lake.root} is empty; run `foundry data generate` or `foundry data ingest`")
        return
    table = Table(title=f"Lake {lake.root}")
    for col in ("layer", "table", "version", "rows", "digest", "pass rate", "quarantined", "last batch"):
        table.add_column(col, justify="right" if col in ("version", "rows", "pass rate", "quarantined") else "left")
    for t in lake_status.tables:
        if t.layer == "quarantine":
            continue  # shown as the silver table's "quarantined" count
        last = "-"
        if t.last_batch_promoted is not None:
            rate = "" if t.last_batch_pass_rate is None else f" {_pct(float(t.last_batch_pass_rate))}"
            last = ("promoted" if t.last_batch_promoted else "[red]not promoted[/]") + rate
        table.add_row(
            t.layer,
            t.table,
            str(t.version),
            f"{t.rows:,}",
            t.digest,
            "-" if t.pass_rate is None else _pct(t.pass_rate),
            "-" if t.quarantined_rows is None else f"{t.quarantined_rows:,}",
            last,
        )
    console.print(table)


@data_app.command("quarantine")
@_guarded
def quarantine_cmd(
    table: str = typer.Argument(..., help="Dataset name."),
    limit: int = typer.Option(20, min=1, help="Rows to show."),
) -> None:
    """The rows a dataset's rules rejected, with their failed rules and reasons."""
    from raycore.data.layers import quarantine

    console = _console()
    lake = _lake(EngineChoice.pandas)
    frame = quarantine(table, lake=lake)
    if frame.empty:
        console.print(f"'{table}' has no quarantined rows")
        return
    shown = frame.head(limit)
    out = Table(title=f"quarantine: {table} ({len(frame):,} rows, showing {len(shown):,})")
    for col in ("file", "row (0-based)", "failed rules", "reasons", "values"):
        out.add_column(col, overflow="fold", justify="right" if col.startswith("row") else "left")
    values = [c for c in frame.columns if not str(c).startswith("_")]
    for row in shown.to_dict("records"):
        out.add_row(
            str(row.get("_source", "?")),
            str(row.get("_row_number", "?")),
            str(row["_failed_rules"]).replace("; ", "\n"),
            str(row["_reasons"]).replace("; ", "\n"),
            ", ".join(f"{c}={_raw(row[c])}" for c in values),
        )
    console.print(out)


def _raw(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return "null"
    return str(value)
