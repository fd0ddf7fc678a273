"""Starting or joining Ray from settings."""

from __future__ import annotations

import os

from raycore.errors import ConfigurationError
from raycore.settings import FoundrySettings

__all__ = ["connect_ray", "require_gpus"]


def connect_ray(settings: FoundrySettings, *, log_to_driver: bool = False) -> None:
    """Join the cluster at ``settings.ray_address``, or start a local Ray of our own.

    A no-op when Ray is already initialised in this process (tests share one).
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    kwargs: dict[str, object] = {"log_to_driver": log_to_driver, "configure_logging": log_to_driver}
    if settings.ray_address:
        kwargs["address"] = settings.ray_address
    else:
        # The embedded default is this process's own Ray: never silently join
        # another cluster that happens to run on the box (its workers may see
        # another FOUNDRY_HOME). RAY_ADDRESS (or `ray job submit`) joins one.
        kwargs["address"] = "local"
        if settings.num_cpus:
            kwargs["num_cpus"] = settings.num_cpus
    try:
        ray.init(**kwargs)  # type: ignore[arg-type]
    except ConnectionError as exc:
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {settings.ray_address!r}: {exc}",
            hint="start it with `ray start --head` or unset RAY_ADDRESS to use a local Ray",
        ) from exc


def require_gpus(count: int) -> None:
    """Fail before any work starts if the cluster has fewer than ``count`` GPUs."""
    import ray

    available = float(ray.cluster_resources().get("GPU", 0.0))
    if available < count:
        raise ConfigurationError(
            f"use_gpu is set and {count} GPU(s) are needed, but the Ray cluster has {available:g}",
            hint="set resources.use_gpu: false in the model spec, or join a cluster with GPU nodes (RAY_ADDRESS)",
        )
