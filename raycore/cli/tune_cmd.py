"""``foundry tune MODEL [--config FILE] [--resume]``: a Ray Tune sweep of one catalog model.

Registered on the ``foundry`` app by :mod:`raycore.cli.main` (``app.command("tune")(tune)``).
Shared helpers of ``main`` are looked up when the command runs, so importing
this module does not import ``main`` (which imports this module).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded

__all__ = ["tune"]

console = Console()
INTERRUPTED_EXIT = 130


@guarded
def tune(
    model: str = typer.Argument(..., help="Catalog id (mdl-005) or name."),
    config: str = typer.Option(
        None,
        "--config",
        help="Sweep overrides YAML, used instead of tune_configs/models/<id>.yaml.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the latest unfinished sweep of MODEL (finished trials are kept).",
    ),
    num_samples: int = typer.Option(
        None, "--num-samples", help="Number of trials (overrides the YAML)."
    ),
    seed: int = typer.Option(7, help="Data world seed."),
    scale: str = typer.Option("small", help="Data world scale: small, medium or large."),
) -> None:
    """Sweep MODEL's hyperparameters with Ray Tune; register the best trial if it passes the gate.

    Every trial is a `foundry train` fit on the training rows minus a validation
    split, scored on that split (never on the holdout); ASHA stops trials that
    lag. Each trial is a nested MLflow run under one parent run. The best trial's
    model is scored on the holdout and registered as a candidate if it passes.
    """
    from raycore.cli.main import _catalog, _settings, _world, steps
    from raycore.tuning import tune_model

    # Tune's new console output prints its own banner and tables, Optuna a line per study; the
    # trial lines below replace them.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    _quiet_optuna()
    settings = _settings()
    world = _world(seed, scale)
    spec = _catalog().get(model)
    with trial_lines(), steps() as step:
        outcome = tune_model(
            spec,
            settings=settings,
            world=world,
            config_file=config,
            num_samples=num_samples,
            resume=resume,
            progress=step,
        )
    print_leaderboard(outcome)
    if outcome.interrupted:
        console.print(
            f"[yellow]sweep {outcome.sweep_name} interrupted[/]: resume with "
            f"[bold]foundry tune {spec.id} --resume[/]"
        )
        raise typer.Exit(INTERRUPTED_EXIT)
    print_decision(outcome)
    if not outcome.passed:
        raise typer.Exit(1)


def _quiet_optuna() -> None:
    try:
        import optuna
    except ImportError:  # random search: nothing to quiet
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextmanager
def trial_lines() -> Iterator[None]:
    """Show one line per finished trial (the ``raycore.tuning`` logger) while the sweep runs."""

    class _Console(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            style = "yellow" if record.levelno >= logging.WARNING else "dim"
            console.print(f"[{style}]{record.getMessage()}[/]")

    logger = logging.getLogger("raycore.tuning")
    handler = _Console(level=logging.INFO)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _short(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return json.dumps(v) if isinstance(v, list) else str(v)

    return "\n".join(f"{k}={fmt(v)}" for k, v in params.items())


def print_leaderboard(outcome: Any) -> None:
    """The trials, best first: params, iterations done, validation metric, status, seconds."""
    config = outcome.config
    arrow = "↑" if config.mode == "max" else "↓"
    table = Table(
        title=f"{outcome.model_id} {outcome.model_name}: sweep {outcome.sweep_name} "
        f"({len(outcome.trials)} trial(s), {config.scheduler.kind}, {config.search.kind}), "
        f"best first; {config.metric} on the validation split"
    )
    table.add_column("trial")
    table.add_column("params", min_width=20, overflow="fold")
    table.add_column("iter", justify="right")
    table.add_column(f"{config.metric} {arrow}", justify="right")
    table.add_column("status", min_width=13)
    table.add_column("s", justify="right")
    style = {"TERMINATED": "green", "EARLY_STOPPED": "yellow", "ERROR": "red"}
    for row in outcome.trials:
        colour = style.get(row.status, "")
        table.add_row(
            row.trial_id,
            _short(row.params),
            str(row.iterations),
            "-" if row.value is None else f"{row.value:.4f}",
            f"[{colour}]{row.status}[/]" if colour else row.status,
            f"{row.seconds:.1f}",
        )
    console.print(table)
    console.print(
        f"compute: {outcome.iterations} iteration(s), {outcome.trial_seconds:.0f} trial-seconds, "
        f"{outcome.seconds:.0f} s wall; MLflow parent run {outcome.parent_run_id}; state {outcome.path}"
    )


def print_decision(outcome: Any) -> None:
    """What happened to the best trial's model: holdout score vs gate and oracle, registry decision."""
    best = outcome.best
    if best is None:
        return
    oracle = "" if outcome.oracle_metric is None else f" (oracle {outcome.oracle_metric:.4f})"
    mark = "[green]passes[/]" if outcome.passed else "[red]misses[/]"
    console.print(
        f"best trial [bold]{best.trial_id}[/]: valid {outcome.config.metric}={best.value:.4f}; "
        f"holdout {outcome.config.metric}={outcome.holdout_metric:.4f}{oracle} {mark} the gate"
    )
    console.print(f"decision: {outcome.decision}")
