"""Lineage of a registered version: the run, its params, data snapshots, feature view, code.

Example:
    >>> info = version_lineage(store, "sales_forecasting", alias="champion")   # doctest: +SKIP
    >>> info["data_digests"]["silver/store_sales"]                            # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlflow.exceptions import MlflowException

from raycore.errors import RegistryError

if TYPE_CHECKING:
    from raycore.registry.store import ModelStore

__all__ = ["parse_model_ref", "version_lineage"]

_REF = re.compile(r"^(?P<model>[^@:]+)(?:@(?P<alias>[a-z_]+)|:(?P<version>\d+))?$")


def parse_model_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``MODEL``, ``MODEL@alias`` or ``MODEL:version`` → (model, alias, version).

    Example:
        >>> parse_model_ref("mdl-001@challenger")
        ('mdl-001', 'challenger', None)
        >>> parse_model_ref("sales_forecasting:3")
        ('sales_forecasting', None, '3')
        >>> parse_model_ref("mdl-001")
        ('mdl-001', None, None)
    """
    match = _REF.match(ref.strip())
    if match is None:
        raise RegistryError(
            f"cannot read model reference '{ref}'",
            hint="use MODEL, MODEL@alias (champion, challenger, shadow) or MODEL:version",
        )
    return match["model"], match["alias"], match["version"]


def version_lineage(
    store: ModelStore, name: str, *, alias: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """Everything recorded about how ``name@alias`` (or ``name:version``) was made."""
    resolved = store.resolve(name, alias=alias, version=version)
    client = store.client
    try:
        mv = client.get_model_version(name, resolved)
    except MlflowException as exc:
        raise RegistryError(
            f"model '{name}' has no version {resolved}",
            hint="`foundry registry versions MODEL` lists the versions",
        ) from exc
    aliases = [a for a, v in (client.get_registered_model(name).aliases or {}).items() if str(v) == resolved]
    out: dict[str, Any] = {
        "model": name,
        "version": resolved,
        "aliases": sorted(aliases),
        "registered_at_ms": int(mv.creation_timestamp or 0),
        "source": mv.source,
        "version_tags": dict(mv.tags or {}),
        "run_id": mv.run_id,
    }
    if not mv.run_id:
        return out
    run = client.get_run(mv.run_id)
    tags = dict(run.data.tags)
    out.update(
        {
            "run_name": run.info.run_name,
            "experiment_id": run.info.experiment_id,
            "run_started_ms": run.info.start_time,
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
            "data_digests": {
                k.removeprefix("data_digest."): v for k, v in tags.items() if k.startswith("data_digest.")
            },
            "feature_view": tags.get("feature_view"),
            "feature_view_digest": tags.get("feature_view_digest"),
            "feature_state_digest": tags.get("feature_state_digest"),
            "code_version": tags.get("code_version"),
            "algorithm": tags.get("algorithm"),
            "gate": tags.get("gate"),
            "parent_run_id": tags.get("mlflow.parentRunId"),
        }
    )
    return out
