"""The active traffic policy of each model, and the live state of its canary, under FOUNDRY_HOME.

Files (JSON, each replaced atomically: temp file + fsync + rename):

    $FOUNDRY_HOME/traffic/<model>.json          the active policy, with a ``version`` stamp
    $FOUNDRY_HOME/traffic/<model>.canary.json   the canary's live percent, status and step count

``version`` rises by one at every ``set_policy``: replicas poll it (a small
file read) and reload only when it changed. Every change is written under
the registry's alias lock and recorded in the registry's audit log — who,
when, why, the policy before and after; canary steps and rollbacks too.
With no policy set, a model follows its shipped default
(``raycore/catalog/traffic/<model>.yaml``) or, without one, ``single``.

Example:
    >>> state = TrafficStateStore.open(ModelStore(FoundrySettings.load()))             # doctest: +SKIP
    >>> state.set_policy(model="sales_forecasting", policy=policy, reason="try v4 on 10 %")  # doctest: +SKIP
    >>> state.active("sales_forecasting").policy.kind                                   # doctest: +SKIP
    'ab'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from raycore.errors import RegistryError, SpecError
from raycore.registry.audit import AuditEvent, AuditLog, default_actor
from raycore.runtime.state_file import read_json, write_json_atomic
from raycore.specs.traffic import TrafficPolicy, load_traffic_policy

if TYPE_CHECKING:
    from raycore.registry.store import ModelStore

__all__ = [
    "TRAFFIC_ACTIONS",
    "ActivePolicy",
    "CanaryLive",
    "CanaryStatus",
    "TrafficStateStore",
    "shipped_default",
]

TRAFFIC_ACTIONS = ("traffic_set", "canary_step", "canary_rollback")
CanaryStatus = Literal["stepping", "complete", "rolled_back"]
_SHIPPED = Path(__file__).resolve().parent.parent / "catalog" / "traffic"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def shipped_default(model: str, *, folder: Path | None = None) -> TrafficPolicy | None:
    """The policy shipped in ``raycore/catalog/traffic/<model>.yaml``, if there is one."""
    path = (folder or _SHIPPED) / f"{model}.yaml"
    return load_traffic_policy(path) if path.is_file() else None


@dataclass(frozen=True)
class ActivePolicy:
    """The policy a model follows now; ``version`` 0 means nobody set one (a default applies)."""

    model: str
    version: int
    policy: TrafficPolicy
    source: str  # "set", "shipped default" or "built-in default"
    updated_at: str | None = None
    actor: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CanaryLive:
    """Where a model's canary stands, as the serving replicas last wrote it."""

    model: str
    policy_version: int
    alias: str
    percent: float
    status: CanaryStatus
    steps: int
    updated_at: str


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    write_json_atomic(path, data)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = read_json(path)
    except json.JSONDecodeError as exc:
        raise RegistryError(
            f"traffic state file {path} is not valid JSON ({exc.msg} at line {exc.lineno})",
            hint="restore it, or set the policy again with `foundry traffic set`",
        ) from exc
    if data is not None and not isinstance(data, dict):
        raise RegistryError(
            f"traffic state file {path} does not hold a JSON object", hint="set the policy again"
        )
    return data


def _read_only() -> AbstractContextManager[Any]:
    """The lock of a read-only view: any write is refused before it starts."""
    raise RegistryError(
        "this traffic state view is read-only",
        hint="open it with TrafficStateStore.open(ModelStore(settings)) to change a policy",
    )


