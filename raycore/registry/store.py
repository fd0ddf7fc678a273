"""The MLflow-backed model store: runs, registered versions, aliases.

Embedded default: ``sqlite:///$FOUNDRY_HOME/mlflow.db`` with artifacts under
``$FOUNDRY_HOME/mlartifacts``. Setting ``MLFLOW_TRACKING_URI`` to a tracking
server switches to it with no code change.

Aliases, not stages: ``champion``, ``challenger``, ``shadow``. Every alias
change is written to the audit log.

Example:
    >>> store = ModelStore(FoundrySettings.load())                      # doctest: +SKIP
    >>> bundle, version = store.load_bundle("sales_forecasting", alias="champion")  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from raycore.errors import RegistryError
from raycore.registry.audit import AuditLog, default_actor
from raycore.registry.bundle import ModelBundle
from raycore.registry.pyfunc import BUNDLE_ARTIFACT
from raycore.settings import FoundrySettings

__all__ = ["ALIASES", "ModelStore", "RegisteredVersion"]

ALIASES = ("champion", "challenger", "shadow")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...]
    created_ms: int
    tags: dict[str, str]


class ModelStore:
    """Tracking + registry + audit, on MLflow."""

    def __init__(self, settings: FoundrySettings) -> None:
        self.settings = settings
        self.uri = settings.tracking_uri
        if self.uri.startswith("sqlite:"):
            settings.ensure_home()
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.audit = AuditLog(settings.ensure_home() / "audit.db")

    @property
    def embedded(self) -> bool:
        return self.uri.startswith("sqlite:")

    def experiment_id(self, model_name: str) -> str:
        """The experiment of a model (``foundry/<name>``), created on first use."""
        name = f"foundry/{model_name}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = f"{self.settings.artifact_root}/{model_name}" if self.embedded else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:
            # Another process created it between our lookup and create.
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def register(self, *, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
        """Create a new registered version from a logged model; return its version."""
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name, description=f"Data Foundry model {name}")
            except MlflowException:
                pass  # created concurrently
        mv = self.client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
        return str(mv.version)

    def alias_version(self, name: str, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def set_alias(
        self,
        *,
        name: str,
        alias: str,
        version: str,
        reason: str,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
        action: str = "set_alias",
    ) -> str | None:
        """Point ``alias`` at ``version`` and audit it; return the previous holder."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias '{alias}'", hint=f"use one of: {', '.join(ALIASES)}")
        previous = self.alias_version(name, alias)
        self.client.set_registered_model_alias(name, alias, version)
        self.audit.record(
            model=name,
            action=action,
            alias=alias,
            version=version,
            previous=previous,
            actor=actor or default_actor(),
            reason=reason,
            evidence=evidence,
        )
        return previous

    def versions(self, name: str) -> list[RegisteredVersion]:
        try:
            found = self.client.search_model_versions(f"name = '{name}'")
            # search results carry no aliases; the registered model has the map
            alias_map = dict(self.client.get_registered_model(name).aliases or {})
        except MlflowException:
            return []
        by_version: dict[str, list[str]] = {}
        for alias, version in alias_map.items():
            by_version.setdefault(str(version), []).append(alias)
        out = []
        for mv in found:
            out.append(
                RegisteredVersion(
                    name=name,
                    version=str(mv.version),
                    run_id=mv.run_id or "",
                    aliases=tuple(sorted(by_version.get(str(mv.version), []))),
                    created_ms=int(mv.creation_timestamp or 0),
                    tags=dict(mv.tags or {}),
                )
            )
        return sorted(out, key=lambda v: int(v.version))

    def resolve(self, name: str, *, alias: str | None = None, version: str | None = None) -> str:
        """The version number an alias (or explicit version) names; clear error if none."""
        if version is not None:
            return str(version)
        alias = alias or "champion"
        found = self.alias_version(name, alias)
        if found is None:
            raise RegistryError(
                f"model '{name}' has no version with alias '{alias}'",
                hint=f"train it first (`foundry train {name}`) or check `foundry status`",
            )
        return found

    def load_bundle(
        self, name: str, *, alias: str | None = None, version: str | None = None, dst: Path | None = None
    ) -> tuple[ModelBundle, str]:
        """Download and load the bundle of ``name@alias`` (or ``name/version``)."""
        resolved = self.resolve(name, alias=alias, version=version)
        target = dst or Path(tempfile.mkdtemp(prefix=f"foundry-{name}-v{resolved}-"))
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{resolved}", dst_path=str(target), tracking_uri=self.uri
            )
        except MlflowException as exc:
            raise RegistryError(
                f"cannot download model {name} v{resolved}: {exc}",
                hint="check that the artifact store is reachable and the version exists",
            ) from exc
        folder = Path(local) / "artifacts" / BUNDLE_ARTIFACT
        return ModelBundle.load(folder), resolved
