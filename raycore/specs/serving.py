"""How one catalog model is served: replicas, autoscaling, batching, queue bounds, multiplexing.

A model is either *dedicated* (``multiplexed: false``: its own replicas, sized
by this spec, for the hot models) or part of the *long tail* (``multiplexed:
true``, the default: loaded on demand into the shared multiplexed deployment,
so 30 models fit 2 cores without 30 replicas). The defaults fit the whole
catalog on 2 cores: one replica of a quarter CPU, scaled up to two under load.

Example:
    >>> spec = ServingSpec(multiplexed=False, max_batch_size=64, batch_wait_timeout_s=0.002)
    >>> spec.autoscaling_config()["max_replicas"]
    2
    >>> ServingSpec(min_replicas=2, max_replicas=1)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: max_replicas (1) must be >= min_replicas (2)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from raycore.specs.base import FrozenSpec

__all__ = ["ServingSpec"]


class ServingSpec(FrozenSpec):
    """Serving of one model: where it runs, how many replicas, how requests are batched and bounded."""

    multiplexed: bool = Field(
        default=True,
        description="Serve from the shared multiplexed deployment (long tail); false: dedicated replicas (hot models).",
    )
    min_replicas: int = Field(
        default=1, ge=0, le=256, description="Fewest replicas (autoscaling floor)."
    )
    max_replicas: int = Field(
        default=2, ge=1, le=256, description="Most replicas (autoscaling ceiling)."
    )
    target_ongoing_requests: float = Field(
        default=16.0,
        gt=0,
        le=10_000,
        description="Ongoing requests per replica the autoscaler aims at.",
    )
    max_ongoing_requests: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Requests one replica works on at once (batches fill from these).",
    )
    max_queued_requests: int = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description="Requests waiting for a replica or a batch beyond which new ones get HTTP 503 with Retry-After.",
    )
    max_batch_size: int = Field(
        default=32, ge=1, le=10_000, description="Most requests predicted in one call."
    )
    batch_wait_timeout_s: float = Field(
        default=0.002,
        ge=0,
        le=1.0,
        description="Longest wait for a batch to fill before it runs anyway.",
    )
    replica_cpus: float = Field(default=0.25, ge=0, le=64, description="CPUs reserved per replica.")

    @model_validator(mode="after")
    def _consistent(self) -> ServingSpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})"
            )
        if self.target_ongoing_requests > self.max_ongoing_requests:
            raise ValueError(
                f"target_ongoing_requests ({self.target_ongoing_requests:g}) must be <= "
                f"max_ongoing_requests ({self.max_ongoing_requests}): a replica never holds more"
            )
        if self.max_batch_size > self.max_ongoing_requests:
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) must be <= max_ongoing_requests "
                f"({self.max_ongoing_requests}): a batch fills only from requests a replica holds"
            )
        return self

    def autoscaling_config(self) -> dict[str, Any]:
        """Ray Serve's ``autoscaling_config`` of a deployment with this spec."""
        return {
            "min_replicas": self.min_replicas,
            "initial_replicas": max(self.min_replicas, 1),
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
        }
