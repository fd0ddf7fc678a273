"""``foundry``: one command for the whole foundry (typer + rich).

Heavy libraries (ray, mlflow) are imported inside commands, so
``foundry catalog list`` answers at once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from raycore.cli.conformal_cmds import conformal_app
from raycore.cli.data_cmds import data_app
from raycore.cli.demo_cmd import demo_app
from raycore.cli.explain_cmd import explain
from raycore.cli.monitor_cmds import monitor_app
from raycore.cli.registry_cmds import registry_app
from raycore.cli.retrain_cmd import retrain
from raycore.cli.threshold_cmds import threshold_app
from raycore.cli.traffic_cmds import keys_app, traffic_app
from raycore.cli.tune_cmd import tune
from raycore.errors import ConfigurationError, RaycoreError, SpecError
from raycore.settings import FoundrySettings

__all__ = ["app", "main"]

app = typer.Typer(
    help="Data Foundry: train, register, serve and watch the model catalog on Ray.",
    no_args_is_help=True,
)
catalog_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")
app.add_typer(monitor_app, name="monitor")
app.add_typer(traffic_app, name="traffic")
app.add_typer(keys_app, name="keys")
app.add_typer(threshold_app, name="threshold")
app.add_typer(demo_app, name="demo")
app.add_typer(conformal_app, name="conformal")
app.command("explain")(explain)
app.command("tune")(tune)
app.command("retrain")(retrain)
console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


def _fail(exc: RaycoreError) -> None:
    err_console.print(
        f"[bold red]error:[/] {exc.message if not isinstance(exc, SpecError) else exc}"
    )
    if exc.hint and not isinstance(exc, SpecError):
        err_console.print(f"[yellow]hint:[/] {exc.hint}")
    code = 2 if isinstance(exc, (SpecError, ConfigurationError)) else 1
    raise typer.Exit(code)


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn foundry errors into a clear message and a non-zero exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except RaycoreError as exc:
            _fail(exc)
            raise  # unreachable: _fail exits

    return wrapper


@contextmanager
def steps() -> Iterator[Callable[[str], None]]:
    """A live progress display; the yielded callable starts the next step."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    current: list[TaskID] = []

    def step(message: str) -> None:
        if current:
            progress.update(current[-1], completed=1, total=1)
        current.append(progress.add_task(message, total=None))

    with progress:
        yield step
        if current:
            progress.update(current[-1], completed=1, total=1)


def _settings(port: int | None = None) -> FoundrySettings:
    return FoundrySettings.load(serve_port=port)


def _catalog() -> Any:
    from raycore.catalog import load_catalog

    settings = _settings()
    return load_catalog(extra_dirs=[settings.catalog_dir] if settings.catalog_dir else [])


@catalog_app.command("list")
@guarded
def catalog_list() -> None:
    """List every model in the catalog with its gate and registry status."""

    catalog = _catalog()
    status = _registry_status(_settings(), [s.name for s in catalog], quiet=True)
    table = Table(title=f"Model catalog ({len(catalog)} models)")
    for col in ("id", "name", "wave", "task", "algorithm", "gate", "status", "last metric"):
        table.add_column(col)
    for spec in catalog:
        st = status.get(spec.name, {})
        table.add_row(
            spec.id,
            spec.name,
            spec.wave,
            spec.task,
            f"{spec.algorithm.family}:{spec.algorithm.objective}",
            spec.gate.describe(),
            st.get("status", "untrained"),
            st.get("metric", "-"),
        )
    console.print(table)