class TrafficStateStore:
    """Reads and writes the active policy and the canary's live state of every model.

    ``lock`` is the registry's alias lock (``ModelStore.alias_lock``) and
    ``audit`` its audit log: ``TrafficStateStore.open(store)`` wires both.
    """

    def __init__(
        self,
        *,
        home: Path,
        audit: AuditLog,
        lock: Callable[[], AbstractContextManager[Any]],
        defaults_folder: Path | None = None,
    ) -> None:
        self.folder = Path(home) / "traffic"
        self.audit = audit
        self.lock = lock
        self.defaults_folder = defaults_folder

    @classmethod
    def open(cls, store: ModelStore) -> TrafficStateStore:
        """The traffic state of a registry: same FOUNDRY_HOME, same alias lock, same audit log."""
        return cls(home=store.settings.ensure_home(), audit=store.audit, lock=store.alias_lock)

    @classmethod
    def reader(cls, *, home: Path) -> TrafficStateStore:
        """A read-only view (no MLflow import): reads policies, canary state and events; refuses writes."""
        return cls(home=Path(home), audit=AuditLog(Path(home) / "audit.db"), lock=_read_only)

    def _policy_path(self, model: str) -> Path:
        return self.folder / f"{model}.json"

    def _canary_path(self, model: str) -> Path:
        return self.folder / f"{model}.canary.json"

    def version(self, model: str) -> int:
        """The stamp of the active policy (0 when none was set): cheap enough to poll per request."""
        data = _read_json(self._policy_path(model))
        return 0 if data is None else int(data["version"])

    def active(self, model: str) -> ActivePolicy:
        """The policy ``model`` follows now: the one set last, else the shipped default, else single."""
        data = _read_json(self._policy_path(model))
        if data is not None:
            try:
                policy = TrafficPolicy.model_validate(data["policy"])
            except (KeyError, ValueError) as exc:
                raise RegistryError(
                    f"traffic state of {model} holds an invalid policy: {exc}",
                    hint="set the policy again with `foundry traffic set`",
                ) from exc
            return ActivePolicy(
                model=model,
                version=int(data["version"]),
                policy=policy,
                source="set",
                updated_at=data.get("updated_at"),
                actor=data.get("actor"),
                reason=data.get("reason"),
            )
        shipped = shipped_default(model, folder=self.defaults_folder)
        if shipped is not None:
            return ActivePolicy(model=model, version=0, policy=shipped, source="shipped default")
        return ActivePolicy(
            model=model, version=0, policy=TrafficPolicy(), source="built-in default"
        )

    def set_policy(
        self,
        *,
        model: str,
        policy: TrafficPolicy,
        reason: str,
        actor: str | None = None,
        existing_aliases: Collection[str] | None = None,
    ) -> ActivePolicy:
        """Make ``policy`` the active one (audited); return it with its new version.

        ``existing_aliases`` are the aliases the model has in the registry:
        a policy naming another one is refused and nothing changes. Setting a
        policy resets any canary to the new policy's start.
        """
        if not reason.strip():
            raise RegistryError("a traffic change needs a reason", hint="pass --reason '...'")
        if existing_aliases is not None:
            missing = [a for a in policy.aliases() if a not in set(existing_aliases)]
            if missing:
                have = ", ".join(sorted(existing_aliases)) or "none"
                raise SpecError(
                    f"{model} has no version with alias {', '.join(repr(m) for m in missing)} (it has: {have})",
                    field="alias",
                    hint="point the alias at a version first (`foundry registry alias MODEL ALIAS VERSION`)",
                )
        actor = actor or default_actor()
        with self.lock():
            before = self.active(model)
            version = max(before.version, self.version(model)) + 1
            updated_at = _now()
            record = {
                "model": model,
                "version": version,
                "policy": policy.model_dump(mode="json"),
                "updated_at": updated_at,
                "actor": actor,
                "reason": reason,
            }
            _write_atomic(self._policy_path(model), record)
            self._canary_path(model).unlink(missing_ok=True)
            self.audit.record(
                model=model,
                action="traffic_set",
                actor=actor,
                reason=reason,
                version=str(version),
                previous=str(before.version) if before.version else None,
                evidence={
                    "before": before.policy.model_dump(mode="json"),
                    "before_source": before.source,
                    "after": policy.model_dump(mode="json"),
                    "summary": f"{before.policy.describe()} → {policy.describe()}",
                },
            )
        return ActivePolicy(
            model=model,
            version=version,
            policy=policy,
            source="set",
            updated_at=updated_at,
            actor=actor,
            reason=reason,
        )

    def canary(self, model: str) -> CanaryLive | None:
        """The canary's live state, or None when the active policy has no canary progress yet."""
        data = _read_json(self._canary_path(model))
        if data is None or int(data.get("policy_version", -1)) != self.version(model):
            return None  # left over from an older policy
        return CanaryLive(**data)

    def record_canary(
        self,
        *,
        model: str,
        policy_version: int,
        action: Literal["canary_step", "canary_rollback"],
        alias: str,
        from_percent: float,
        to_percent: float,
        status: CanaryStatus,
        steps: int,
        reason: str,
        evidence: dict[str, Any],
        actor: str = "serve:canary",
    ) -> CanaryLive | None:
        """Write a canary step or rollback to the live state and the audit log.

        Returns the live state written, or None when the policy changed since
        the replica read it (the event is stale and nothing is written).
        """
        with self.lock():
            if self.version(model) != policy_version:
                return None
            live = CanaryLive(
                model=model,
                policy_version=policy_version,
                alias=alias,
                percent=to_percent,
                status=status,
                steps=steps,
                updated_at=_now(),
            )
            _write_atomic(self._canary_path(model), live.__dict__)
            self.audit.record(
                model=model,
                action=action,
                alias=alias,
                actor=actor,
                reason=reason,
                version=f"{to_percent:g}%",
                previous=f"{from_percent:g}%",
                evidence={
                    **evidence,
                    "policy_version": policy_version,
                    "status": status,
                    "steps": steps,
                },
            )
        return live

    def events(self, model: str, *, limit: int = 10) -> list[AuditEvent]:
        """The last ``limit`` traffic events of a model (policy changes, canary steps and rollbacks)."""
        found = [e for e in self.audit.history(model) if e.action in TRAFFIC_ACTIONS]
        return found[-limit:] if limit > 0 else found
