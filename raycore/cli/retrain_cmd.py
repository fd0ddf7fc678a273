"""``foundry retrain``: a manual retrain through the controller's safeguards, and its state.

    foundry retrain MODEL [--force] [--reason "..."]     judge, then retrain now (waits for the job)
    foundry retrain --status                              every model's retrain stage and last result

Without a running controller actor (the embedded default), the job runs in this
process; the live test and the rollback window that follow a deployed retrain
are then advanced by the next controller tick (``foundry retrain --tick``, or the
controller actor of a long-running foundry).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.settings import FoundrySettings

__all__ = ["retrain"]

console = Console()


def _controller(settings: FoundrySettings) -> Any:
    from raycore.retraining import RetrainController

    return RetrainController(
        home=str(settings.home),
        tracking_uri=settings.mlflow_tracking_uri,
        catalog_dir=str(settings.catalog_dir) if settings.catalog_dir else None,
        inline=True,
    )


def _print_status(rows: list[dict[str, Any]]) -> None:
    table = Table(title="retraining")
    for col in ("model", "stage", "version", "champion", "last started", "last result"):
        table.add_column(col)
    for s in rows:
        last = s.get("last_result") or {}
        table.add_row(
            s["model"],
            s["stage"],
            s.get("version") or "-",
            s.get("champion_version") or "-",
            s.get("last_started_at") or "-",
            f"{last.get('stage', '-')}: {str(last.get('reason', ''))[:80]}" if last else "-",
        )
    console.print(table)


@guarded
def retrain(
    model: str | None = typer.Argument(None, help="Catalog id or name."),
    force: bool = typer.Option(False, help="Skip the cooldown (a manual retrain only)."),
    reason: str = typer.Option("manual retrain", "--reason", help="Why (kept in the audit log)."),
    status: bool = typer.Option(False, "--status", help="Show every model's retrain stage."),
    tick: bool = typer.Option(
        False,
        "--tick",
        help="Advance live tests and rollback windows once, and check the automated models' new answers.",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Retrain a model now, through the same safeguards, gates and live test as automatic retrains."""
    from raycore.registry.audit import default_actor

    settings = FoundrySettings.load()
    controller = _controller(settings)
    if tick:
        events = controller.tick() + controller.watch()
        if as_json:
            print(json.dumps(events, default=str))
        for event in [] if as_json else events:
            console.print(event)
    if status or (model is None and not tick):
        rows = controller.status()
        if as_json:
            print(json.dumps(rows, default=str))
        else:
            _print_status(rows)
        return
    if model is None:
        return
    from raycore.cli.main import _catalog
    from raycore.runtime import connect_ray

    _catalog().get(model)  # an unknown model fails before Ray starts
    connect_ray(settings)
    out = controller.submit(model, kind="manual", force=force, detail=reason, actor=default_actor())
    verdict = out["verdict"]
    if not verdict["go"]:
        console.print(f"[yellow]blocked[/] ({verdict['safeguard']}): {verdict['reason']}")
        raise typer.Exit(1)
    console.print(f"retrain {out['job_id']} started: {verdict['reason']}")
    state = controller.wait(out["job_id"])
    if as_json:
        print(json.dumps(state, default=str))
        return
    last = (state or {}).get("last_result") or {}
    console.print(f"{out['model']}: {last.get('stage', '?')}: {last.get('reason', '')}")
    if state and state["stage"] == "live":
        console.print(
            f"v{state['version']} now meets live traffic; promotion waits for "
            "labelled live evidence (`foundry retrain --tick` or the controller actor)"
        )
