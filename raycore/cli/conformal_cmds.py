"""``foundry conformal``: realised coverage of the served intervals/sets, and recalibration.

    foundry conformal status      MODEL [--version V] [--since T] [--until T] [--json]
    foundry conformal recalibrate MODEL --reason "..." [--version V] [--rows FILE] [--since T] [--until T]
                                  [--keep-aliases] [--json]

``status`` recomputes the intervals/sets the version served (its own
calibrator, from the logged inputs), joins the late labels and shows the
realised coverage per level with n, the tolerance and the verdict.
``recalibrate`` registers the version again with a calibrator from fresh
labelled rows (the logged answers with labels, or a parquet/csv of raw inputs
+ label), moves its aliases to the new version and audits it. Nothing is
retrained; bad input changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.errors import DataError
from raycore.settings import FoundrySettings

__all__ = ["conformal_app"]

conformal_app = typer.Typer(
    help="Conformal coverage of served models: realised coverage per level, recalibration (audited).",
    no_args_is_help=True,
)
console = Console()


def _spec(model: str) -> Any:
    from raycore.cli.main import _catalog

    return _catalog().get(model)


def _read_rows(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"no file at {path}", hint="pass a parquet or csv file of fresh rows")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise DataError(
        f"fresh rows must be .parquet or .csv, got {path.name}",
        hint="save the rows (raw inputs + label) as parquet or csv",
    )


@conformal_app.command("status")
@guarded
def status(
    model: str = typer.Argument(..., help="Catalog id or name."),
    version: str = typer.Option(None, help="Registered version (default: the champion)."),
    since: str = typer.Option(None, help="Window start (ISO time, UTC); default: the whole log."),
    until: str = typer.Option(None, help="Window end (ISO time, UTC)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Realised coverage per calibrated level of a version's labelled answers."""
    from raycore.conformal.online import track_coverage
    from raycore.conformal.scores import ConformalError
    from raycore.registry.store import ModelStore

    spec = _spec(model)
    settings = FoundrySettings.load()
    store = ModelStore(settings)
    resolved = store.resolve(spec.name, version=version)
    bundle, _ = store.load_bundle(spec.name, version=resolved)
    if bundle.calibrator is None:
        raise ConformalError(
            f"{spec.name} v{resolved} has no conformal calibrator",
            hint="re-train it with conformal calibration (on by default for regression and classification)",
        )
    report = track_coverage(
        settings=settings, spec=spec, version=resolved, bundle=bundle, since=since, until=until
    )
    if as_json:
        print(json.dumps(report.to_dict(), default=str))
        return
    colour = {"ok": "green", "too_few_labels": "yellow"}.get(report.status, "red")
    console.print(
        f"{spec.id} {spec.name} v{resolved}: [{colour}]{report.status}[/] ({report.severity}); "
        f"{report.n_labelled} labelled of {report.n_answers} logged answers; "
        f"tolerance ±{report.tolerance:g}, judged from {report.min_labelled} labels"
    )
    table = Table("level", "n", "realised", "error", "2 sd", "within")
    for lv in report.levels:
        table.add_row(
            f"{lv.level:.0%}",
            str(lv.n),
            "-" if lv.realised is None else f"{lv.realised:.3f}",
            "-" if lv.error is None else f"{lv.error:+.3f}",
            "-" if lv.sd is None else f"{2 * lv.sd:.3f}",
            "[green]yes[/]" if lv.within else "[red]no[/]",
        )
    console.print(table)


@conformal_app.command("recalibrate")
@guarded
def recalibrate_cmd(
    model: str = typer.Argument(..., help="Catalog id or name."),
    reason: str = typer.Option(..., help="Why (recorded in the audit log)."),
    version: str = typer.Option(None, help="Registered version (default: the champion)."),
    rows: Path = typer.Option(
        None, help="Fresh labelled rows (parquet/csv: raw inputs + label); default: the log."
    ),
    since: str = typer.Option(None, help="Log window start (ISO time, UTC)."),
    until: str = typer.Option(None, help="Log window end (ISO time, UTC)."),
    keep_aliases: bool = typer.Option(
        False, "--keep-aliases", help="Register the new version without moving aliases to it."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register a version again with a calibrator from fresh labelled rows (no retraining)."""
    from raycore.conformal.recalibrate import as_dict, recalibrate

    spec = _spec(model)
    result = recalibrate(
        settings=FoundrySettings.load(),
        spec=spec,
        reason=reason,
        version=version,
        rows=None if rows is None else _read_rows(rows),
        since=since,
        until=until,
        move_aliases=not keep_aliases,
    )
    if as_json:
        print(json.dumps(as_dict(result), default=str))
        return
    moved = ", ".join(result.aliases_moved) or "no alias moved"
    console.print(
        f"{spec.id} {spec.name}: v{result.from_version} -> v{result.version} "
        f"({moved}); {result.n_rows} rows from {result.source}; audit #{result.audit_id}"
    )
    table = Table("level", "before", "after (same rows)", "next half")
    for level in sorted(result.coverage_before):
        table.add_row(
            f"{level:.0%}",
            f"{result.coverage_before[level]:.3f}",
            f"{result.coverage_after[level]:.3f}",
            f"{result.coverage_next_half[level]:.3f}",
        )
    console.print(table)
