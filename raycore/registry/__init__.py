"""Registry: the ModelBundle, the MLflow store, aliases and the audit log."""

from raycore.registry.audit import AuditEvent, AuditLog, default_actor
from raycore.registry.bundle import BundleMetadata, ModelBundle

__all__ = [
    "ALIASES",
    "AuditEvent",
    "AuditLog",
    "BundleMetadata",
    "ModelBundle",
    "ModelStore",
    "RegisteredVersion",
    "default_actor",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The MLflow-backed store is imported lazily: mlflow is slow to import.
    if name in {"ModelStore", "RegisteredVersion", "ALIASES"}:
        from raycore.registry import store

        return getattr(store, name)
    raise AttributeError(name)