@app.command()
@guarded
def train(
    model: str = typer.Argument(None, help="Catalog id (mdl-001) or name; omit with --all."),
    all_models: bool = typer.Option(
        False, "--all", help="Train the whole catalog and write a portfolio report."
    ),
    wave: str = typer.Option(None, help="With --all: only this wave (prod, 1, 2, 3, 4)."),
    report_dir: str = typer.Option(None, help="With --all: where to write portfolio.json/html."),
    seed: int = typer.Option(7, help="Data world seed."),
    scale: str = typer.Option("small", help="Data world scale: small, medium or large."),
    param: list[str] = typer.Option(
        None, "--param", help="Override an algorithm param for this run: KEY=VALUE (repeatable)."
    ),
    rounds: int = typer.Option(None, help="Override the boosting rounds for this run."),
) -> None:
    """Train one catalog model (or --all) on Ray, gate it, and register it if it passes.

    The first passing version becomes champion; later ones become challenger
    and are promoted only if they beat the champion on the same holdout.
    """
    from raycore.training import train_model

    settings = _settings()
    world = _world(seed, scale)
    if all_models == (model is not None):
        raise SpecError(
            "give either a model id or --all",
            field="model",
            hint="`foundry train mdl-005` trains one model; `foundry train --all` trains the catalog",
        )
    overrides = parse_params(param or [])
    if model is not None:
        spec = _catalog().get(model)
        with steps() as step:
            outcome = train_model(
                spec,
                settings=settings,
                world=world,
                progress=step,
                params=overrides,
                num_boost_round=rounds,
            )
        _print_outcome(outcome)
        return
    if overrides or rounds:
        raise SpecError(
            "--param/--rounds apply to one model, not --all", field="param", hint="name one model"
        )
    specs = [s for s in _catalog() if wave is None or s.wave == wave]
    if not specs:
        raise SpecError(
            f"no catalog model in wave '{wave}'", field="wave", hint="use prod, 1, 2, 3 or 4"
        )
    rows = _train_all(specs, settings, world)
    from pathlib import Path

    from raycore.training.portfolio import write_portfolio

    folder = Path(report_dir) if report_dir else settings.ensure_home() / "reports" / "portfolio"
    json_path, html_path = write_portfolio(rows, folder)
    _print_portfolio(rows)
    console.print(f"report: {json_path}\n        {html_path}")
    if not all(r.passed for r in rows):
        raise typer.Exit(1)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings → a dict; values are read as YAML scalars (numbers, booleans, text).

    Example:
        >>> parse_params(["num_leaves=7", "learning_rate=0.05", "boosting=dart"])
        {'num_leaves': 7, 'learning_rate': 0.05, 'boosting': 'dart'}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"cannot read --param '{item}'", field="param", hint="use KEY=VALUE, e.g. num_leaves=15")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, (dict, list)):
            raise SpecError(f"--param {key}: a single value is expected", field="param", hint="e.g. num_leaves=15")
        out[key.strip()] = value
    return out


def _world(seed: int, scale: str) -> Any:
    from pydantic import ValidationError

    from raycore.data.world import WorldConfig

    try:
        return WorldConfig(seed=seed, scale=scale)  # type: ignore[arg-type]
    except (ValidationError, ValueError, TypeError) as exc:
        raise SpecError(f"bad data world: {exc}", field="scale", hint="use --scale small, medium or large") from exc


def _train_all(specs: list[Any], settings: FoundrySettings, world: Any) -> list[Any]:
    from raycore.training import train_model
    from raycore.training.portfolio import train_portfolio

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    overall = progress.add_task("catalog", total=len(specs))
    current: dict[str, TaskID] = {}

    def on_event(kind: str, spec: Any, row: Any) -> None:
        label = f"{spec.id} {spec.name}"
        if kind == "start":
            current[spec.id] = progress.add_task(f"{label}: starting", total=None)
        elif kind.startswith("step:"):
            progress.update(current[spec.id], description=f"{label}: {kind[5:]}")
        elif kind == "done":
            mark = "[green]pass[/]" if row.passed else f"[red]{row.status}[/]"
            value = "-" if row.metric is None else f"{row.metric:.4f}"
            progress.update(
                current[spec.id],
                description=f"{label}: {mark} {row.metric_name}={value}",
                completed=1,
                total=1,
            )
            progress.advance(overall)

    from raycore.training.warm_pool import warm_training

    with progress, warm_training():  # LightGBM fits reuse warm workers across the catalog
        return train_portfolio(
            specs,
            train=lambda spec, say: train_model(spec, settings=settings, world=world, progress=say),
            on_event=on_event,
        )


