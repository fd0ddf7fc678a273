"""``foundry explain MODEL[@alias|:version]``: the global feature importance of a model version.

Tree models show mean |contribution| (exact TreeSHAP, margin space) on the
holdout; other families permutation importance. Both were computed when the
version was trained and logged to its MLflow run as ``importance.json``.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from raycore.cli.common import guarded
from raycore.errors import RegistryError
from raycore.settings import FoundrySettings

__all__ = ["explain"]

console = Console()


@guarded
def explain(
    ref: str = typer.Argument(..., help="MODEL, MODEL@alias or MODEL:version (default: champion)."),
    top: int = typer.Option(15, min=1, help="How many features to show."),
) -> None:
    """Global feature importance of a model version (logged at training)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from raycore.cli.main import _catalog
    from raycore.registry.lineage import parse_model_ref
    from raycore.registry.store import ModelStore

    model, alias, version = parse_model_ref(ref)
    spec = _catalog().get(model)
    store = ModelStore(FoundrySettings.load())
    resolved = store.resolve(spec.name, alias=alias, version=version)
    run_id = store.client.get_model_version(spec.name, resolved).run_id
    try:
        found = mlflow.artifacts.load_dict(f"runs:/{run_id}/importance.json")
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"{spec.name} v{resolved} has no logged importance",
            hint=f"versions trained before explanations existed have none; re-train with `foundry train {spec.id}`",
        ) from exc
    if found.get("kind") == "unavailable":
        raise RegistryError(
            f"importance of {spec.name} v{resolved} could not be computed at training: {found.get('error')}",
            hint="see the training run in MLflow",
        )
    values = found["importance"]
    table = Table(title=f"{spec.id} {spec.name} v{resolved}: {found['kind']}")
    table.add_column("feature")
    table.add_column("importance", justify="right")
    table.add_column("share", justify="right")
    total = sum(abs(v) for v in values.values()) or 1.0
    for name, value in list(values.items())[:top]:
        table.add_row(name, f"{value:.6g}", f"{abs(value) / total:.1%}")
    console.print(table)
