"""Starting or joining Ray from settings."""

from __future__ import annotations

import os

from raycore.errors import ConfigurationError
from raycore.settings import FoundrySettings

__all__ = ["check_direct_ingress", "connect_ray", "direct_ingress_env", "require_gpus"]


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
        if settings.serve_ingress == "direct":
            os.environ.update(direct_ingress_env(settings))  # Serve's actors inherit it from here
            # Serve keeps a stopping ingress replica up 30 s by default, for an external load
            # balancer to stop sending to it; with none in front (embedded default) 2 s will do.
            os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "2")
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


def direct_ingress_env(settings: FoundrySettings) -> dict[str, str]:
    """What makes Serve's ingress replica answer HTTP on ``settings.serve_port`` itself (direct ingress).

    Ray Serve gives every ingress replica its own HTTP server on a port from a
    range; here the range is the one port the user asked for (the app has one
    ingress replica). Serve reads these variables when its controller and
    replicas start, which inherit them from the process that starts the local
    Ray: ``connect_ray`` sets them before ``ray.init`` when
    ``FOUNDRY_SERVE_INGRESS=direct``.

    Example:
        >>> direct_ingress_env(FoundrySettings.load(serve_port=8123))["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"]
        '8123'
    """
    port = settings.serve_port
    return {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),  # Serve's range excludes its maximum
    }


def check_direct_ingress(settings: FoundrySettings) -> None:
    """With ``FOUNDRY_SERVE_INGRESS=direct``, refuse a Ray this process did not start with direct ingress on."""
    if settings.serve_ingress != "direct":
        return
    if settings.ray_address:
        where = f"the cluster at RAY_ADDRESS={settings.ray_address}"
    elif any(os.environ.get(k) != v for k, v in direct_ingress_env(settings).items()):
        where = "a Ray that was already running in this process without it"
    else:
        return
    raise ConfigurationError(
        f"FOUNDRY_SERVE_INGRESS=direct needs the local Ray this command starts, not {where}",
        hint=(
            "unset RAY_ADDRESS (embedded default), or keep FOUNDRY_SERVE_INGRESS=proxy and start the"
            " cluster with RAY_SERVE_ENABLE_DIRECT_INGRESS=1 and a load balancer in front of the"
            " replica ports (Ray Serve's HAProxy mode)"
        ),
    )
