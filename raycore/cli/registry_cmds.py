"""``foundry registry``: versions, promotion, rollback, history, lineage, aliases.

    foundry registry versions  MODEL
    foundry registry promote   MODEL [--version V] [--reason ...] [--force]
    foundry registry rollback  MODEL [--to V] [--reason ...]
    foundry registry history   MODEL [--json]
    foundry registry lineage   MODEL[@alias|:version] [--json]
    foundry registry alias     MODEL ALIAS VERSION --reason ...

MODEL is a catalog id (mdl-001) or a registered name (sales_forecasting).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.errors import RegistryError
from raycore.settings import FoundrySettings

__all__ = ["registry_app"]

registry_app = typer.Typer(
    help="Model registry: versions, promotion, rollback, audit history, lineage.",
    no_args_is_help=True,
)
console = Console()


def _spec(model: str) -> Any:
    from raycore.cli.main import _catalog

    return _catalog().get(model)


def _store() -> Any:
    from raycore.registry.store import ModelStore

    return ModelStore(FoundrySettings.load())


@registry_app.command("versions")
@guarded
def versions(model: str = typer.Argument(..., help="Catalog id or name.")) -> None:
    """Registered versions of a model with their aliases and gate metric."""

    spec = _spec(model)
    found = _store().versions(spec.name)
    if not found:
        raise RegistryError(f"{spec.name} has no registered version", hint=f"`foundry train {spec.id}`")
    table = Table(title=f"{spec.id} {spec.name}: {len(found)} version(s)")
    for col in ("version", "aliases", "metric", "source", "registered", "run"):
        table.add_column(col)
    for v in found:
        table.add_row(
            v.version,
            ", ".join(v.aliases) or "-",
            f"{v.tags.get('metric_name', '?')}={float(v.tags['metric_value']):.4f}"
            if "metric_value" in v.tags
            else "-",
            v.tags.get("source", "-"),
            _when(v.created_ms),
            v.run_id[:12],
        )
    console.print(table)


@registry_app.command("promote")
@guarded
def promote(
    model: str = typer.Argument(..., help="Catalog id or name."),
    version: str = typer.Option(None, help="Version to promote (default: the challenger)."),
    reason: str = typer.Option(None, help="Why (recorded in the audit log)."),
    force: bool = typer.Option(False, help="Promote even if the champion/challenger gate refuses."),
    seed: int = typer.Option(7, help="Data world seed of the fresh holdout."),
    scale: str = typer.Option("small", help="Data world scale of the fresh holdout."),
) -> None:
    """Make a version champion if it beats the champion on the same fresh holdout."""

    from raycore.cli.main import _world
    from raycore.registry.promotion import promote_version
    from raycore.training.pipeline import prepare_training

    spec = _spec(model)
    store = _store()
    target = version or store.alias_version(spec.name, "challenger")
    if target is None:
        raise RegistryError(
            f"{spec.name} has no challenger to promote",
            hint="pass --version N (`foundry registry versions` lists them)",
        )
    settings = FoundrySettings.load()
    prepared = prepare_training(spec, settings=settings, world=_world(seed, scale))
    decision = promote_version(store, prepared, version=str(target), reason=reason, force=force)
    _print_comparison(decision)
    console.print(f"[green]v{target} is now champion of {spec.name}[/]")


@registry_app.command("rollback")
@guarded
def rollback(
    model: str = typer.Argument(..., help="Catalog id or name."),
    to: str = typer.Option(None, "--to", help="Version to roll back to (default: the previous champion)."),
    reason: str = typer.Option(None, help="Why (recorded in the audit log)."),
) -> None:
    """Move champion back to the previous champion version in one step."""

    from raycore.registry.promotion import rollback_champion

    spec = _spec(model)
    new, old = rollback_champion(_store(), spec.name, to_version=to, reason=reason)
    console.print(f"champion of {spec.name}: v{old} → [green]v{new}[/]")


@registry_app.command("alias")
@guarded
def alias(
    model: str = typer.Argument(..., help="Catalog id or name."),
    name: str = typer.Argument(..., help="challenger or shadow (champion: use promote/rollback)."),
    version: str = typer.Argument(..., help="Version the alias should point at."),
    reason: str = typer.Option(..., help="Why (recorded in the audit log)."),
) -> None:
    """Point the challenger or shadow alias at a version (audited)."""

    if name == "champion":
        raise RegistryError(
            "champion changes only through promote (checked) or rollback",
            hint="`foundry registry promote MODEL --version N` or `foundry registry rollback MODEL`",
        )
    spec = _spec(model)
    previous = _store().set_alias(name=spec.name, alias=name, version=version, reason=reason)
    console.print(f"{name} of {spec.name}: {('v' + previous) if previous else '-'} → v{version}")


@registry_app.command("history")
@guarded
def history(
    model: str = typer.Argument(..., help="Catalog id or name."),
    as_json: bool = typer.Option(False, "--json", help="Print the events as JSON."),
) -> None:
    """Every alias change (and refused promotion): when, who, why, evidence, previous holder."""

    spec = _spec(model)
    events = _store().audit.history(spec.name)
    if as_json:
        console.print_json(data=[e.__dict__ for e in events])
        return
    table = Table(title=f"{spec.id} {spec.name}: {len(events)} registry event(s)")
    for col in ("#", "when (UTC)", "action", "alias", "version", "previous", "actor", "reason"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(
            str(e.id), e.at[:19].replace("T", " "), e.action, e.alias or "-",
            e.version or "-", e.previous or "-", e.actor, e.reason,
        )
    console.print(table)


@registry_app.command("lineage")
@guarded
def lineage(
    ref: str = typer.Argument(..., help="MODEL, MODEL@alias or MODEL:version."),
    as_json: bool = typer.Option(False, "--json", help="Print the lineage as JSON."),
) -> None:
    """Run, params, data snapshot digests, feature view version and code version of a version."""

    from raycore.registry.lineage import parse_model_ref, version_lineage

    model, alias_name, version = parse_model_ref(ref)
    spec = _spec(model)
    info = version_lineage(_store(), spec.name, alias=alias_name, version=version)
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    table = Table(title=f"lineage of {spec.name} v{info['version']}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for key in ("aliases", "run_id", "run_name", "parent_run_id", "algorithm", "gate",
                "feature_view", "feature_view_digest", "feature_state_digest", "code_version"):
        value = info.get(key)
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value or "-"))
    table.add_row("registered", _when(info["registered_at_ms"]))
    for key, value in sorted(info.get("data_digests", {}).items()):
        table.add_row(f"data {key}", value)
    for key, value in sorted(info.get("params", {}).items()):
        table.add_row(f"param {key}", value)
    for key, value in sorted(info.get("metrics", {}).items()):
        if key.startswith(("holdout_", "oracle_")):
            table.add_row(f"metric {key}", f"{value:.6g}")
    console.print(table)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _print_comparison(decision: Any) -> None:
    if not decision.comparisons:
        console.print(decision.summary)
        return
    table = Table(title=f"v{decision.candidate_version} vs champion v{decision.champion_version} (same holdout)")
    for col in ("role", "metric", "candidate", "champion", "change", "needed", "ok"):
        table.add_column(col)
    for c in decision.comparisons:
        table.add_row(
            c.role, c.metric, f"{c.candidate:.6g}", f"{c.champion:.6g}", f"{c.improvement:+.2%}",
            f"> {c.required:+.2%}" if c.role == "gate" else f">= {c.required:+.2%}",
            "[green]yes[/]" if c.ok else "[red]no[/]",
        )
    console.print(table)
