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

import fcntl
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from raycore.errors import RegistryError
from raycore.monitoring.metrics import record_alias_change
from raycore.registry.audit import AuditLog, default_actor
from raycore.registry.bundle import ModelBundle
from raycore.registry.pyfunc import BUNDLE_ARTIFACT
from raycore.settings import FoundrySettings

__all__ = ["ALIASES", "ModelStore", "RegisteredVersion"]

ALIASES = ("champion", "challenger", "shadow")
T = TypeVar("T")

# One process-wide lock per lock file, so nested alias_lock() calls in a process do not deadlock.
_LOCKS: dict[str, tuple[threading.RLock, list[int]]] = {}
_LOCKS_GUARD = threading.Lock()


def _is_locked_error(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database is busy" in str(exc)


def _retry_locked(fn: Callable[[], T], *, attempts: int = 8) -> T:
    """Run ``fn``; retry with backoff when SQLite reports "database is locked"."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            return fn()
        except (MlflowException, sqlite3.OperationalError) as exc:
            if not _is_locked_error(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _set_mlflow_uris(uri: str) -> None:
    """Point MLflow's fluent API at ``uri`` without changing this process's environment.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, which
    ``FoundrySettings`` reads as the user's choice of a tracking server: a store
    opened for one FOUNDRY_HOME would redirect every later settings object.
    """
    before = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _enable_wal(uri: str) -> None:
    """Switch an embedded MLflow SQLite store to WAL (persistent in the file): readers stop blocking writers."""
    path = Path(uri.removeprefix("sqlite:///"))
    try:
        conn = sqlite3.connect(path, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
    except sqlite3.Error:  # pragma: no cover - a read-only or odd store keeps its mode
        pass


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
        _set_mlflow_uris(self.uri)
        if self.uri.startswith("sqlite:///"):
            _enable_wal(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.audit = AuditLog(settings.ensure_home() / "audit.db")
        self.lock_path = settings.ensure_home() / "registry.lock"

    @contextmanager
    def alias_lock(self) -> Iterator[None]:
        """Hold the registry's alias lock: alias reads, changes and audit rows happen one at a time.

        A file lock (``flock``) under FOUNDRY_HOME serialises every process of
        this foundry; a re-entrant thread lock serialises threads and lets a
        holder call ``set_alias`` inside it. With a remote MLflow server, the
        processes that change aliases must share FOUNDRY_HOME (the audit log
        lives there too).
        """
        key = str(self.lock_path)
        with _LOCKS_GUARD:
            entry = _LOCKS.setdefault(key, (threading.RLock(), [0]))
        rlock, depth = entry
        with rlock:
            fd = None
            if depth[0] == 0:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                fd = open(self.lock_path, "a+")
                fcntl.flock(fd.fileno(), fcntl.LOCK_EX)
            depth[0] += 1
            try:
                yield
            finally:
                depth[0] -= 1
                if fd is not None:
                    fcntl.flock(fd.fileno(), fcntl.LOCK_UN)
                    fd.close()

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
        # MLflow 3 logs LoggedModels (models:/m-<id>); a tracking server refuses that source
        # unless model_id names it (the embedded SQLite store accepts it without).
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        mv = _retry_locked(
            lambda: self.client.create_model_version(name, model_uri, run_id=run_id, tags=tags, model_id=model_id)
        )
        return str(mv.version)

    def alias_version(self, name: str, alias: str) -> str | None:
        try:
            registered = _retry_locked(lambda: self.client.get_registered_model(name))
        except MlflowException as exc:
            if _is_locked_error(exc):
                raise
            return None
        value = (registered.aliases or {}).get(alias)
        return None if value is None else str(value)

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
        """Point ``alias`` at ``version`` and audit it; return the previous holder.

        Read-change-audit runs under ``alias_lock`` (re-entrant: a caller that
        holds it to decide on the change keeps it).
        """
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias '{alias}'", hint=f"use one of: {', '.join(ALIASES)}")
        if not reason.strip():
            raise RegistryError("an alias change needs a reason", hint="pass --reason '...'")
        with self.alias_lock():
            self._require_version(name, version)
            previous = self.alias_version(name, alias)
            _retry_locked(lambda: self.client.set_registered_model_alias(name, alias, version))
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
        record_alias_change(model=name, alias=alias)
        return previous

    def remove_alias(
        self, *, name: str, alias: str, reason: str, actor: str | None = None, action: str = "remove_alias"
    ) -> str | None:
        """Delete ``alias`` (if set) and audit it; return the version it pointed at."""
        with self.alias_lock():
            previous = self.alias_version(name, alias)
            if previous is None:
                return None
            _retry_locked(lambda: self.client.delete_registered_model_alias(name, alias))
            self.audit.record(
                model=name,
                action=action,
                alias=alias,
                version=None,
                previous=previous,
                actor=actor or default_actor(),
                reason=reason,
            )
        record_alias_change(model=name, alias=alias)
        return previous

    def _require_version(self, name: str, version: str) -> None:
        try:
            _retry_locked(lambda: self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            if _is_locked_error(exc):
                raise
            known = ", ".join(v.version for v in self.versions(name)) or "none"
            raise RegistryError(
                f"model '{name}' has no version {version}",
                hint=f"registered versions: {known}",
            ) from exc

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
