"""``foundry monitor``: drift checks on live traffic, the models' health at a glance, the reports.

    foundry monitor check  MODEL [--since T] [--until T] [--evidently] [--json]
    foundry monitor status [--json]
    foundry monitor report MODEL            path of the latest check's report (Evidently HTML when made)

``check`` reads the champion's answers in the prediction log, compares the
features rebuilt from the logged inputs with the reference profile stored with
the version, measures the live metric where labels came back, and writes the
report files under ``$FOUNDRY_HOME/monitoring/<model>/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.errors import DataError
from raycore.settings import FoundrySettings

__all__ = ["monitor_app"]

monitor_app = typer.Typer(help="Drift and live performance of served models.", no_args_is_help=True)
console = Console()


def _spec(model: str) -> Any:
    from raycore.cli.main import _catalog

    return _catalog().get(model)


@monitor_app.command("check")
@guarded
def check(
    model: str = typer.Argument(..., help="Catalog id or name."),
    since: str = typer.Option(None, help="Window start (ISO time, UTC); default: the whole log."),
    until: str = typer.Option(None, help="Window end (ISO time, UTC)."),
    evidently: bool = typer.Option(
        False, "--evidently", help="Also write Evidently's HTML + JSON report."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check the champion's recent traffic for drift and performance loss."""
    from raycore.monitoring.monitor import DriftMonitor

    spec = _spec(model)
    result = DriftMonitor(settings=FoundrySettings.load(), spec=spec).check(
        since=since, until=until, evidently=evidently
    )
    if as_json:
        print(json.dumps(asdict(result), default=str))
        return
    colour = {"NONE": "green", "MEDIUM": "yellow"}.get(result.severity, "red")
    console.print(
        f"{spec.id} {spec.name} v{result.version}: [{colour}]{result.severity}[/] on {result.rows} answered rows; "
        f"drifted: {', '.join(result.drifted_features) or 'none'}"
        + (" (predictions drifted)" if result.prediction_drift else "")
    )
    if result.live_n:
        console.print(
            f"live {spec.gate.metric} {result.live_metric} on {result.live_n} labelled rows "
            f"(holdout {result.holdout_metric}; drop {result.metric_drop:+.1%})"
            if result.metric_drop is not None
            else f"live {spec.gate.metric}: {result.live_metric} on {result.live_n} labelled rows"
        )
    est = result.estimated
    if est:
        console.print(
            f"estimated {est['metric']} without labels {est['estimated']:.4f} on {est['rows']} answers "
            f"(holdout, estimated alike: {est['reference']:.4f}; drop {est['estimated_drop']:+.1%})"
        )
    cov = result.coverage or {}
    if cov.get("levels"):
        realised = ", ".join(
            f"{lv['level']:.0%} {lv['realised']:.3f}" for lv in cov["levels"] if lv["realised"] is not None
        )
        console.print(f"conformal coverage {cov['status']} (n={cov['n_labelled']}): {realised}")
    console.print(f"report: {result.evidently_html or result.report_dir}")


@monitor_app.command("status")
@guarded
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Each model's drift, live metric, severity, last retrain and the controller's next step."""
    from raycore.cli.main import _catalog
    from raycore.reporting import collect_status
    from raycore.retraining.state import RetrainStateStore

    settings = FoundrySettings.load()
    rows = collect_status(settings=settings, catalog=_catalog())
    states = {s.model: s for s in RetrainStateStore(home=settings.home).all()}
    out: list[dict[str, Any]] = []
    for r in rows:
        state = states.get(r.spec.name)
        stage = state.stage if state else "idle"
        nxt = {
            "idle": "retrain on HIGH drift" if r.spec.retrain.auto else "none (retrain.auto off)",
            "training": "collect the job",
            "live": f"promote after {r.spec.retrain.min_live_comparisons} labelled comparisons",
            "watching": f"roll back if live {r.spec.gate.metric} drops > {r.spec.retrain.rollback_metric_drop:.0%}",
        }[stage]
        out.append(
            {
                "id": r.spec.id,
                "model": r.spec.name,
                "champion": r.champion,
                "drift": r.drift,
                "drifted_features": r.drifted_features,
                "live_metric": r.live_metric,
                "live_n": r.live_n,
                "last_retrain": r.retrain,
                "next_action": nxt,
            }
        )
    if as_json:
        print(json.dumps(out, default=str))
        return
    table = Table(title="monitoring")
    for col in ("id", "model", "champion", "drift", "live metric", "last retrain", "next action"):
        table.add_column(col)
    for o in out:
        live = f"{o['live_metric']:.4g} (n={o['live_n']})" if o["live_metric"] is not None else "-"
        table.add_row(
            *(str(o[k] or "-") for k in ("id", "model", "champion", "drift")),
            live,
            str(o["last_retrain"]),
            str(o["next_action"]),
        )
    console.print(table)


@monitor_app.command("report")
@guarded
def report(model: str = typer.Argument(..., help="Catalog id or name.")) -> None:
    """Where the latest check's report is (open the HTML in a browser)."""
    spec = _spec(model)
    latest = FoundrySettings.load().home / "monitoring" / spec.name / "latest.json"
    if not latest.is_file():
        raise DataError(
            f"{spec.name} has not been checked yet", hint=f"`foundry monitor check {spec.id}`"
        )
    data = json.loads(latest.read_text())
    print(data.get("evidently_html") or f"{data['report_dir']}/drift.json")