def _print_portfolio(rows: list[Any]) -> None:
    passed = sum(r.passed for r in rows)
    table = Table(
        title=f"Portfolio: {passed}/{len(rows)} pass, {sum(r.seconds for r in rows):.0f} s"
    )
    for col in ("model", "metric", "value", "oracle", "ratio", "gate", "pass", "seconds"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r.model_id} {r.name}",
            r.metric_name,
            "-" if r.metric is None else f"{r.metric:.4f}",
            "-" if r.oracle is None else f"{r.oracle:.4f}",
            "-" if r.oracle_ratio is None else f"{r.oracle_ratio:.3f}",
            r.gate,
            "[green]yes[/]" if r.passed else f"[red]{r.status}[/]",
            f"{r.seconds:.1f}",
        )
    console.print(table)
    for r in rows:
        if r.error:
            err_console.print(f"[red]{r.model_id}[/]: {r.error}")


@app.command()
@guarded
def serve(
    models: list[str] = typer.Argument(
        None, help="Models to serve (default: every model with a champion)."
    ),
    port: int = typer.Option(None, help="HTTP port (default 8000 or FOUNDRY_SERVE_PORT)."),
    controller: bool = typer.Option(
        False,
        "--controller",
        help="Start the retrain controller actor (it starts anyway when a catalog model has retrain.auto: true).",
    ),
    demo: bool = typer.Option(
        False, "--demo", help="Controller in demo mode: cooldowns of retrain.demo_cooldown_s seconds."
    ),
) -> None:
    """Serve models at their champion version until Ctrl-C (and keep them healthy: the retrain controller)."""
    from raycore.serving.runner import start_serving

    settings = _settings(port)
    catalog = _catalog()
    names = (
        [catalog.get(m).name for m in models]
        if models
        else _champions(settings, [s.name for s in catalog])
    )
    if not names:
        raise ConfigurationError(
            "no model has a champion yet", hint="run `foundry train mdl-001` or `foundry up`"
        )
    automated = [s.name for s in catalog if s.retrain.auto]
    with steps() as step:
        step(f"starting Ray Serve with {', '.join(names)}")
        endpoint = start_serving(settings=settings, models=names)
        if controller or automated:
            from raycore.retraining import controller_actor

            why = f"retrain.auto on {', '.join(automated)}" if automated else "--controller"
            step(f"starting the retrain controller actor ({why}{', demo mode' if demo else ''})")
            controller_actor(settings, demo=demo, interval_s=5.0)
    console.print(f"serving at [bold]{endpoint}[/] — press Ctrl-C to stop")
    _block_until_interrupt()


@app.command()
@guarded
def status(
    port: int = typer.Option(None, help="HTTP port of the endpoint to check."),
    html_path: str = typer.Option(
        None, "--html", help="Also write the portfolio dashboard (a self-contained HTML page) to this file."
    ),
    screenshot_path: str = typer.Option(
        None, "--screenshot", help="With --html: also render the page to this PNG (needs a headless Chromium)."
    ),
) -> None:
    """Registry state of every catalog model and whether the endpoint answers."""

    settings = _settings(port)
    catalog = _catalog()
    _print_status(settings, [s.name for s in catalog], catalog)
    if html_path:
        from pathlib import Path

        from raycore.reporting import collect_status, render_status_page

        page = Path(html_path)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(render_status_page(collect_status(settings=settings, catalog=catalog)))
        console.print(f"dashboard: {page.resolve()}")
        if screenshot_path:
            from raycore.reporting.screenshot import screenshot

            console.print(f"screenshot: {screenshot(page, Path(screenshot_path)).resolve()}")


@app.command()
@guarded
def up(
    once: bool = typer.Option(
        False, "--once", help="Exit 0 after a successful self-check request."
    ),
    model: str = typer.Option("mdl-001", help="The model the skeleton runs."),
    port: int = typer.Option(None, help="HTTP port (default 8000 or FOUNDRY_SERVE_PORT)."),
) -> None:
    """Data → train on Ray → register → serve → self-check, on the embedded default."""
    from raycore.cli.up import run_up

    settings = _settings(port)
    started = time.perf_counter()
    with steps() as step:
        result = run_up(settings=settings, model=model, step=step)
    _print_outcome(result.outcome)
    console.print(
        f"endpoint: [bold]{result.endpoint}/v1/models/{result.outcome.model_name}/predict[/]"
    )
    console.print_json(data={"inputs": result.sample_inputs})
    console.print(
        f"sample prediction: [bold]{result.sample_prediction:,.2f}[/] from model version {result.sample_version} "
        "(features looked up in the online store)"
    )
    console.print(
        f"self-check: missing input → HTTP {result.bad_status} naming '{result.bad_field}'; "
        f"unknown entity → HTTP {result.unknown_status}"
    )

    catalog = _catalog()
    _print_status(settings, [s.name for s in catalog], catalog)
    console.print(f"up in {time.perf_counter() - started:.1f}s")
    if once:
        from raycore.serving.runner import stop_serving

        stop_serving()
        return
    console.print("serving — press Ctrl-C to stop")
    _block_until_interrupt()


