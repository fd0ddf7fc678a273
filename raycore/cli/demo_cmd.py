"""``foundry demo``: scripted demonstrations that run the foundry's real parts end to end.

    foundry demo drift [--seed N] [--quick] [--json] [--out FILE]

``drift`` serves a model on the data world, replays traffic over HTTP, injects
covariate and then concept drift from a date, and shows detection, guarded
retraining (cooldown, shadow, promotion, rollback, a refused corrupted retrain)
with the verdict of every step read back from the files, registry and audit
log (``raycore.demo.drift``). Exit 0 only when every step held; otherwise 1
with the failed step named. The JSON summary is written to ``--out`` (default
``$FOUNDRY_HOME/demos/drift.json``) and printed as the last line of stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from raycore.cli.common import guarded
from raycore.settings import FoundrySettings

__all__ = ["demo_app", "drift"]

demo_app = typer.Typer(help="Scripted demonstrations on the data world.", no_args_is_help=True)


@demo_app.command("drift")
@guarded
def drift(
    seed: int = typer.Option(0, help="Seed of the replayed traffic (sampling and order)."),
    quick: bool = typer.Option(False, "--quick", help="A small run (the CI size, ~2 minutes)."),
    as_json: bool = typer.Option(
        False, "--json", help="Only the JSON summary on stdout (the steps go to stderr)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Where to write the JSON summary (default $FOUNDRY_HOME/demos/drift.json).",
    ),
) -> None:
    """Drift detection and guarded retraining, end to end over HTTP (covariate, then concept shift)."""
    from raycore.demo.drift import run_drift_demo

    settings = FoundrySettings.load()
    target = out or settings.home / "demos" / "drift.json"
    console = Console(stderr=True) if as_json else Console()
    summary = run_drift_demo(settings, seed=seed, quick=quick, out=target, console=console)
    if not as_json:
        _print_summary(console, summary, target)
    sys.stdout.write(json.dumps(summary, default=str) + "\n")
    sys.stdout.flush()
    if not summary["passed"]:
        Console(stderr=True).print(
            f"[red]demo failed at step {summary['failed_step']}[/]: "
            + next(
                (s["detail"] for s in summary["steps"] if s["step"] == summary["failed_step"]),
                "",
            )
        )
        raise typer.Exit(1)


def _print_summary(console: Console, summary: dict[str, object], target: Path) -> None:
    from rich.table import Table

    table = Table(title="foundry demo drift")
    table.add_column("step")
    table.add_column("held")
    table.add_column("s", justify="right")
    table.add_column("what happened")
    for step in summary["steps"]:  # type: ignore[attr-defined]
        table.add_row(
            step["step"],
            "[green]yes[/]" if step["held"] else "[red]no[/]",
            f"{step['seconds']:.0f}",
            str(step["detail"])[:160],
        )
    console.print(table)
    figures = Table(title="figures")
    figures.add_column("figure")
    figures.add_column("value")
    for key in (
        "detection_delay_windows",
        "detection_delay_days",
        "false_alarms_no_drift",
        "windows_no_drift",
        "drifted_features_true",
        "drifted_features_found",
        "drifted_features_recall",
        "concept_metric_drop",
        "seconds",
    ):
        figures.add_row(key, str(summary.get(key)))
    console.print(figures)
    console.print(f"summary written to {target}")
