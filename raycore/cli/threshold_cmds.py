"""``foundry threshold``: simulate, set and roll back a binary model's decision threshold.

    foundry threshold show     MODEL [--json]
    foundry threshold simulate MODEL --threshold T [--source auto|logged|holdout] [--cost-fp C] [--cost-fn C] [--json]
    foundry threshold set      MODEL T --reason "..." [--skip-simulation]
    foundry threshold rollback MODEL --reason "..."
    foundry threshold labels   MODEL FILE      (parquet/csv with request_id, label)

A change is live for the next request of every replica (they re-read the
state file when it changes) and is recorded in the audit log with who, when,
why, before, after and the simulated impact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.errors import DataError, ThresholdError
from raycore.settings import FoundrySettings

__all__ = ["threshold_app"]

threshold_app = typer.Typer(
    help="Decision thresholds of binary models: simulate, set, roll back (audited, live without redeploy).",
    no_args_is_help=True,
)
console = Console()


def _binary_spec(model: str) -> Any:
    from raycore.cli.main import _catalog

    spec = _catalog().get(model)
    if spec.task != "binary":
        raise ThresholdError(
            f"{spec.id} {spec.name} is a {spec.task} model; decision thresholds apply to binary classifiers",
            hint="`foundry catalog list` shows each model's task",
        )
    return spec


def _defaults(spec: Any) -> tuple[float, float, float]:
    t = spec.threshold
    return (t.default, t.cost_fp, t.cost_fn) if t is not None else (0.5, 1.0, 1.0)


def _store(settings: FoundrySettings) -> Any:
    from raycore.thresholds import ThresholdStore

    return ThresholdStore(home=settings.ensure_home())


def _simulate(
    spec: Any,
    settings: FoundrySettings,
    candidate: float,
    source: str,
    cost_fp: float,
    cost_fn: float,
) -> Any:
    from raycore.thresholds import simulate_threshold
    from raycore.thresholds.replay import replay_rows

    default, _, _ = _defaults(spec)
    current = _store(settings).current(spec.name, default=default)
    data = replay_rows(spec, settings=settings, source=source)  # type: ignore[arg-type]
    sim = simulate_threshold(
        scores=data.scores,
        labels=data.labels,
        candidate=candidate,
        current=current,
        cost_fp=cost_fp,
        cost_fn=cost_fn,
    )
    return sim, data


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _print_simulation(spec: Any, sim: Any, source: str) -> None:
    table = Table(
        title=f"{spec.id} {spec.name}: threshold {sim.candidate.threshold:g} vs current {sim.current.threshold:g}"
    )
    for col in ("", "current", "candidate", "change"):
        table.add_column(col, justify="right" if col else "left")
    cur, cand, delta = sim.current.as_dict(), sim.candidate.as_dict(), sim.as_dict()["delta"]
    for key in (
        "threshold",
        "precision",
        "recall",
        "alerts",
        "alert_rate",
        "fp",
        "fn",
        "expected_cost",
        "cost_per_1000",
    ):
        table.add_row(key, _fmt(cur[key]), _fmt(cand[key]), _fmt(delta.get(key)))
    console.print(table)
    console.print(f"replayed: {source}; cost model FP={sim.cost_fp:g}, FN={sim.cost_fn:g}")


@threshold_app.command("show")
@guarded
def show(
    model: str = typer.Argument(..., help="Catalog id or name."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The live threshold and every change still on its stack."""
    spec = _binary_spec(model)
    settings = FoundrySettings.load()
    default, cost_fp, cost_fn = _defaults(spec)
    store = _store(settings)
    history = store.history(spec.name)
    live = store.current(spec.name, default=default)
    if as_json:
        print(
            json.dumps(
                {
                    "model": spec.name,
                    "threshold": live,
                    "catalog_default": default,
                    "cost_fp": cost_fp,
                    "cost_fn": cost_fn,
                    "history": [h.__dict__ for h in history],
                }
            )
        )
        return
    console.print(
        f"{spec.id} {spec.name}: live threshold [bold]{live:g}[/] (catalog default {default:g})"
    )
    if history:
        table = Table(title="changes (newest last)")
        for col in ("at", "threshold", "actor", "reason"):
            table.add_column(col)
        for h in history:
            table.add_row(h.at, f"{h.threshold:g}", h.actor, h.reason)
        console.print(table)


