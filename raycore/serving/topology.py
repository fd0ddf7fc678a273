"""The serving topology: which model is hosted where, from the app's arguments and the catalog (Ray-free).

    hot models (``serving.multiplexed: false``)
        placement "ingress"     in the ingress process: no extra hop (the default: measured faster on 2 cores)
        placement "deployment"  each in its own ``ModelDeployment`` (autoscaling from its ServingSpec)
    the long tail (``serving.multiplexed: true``, the catalog default)
        one shared ``MultiplexedModels`` deployment sized by ``AppArgs.multiplex``

A model's ``ServingSpec`` comes from ``AppArgs.serving`` if given there, else
from its catalog entry, else the defaults.

Example:
    >>> args = AppArgs(models=["a", "b"], tracking_uri="sqlite:///x.db",
    ...                serving={"a": ServingSpec(multiplexed=False), "b": ServingSpec()})
    >>> plan = plan_topology(args)
    >>> plan.local, plan.dedicated, plan.multiplexed
    (['a'], [], ['b'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from raycore.serving.schemas import MAX_ROWS
from raycore.specs.serving import ServingSpec

__all__ = ["AppArgs", "Topology", "plan_topology", "resolve_serving"]

_TAIL = ServingSpec(multiplexed=True, min_replicas=1, max_replicas=2, replica_cpus=0.25)


class AppArgs(BaseModel):
    """Arguments of the Serve application (also the ``args`` of serve_apps/foundry.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(min_length=1, description="Registered model names to serve.")
    alias: str = Field(default="champion", description="Registry alias each model is loaded at.")
    tracking_uri: str = Field(description="MLflow tracking/registry URI.")
    home: str = Field(default=".foundry", description="FOUNDRY_HOME of the replicas.")
    online_store_uri: str | None = Field(
        default=None, description="Online feature store (redis://...); empty: SQLite under home."
    )
    catalog_dir: str | None = Field(
        default=None, description="Extra catalog folder (FOUNDRY_CATALOG_DIR)."
    )
    max_rows: int = Field(default=MAX_ROWS, ge=1, le=1_000_000, description="Max rows per request.")
    max_body_bytes: int = Field(
        default=32 * 2**20,
        ge=1024,
        le=2**31,
        description="Max request body (after decompression); larger: 413.",
    )
    num_replicas: int = Field(default=1, ge=1, le=64, description="Replicas of the ingress.")
    replica_cpus: float = Field(
        default=0.5, ge=0, le=64, description="CPUs reserved per ingress replica."
    )
    max_ongoing_requests: int = Field(
        default=256, ge=1, le=100_000, description="Requests one ingress replica works on at once."
    )
    max_queued_requests: int = Field(
        default=1024, ge=1, le=1_000_000,
        description="Requests waiting for an ingress replica beyond which new ones get 503 with Retry-After.",
    )  # fmt: skip
    retry_after_s: float = Field(
        default=1.0, gt=0, le=3600, description="Retry-After of a 503 for overload."
    )
    serving: dict[str, ServingSpec] = Field(
        default_factory=dict,
        description="ServingSpec per model; models not named here use their catalog entry.",
    )
    placement: Literal["ingress", "deployment"] = Field(
        default="ingress",
        description="Where hot (non-multiplexed) models run: in the ingress or own deployments.",
    )
    multiplex: ServingSpec = Field(
        default=_TAIL, description="Replicas and batching of the long-tail deployment."
    )
    reload_poll_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Seconds between alias checks of a replica (0: only on admin reload).",
    )
    predict_in_thread: bool = Field(
        default=False,
        description="Predict batches of in-process models in a worker thread; the event loop keeps reading.",
    )
    prediction_log: bool = Field(
        default=True, description="Append every prediction to the prediction log."
    )
    prediction_log_flush_s: float = Field(
        default=5.0, gt=0, le=3600, description="Prediction-log flush period."
    )
    access_log: bool = Field(
        default=False,
        description=(
            "Ray Serve's per-request access log line in the replica logs. Off by default: every"
            " prediction is already in the prediction log and the request metrics, and the line"
            " costs ~6% of a replica's CPU at a few hundred requests/s."
        ),
    )

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[str]) -> list[str]:
        seen = [m for i, m in enumerate(models) if m in models[:i]]
        if seen:
            raise ValueError(f"models are listed twice: {', '.join(sorted(set(seen)))}")
        return models

    @model_validator(mode="after")
    def _known(self) -> AppArgs:
        extra = sorted(set(self.serving) - set(self.models))
        if extra:
            raise ValueError(
                f"serving names models that are not served: {', '.join(extra)} (served: {', '.join(self.models)})"
            )
        return self


@dataclass(frozen=True)
class Topology:
    """Where each served model runs, and with which ServingSpec."""

    specs: dict[str, ServingSpec]
    local: list[str]
    dedicated: list[str]
    multiplexed: list[str]


def resolve_serving(args: AppArgs) -> dict[str, ServingSpec]:
    """Each served model's ServingSpec: ``args.serving``, else its catalog entry, else the defaults."""
    specs = dict(args.serving)
    missing = [m for m in args.models if m not in specs]
    if missing:
        from raycore.catalog import load_catalog
        from raycore.errors import CatalogError

        catalog = load_catalog(extra_dirs=[args.catalog_dir] if args.catalog_dir else [])
        for name in missing:
            try:
                specs[name] = catalog.get(name).serving
            except CatalogError:  # a model registered outside the catalog
                specs[name] = ServingSpec()
    return {m: specs[m] for m in args.models}


def plan_topology(args: AppArgs) -> Topology:
    """Split the served models into ingress-local, dedicated-deployment and multiplexed ones."""
    specs = resolve_serving(args)
    hot = [m for m, s in specs.items() if not s.multiplexed]
    return Topology(
        specs=specs,
        local=hot if args.placement == "ingress" else [],
        dedicated=hot if args.placement == "deployment" else [],
        multiplexed=[m for m, s in specs.items() if s.multiplexed],
    )
