"""Connecting to Ray: a local instance by default, any cluster through RAY_ADDRESS."""

from raycore.runtime.ray_runtime import connect_ray, require_gpus

__all__ = ["connect_ray", "require_gpus"]