@threshold_app.command("simulate")
@guarded
def simulate(
    model: str = typer.Argument(..., help="Catalog id or name."),
    threshold: float = typer.Option(
        ..., "--threshold", "-t", help="Candidate threshold in (0, 1)."
    ),
    source: str = typer.Option(
        "auto", help="auto (log when labelled, else holdout) | logged | holdout."
    ),
    cost_fp: float | None = typer.Option(None, help="Cost of a false positive (default: catalog)."),
    cost_fn: float | None = typer.Option(None, help="Cost of a false negative (default: catalog)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Precision, recall, alert volume and expected cost at T against the live threshold."""
    from raycore.thresholds import validate_threshold

    if source not in ("auto", "logged", "holdout"):
        raise ThresholdError(f"unknown --source '{source}'", hint="auto, logged or holdout")
    spec = _binary_spec(model)
    validate_threshold(threshold)
    _, c_fp, c_fn = _defaults(spec)
    sim, data = _simulate(
        spec,
        FoundrySettings.load(),
        threshold,
        source,
        cost_fp if cost_fp is not None else c_fp,
        cost_fn if cost_fn is not None else c_fn,
    )
    if as_json:
        print(json.dumps({"model": spec.name, "source": data.source, **sim.as_dict()}))
    else:
        _print_simulation(spec, sim, data.source)


@threshold_app.command("set")
@guarded
def set_threshold(
    model: str = typer.Argument(..., help="Catalog id or name."),
    threshold: float = typer.Argument(..., help="New threshold in (0, 1)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit log)."),
    skip_simulation: bool = typer.Option(
        False, help="Set without replaying labelled predictions first."
    ),
) -> None:
    """Apply T to serving now (no redeploy), audited with the simulated impact."""
    from raycore.thresholds import validate_threshold

    spec = _binary_spec(model)
    value = validate_threshold(threshold)
    if not reason.strip():
        raise ThresholdError("a threshold change needs a reason", hint='pass --reason "..."')
    settings = FoundrySettings.load()
    default, cost_fp, cost_fn = _defaults(spec)
    evidence: dict[str, Any] = {}
    if not skip_simulation:
        sim, data = _simulate(spec, settings, value, "auto", cost_fp, cost_fn)
        _print_simulation(spec, sim, data.source)
        evidence = {"simulation": sim.as_dict(), "replayed": data.source}
    change = _store(settings).set(
        model=spec.name, threshold=value, reason=reason, default=default, evidence=evidence
    )
    console.print(
        f"{spec.name}: threshold {change.before:g} → [bold]{change.after:g}[/] (audit #{change.audit_id}); "
        "live on the next request"
    )


@threshold_app.command("rollback")
@guarded
def rollback(
    model: str = typer.Argument(..., help="Catalog id or name."),
    reason: str = typer.Option("rollback", "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Restore the threshold that was live before the latest change."""
    spec = _binary_spec(model)
    default, _, _ = _defaults(spec)
    change = _store(FoundrySettings.load()).rollback(
        model=spec.name, reason=reason, default=default
    )
    console.print(
        f"{spec.name}: threshold {change.before:g} → [bold]{change.after:g}[/] (audit #{change.audit_id})"
    )


@threshold_app.command("labels")
@guarded
def labels(
    model: str = typer.Argument(..., help="Catalog id or name."),
    file: Path = typer.Argument(
        ..., exists=False, help="Parquet or CSV with request_id and label."
    ),
) -> None:
    """Record labels that arrived for answered requests (joined to the prediction log by request_id)."""
    import pandas as pd

    from raycore.feedback import record_labels

    spec = _binary_spec(model)
    if not file.is_file():
        raise DataError(
            f"no such file: {file}",
            hint="pass a parquet or CSV file with request_id and label columns",
        )
    try:
        frame = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
    except Exception as exc:  # a corrupt or foreign file: say which
        raise DataError(
            f"cannot read {file}: {type(exc).__name__}: {exc}", hint="parquet or CSV"
        ) from exc
    path = record_labels(home=FoundrySettings.load().ensure_home(), model=spec.name, labels=frame)
    console.print(f"{len(frame)} label(s) recorded for {spec.name} → {path}")
