"""``foundry traffic`` and ``foundry keys``: traffic policies per model, API keys for the endpoints.

    foundry traffic show MODEL [--json] [--events N]
    foundry traffic set  MODEL --reason "..." (--file policy.yaml | --single
                         | --ab champion=90,challenger=10 [--sticky customer_id]
                         | --canary challenger [--start 5] [--step 10] [--every-s 60] [--every-requests N]
                                    [--max 100] [--max-error-rate 0.01] [--max-p99-ratio 1.5]
                                    [--max-p99-ms MS] [--min-requests 100] [--sticky KEY]
                         | --shadow challenger [--sample 100])
    foundry keys create (--infer | --admin) [--label TEXT]
    foundry keys list

MODEL is a catalog id (mdl-001) or a registered name (sales_forecasting).
``set`` checks the policy's aliases against the registry: an alias the model
does not have is refused and nothing changes. Running replicas pick the new
policy up within a second; every change is in the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.errors import RegistryError, SpecError
from raycore.settings import FoundrySettings

__all__ = ["keys_app", "traffic_app"]

traffic_app = typer.Typer(
    help="Traffic policies per model: single, A/B split, canary, shadow.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="API keys for the Serve endpoints (stored as SHA-256 hashes).", no_args_is_help=True
)
console = Console()


def _spec(model: str) -> Any:
    from raycore.cli.main import _catalog

    return _catalog().get(model)


def _stores() -> tuple[Any, Any]:
    from raycore.registry.store import ModelStore
    from raycore.registry.traffic_state import TrafficStateStore

    store = ModelStore(FoundrySettings.load())
    return store, TrafficStateStore.open(store)


def _aliases(store: Any, name: str) -> dict[str, str]:
    versions = store.versions(name)
    if not versions:
        raise RegistryError(
            f"{name} has no registered version", hint=f"train it first (`foundry train {name}`)"
        )
    return {alias: v.version for v in versions for alias in v.aliases}


@traffic_app.command("show")
@guarded
def show(
    model: str = typer.Argument(..., help="Catalog id or name."),
    as_json: bool = typer.Option(False, "--json", help="Print policy, canary and events as JSON."),
    events: int = typer.Option(
        10, "--events", min=0, help="How many recent traffic events to list."
    ),
) -> None:
    """The active policy, the canary's live percent, shadow agreement and the last traffic events."""

    from raycore.registry.traffic_state import TrafficStateStore
    from raycore.serving.traffic import shadow_stats

    spec = _spec(model)
    home = FoundrySettings.load().ensure_home()
    state = TrafficStateStore.reader(home=home)  # reading needs neither MLflow nor the lock
    active = state.active(spec.name)
    live = state.canary(spec.name)
    shadow = shadow_stats(home=home, model=spec.name)
    recent = state.events(spec.name, limit=events)
    if as_json:
        console.print_json(
            data={
                "model": spec.name,
                "version": active.version,
                "source": active.source,
                "policy": active.policy.model_dump(mode="json"),
                "updated_at": active.updated_at,
                "actor": active.actor,
                "reason": active.reason,
                "canary": None if live is None else live.__dict__,
                "shadow": shadow.__dict__,
                "events": [e.__dict__ for e in recent],
            }
        )
        return
    table = Table(title=f"traffic of {spec.id} {spec.name}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("policy", active.policy.describe())
    table.add_row("source", f"{active.source} (version {active.version})")
    if active.source == "set":
        table.add_row(
            "set",
            f"{(active.updated_at or '')[:19].replace('T', ' ')} by {active.actor}: {active.reason}",
        )
    if active.policy.canary is not None:
        if live is None:
            table.add_row("canary", f"{active.policy.canary.start_percent:g}% (start, no step yet)")
        else:
            table.add_row(
                "canary",
                f"{live.percent:g}% {live.status} after {live.steps} event(s), {live.updated_at[:19]}",
            )
    if shadow.records:
        agree = "-" if shadow.agree_rate is None else f"{shadow.agree_rate:.1%}"
        table.add_row(
            "shadow log",
            f"{shadow.records} record(s), agreement {agree}, shadow errors {shadow.shadow_errors}, "
            f"max |diff| {shadow.max_abs_diff if shadow.max_abs_diff is not None else '-'}",
        )
    console.print(table)
    if recent:
        log = Table(title=f"last {len(recent)} traffic event(s)")
        for col in ("#", "when (UTC)", "action", "alias", "change", "actor", "reason"):
            log.add_column(col, overflow="fold")
        for e in recent:
            change = f"{e.previous or '-'} → {e.version or '-'}"
            log.add_row(
                str(e.id),
                e.at[:19].replace("T", " "),
                e.action,
                e.alias or "-",
                change,
                e.actor,
                e.reason,
            )
        console.print(log)


@traffic_app.command("set")
@guarded
def set_policy(
    model: str = typer.Argument(..., help="Catalog id or name."),
    reason: str = typer.Option(..., help="Why (recorded in the audit log)."),
    file: Path = typer.Option(None, "--file", help="A traffic policy YAML."),
    single: bool = typer.Option(False, "--single", help="Every request to the champion."),
    ab: str = typer.Option(None, "--ab", help="Weighted split, e.g. champion=90,challenger=10."),
    sticky: str = typer.Option(
        None, "--sticky", help="Request field/header that pins a caller to one alias."
    ),
    canary: str = typer.Option(None, "--canary", help="Alias to canary (challenger or shadow)."),
    start: float = typer.Option(None, "--start", help="Canary: starting percent."),
    step: float = typer.Option(None, "--step", help="Canary: percent added per healthy step."),
    every_s: float = typer.Option(None, "--every-s", help="Canary: seconds between steps."),
    every_requests: int = typer.Option(
        None, "--every-requests", help="Canary: challenger requests between steps."
    ),
    max_percent: float = typer.Option(None, "--max", help="Canary: where stepping stops."),
    max_error_rate: float = typer.Option(
        None, "--max-error-rate", help="Canary: error rate that rolls back."
    ),
    max_p99_ratio: float = typer.Option(
        None, "--max-p99-ratio", help="Canary: p99 / champion p99 that rolls back."
    ),
    max_p99_ms: float = typer.Option(
        None, "--max-p99-ms", help="Canary: absolute p99 (ms) that rolls back."
    ),
    min_requests: int = typer.Option(
        None, "--min-requests", help="Canary: challenger requests per judged window."
    ),
    shadow: str = typer.Option(None, "--shadow", help="Alias that gets a copy of live traffic."),
    sample: float = typer.Option(None, "--sample", help="Shadow: percent of requests copied."),
) -> None:
    """Set a model's traffic policy from a YAML file or flags (checked against the registry, audited)."""

    from raycore.specs.traffic import load_traffic_policy, policy_from_flags

    options = {
        "start_percent": start,
        "step_percent": step,
        "step_every_s": every_s,
        "step_every_requests": every_requests,
        "max_percent": max_percent,
        "max_error_rate": max_error_rate,
        "max_p99_ms_ratio": max_p99_ratio,
        "max_p99_ms": max_p99_ms,
        "min_requests_per_step": min_requests,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if file is not None:
        flags = [
            f
            for f, v in (
                ("--single", single),
                ("--ab", ab),
                ("--canary", canary),
                ("--shadow", shadow),
            )
            if v
        ]
        if flags or options or sticky or sample is not None:
            raise SpecError(
                f"--file cannot be combined with {', '.join(flags) or 'policy options'}",
                field="--file",
                hint="put the whole policy in the YAML file, or use flags alone",
            )
        policy = load_traffic_policy(file)
    else:
        policy = policy_from_flags(
            single=single,
            ab=ab,
            sticky=sticky,
            canary=canary,
            canary_options=options,
            shadow=shadow,
            sample_percent=sample,
        )
    spec = _spec(model)
    store, state = _stores()
    with store.alias_lock():  # the aliases cannot move between the check and the write
        aliases = _aliases(store, spec.name)
        active = state.set_policy(
            model=spec.name, policy=policy, reason=reason, existing_aliases=aliases
        )
    used = ", ".join(f"{a}=v{aliases[a]}" for a in policy.aliases())
    console.print(
        f"traffic of {spec.name} (version {active.version}): [green]{policy.describe()}[/] [{used}]"
    )


@keys_app.command("create")
@guarded
def keys_create(
    admin: bool = typer.Option(
        False, "--admin", help="An admin key (traffic changes, reloads; inference too)."
    ),
    infer: bool = typer.Option(False, "--infer", help="An inference key."),
    label: str = typer.Option(
        "", "--label", help="A note stored with the key's hash (who it is for)."
    ),
) -> None:
    """Create an API key: printed once, only its SHA-256 hash is stored under FOUNDRY_HOME."""

    from raycore.serving.auth import create_key

    if admin == infer:
        raise SpecError(
            "give exactly one of --admin or --infer",
            field="scope",
            hint="foundry keys create --infer",
        )
    home = FoundrySettings.load().ensure_home()
    key, record = create_key(home=home, scope="admin" if admin else "infer", label=label)
    console.print(f"[bold]{key}[/]", soft_wrap=True, highlight=False)
    console.print(
        f"{record.scope} key {record.id} created; it is shown only this once "
        f"(send it as 'Authorization: Bearer <key>' or 'x-api-key')."
    )


@keys_app.command("list")
@guarded
def keys_list(
    as_json: bool = typer.Option(False, "--json", help="Print the records as JSON."),
) -> None:
    """Stored keys: id, scope, label, creation time (never the keys)."""

    from raycore.serving.auth import list_keys

    records = list_keys(home=FoundrySettings.load().home)
    if as_json:
        console.print(
            json.dumps([{k: v for k, v in r.__dict__.items() if k != "sha256"} for r in records])
        )
        return
    table = Table(title=f"{len(records)} API key(s)")
    for col in ("id", "scope", "label", "created (UTC)"):
        table.add_column(col)
    for r in records:
        table.add_row(r.id, r.scope, r.label or "-", r.created_at[:19].replace("T", " "))
    console.print(table)