def _block_until_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping")


def _print_outcome(outcome: Any) -> None:
    table = Table(title=f"{outcome.model_id} {outcome.model_name}")
    for col in ("metric", "value", "oracle", "gate", "pass", "version", "run", "seconds"):
        table.add_column(col)
    table.add_row(
        outcome.metric_name,
        f"{outcome.metric:.4f}",
        "-" if outcome.oracle_metric is None else f"{outcome.oracle_metric:.4f}",
        outcome.gate,
        "[green]yes[/]" if outcome.passed else "[red]no[/]",
        outcome.version or "-",
        outcome.run_id[:12],
        f"{outcome.seconds:.1f}",
    )
    console.print(table)
    if getattr(outcome, "decision", ""):
        console.print(f"registry: {outcome.decision}")


def _registry_status(
    settings: FoundrySettings, names: list[str], *, quiet: bool = False
) -> dict[str, dict[str, str]]:
    if settings.tracking_uri.startswith("sqlite:") and not (settings.home / "mlflow.db").exists():
        return {}  # nothing trained yet: do not create an empty database just to look
    from raycore.registry.store import ModelStore

    store = ModelStore(settings)
    out: dict[str, dict[str, str]] = {}
    for name in names:
        versions = store.versions(name)
        if not versions:
            continue
        champion = next((v for v in versions if "champion" in v.aliases), None)
        challenger = next((v for v in versions if "challenger" in v.aliases), None)
        latest = champion or versions[-1]
        tags = latest.tags
        metric = (
            f"{tags['metric_name']}={float(tags['metric_value']):.4f}"
            if "metric_value" in tags
            else "-"
        )
        out[name] = {
            "status": "champion" if champion else "candidate",
            "version": latest.version,
            "metric": metric,
            "versions": str(len(versions)),
            "challenger": challenger.version if challenger else "-",
        }
    return out


def _champions(settings: FoundrySettings, names: list[str]) -> list[str]:
    return [n for n, st in _registry_status(settings, names).items() if st["status"] == "champion"]


def _print_status(settings: FoundrySettings, names: list[str], catalog: Any) -> None:
    import httpx

    status = _registry_status(settings, names)
    try:
        ready = httpx.get(f"{settings.endpoint}/v2/health/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        ready = False
    table = Table(title="Foundry status")
    for col in ("id", "name", "status", "champion", "challenger", "versions", "metric"):
        table.add_column(col)
    for spec in catalog:
        st = status.get(spec.name, {})
        table.add_row(
            spec.id,
            spec.name,
            st.get("status", "untrained"),
            st.get("version", "-") if st.get("status") == "champion" else "-",
            st.get("challenger", "-"),
            st.get("versions", "0"),
            st.get("metric", "-"),
        )
    console.print(table)
    console.print(f"home: {settings.home}")
    console.print(f"tracking: {settings.tracking_uri}")
    console.print(
        f"endpoint: {settings.endpoint} ({'[green]ready[/]' if ready else 'not running'})"
    )


def quiet_libraries() -> None:
    """Keep third-party chatter (MLflow hints, Serve info logs) off the user's terminal."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    warnings.filterwarnings("ignore", module=r"mlflow\..*")
    for name in ("mlflow", "ray.serve", "ray.train", "ray.tune", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow warns on every pyfunc log that python models are cloudpickled; ours is a
    # class of this installed package, so the warning says nothing actionable.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)


def main() -> None:
    """Console-script entry point."""
    quiet_libraries()
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
