"""The live decision threshold of each binary model, with its history.

State lives in ``$FOUNDRY_HOME/thresholds/<model>.json``: the stack of
settings, newest last (a ``set`` pushes, a ``rollback`` pops back to the one
before). Writes hold a file lock and replace the file atomically (temp file +
rename), so a reader never sees half a file and two operators never interleave.
Every change is recorded in the registry's audit log with who, when, why, the
value before and after, and the simulated impact when one was computed.

Serving reads the threshold through ``ThresholdReader``: one ``os.stat`` per
request and a re-read only when the file changed, so a change takes effect on
the next request without a redeploy.

Example:
    >>> store = ThresholdStore(home=Path(".foundry"))                                      # doctest: +SKIP
    >>> store.set(model="churn", threshold=0.3, reason="catch more churners", default=0.5)  # doctest: +SKIP
    >>> ThresholdReader(home=Path(".foundry"), model="churn", default=0.5).current()        # doctest: +SKIP
    0.3
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from raycore.errors import ThresholdError
from raycore.registry.audit import AuditLog, default_actor
from raycore.runtime.state_file import change_stamp, file_lock, read_json, write_json_atomic
from raycore.thresholds.simulate import validate_threshold

__all__ = ["ThresholdChange", "ThresholdReader", "ThresholdSetting", "ThresholdStore"]

STATE_DIR = "thresholds"


@dataclass(frozen=True)
class ThresholdSetting:
    """One threshold that was live from ``at`` on."""

    threshold: float
    at: str
    actor: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ThresholdChange:
    """What a set or rollback did."""

    model: str
    before: float
    after: float
    audit_id: int


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _state_path(home: Path, model: str) -> Path:
    return Path(home) / STATE_DIR / f"{model}.json"


def _read_stack(path: Path) -> list[ThresholdSetting]:
    try:
        raw = read_json(path)
        return [] if raw is None else [ThresholdSetting(**entry) for entry in raw["stack"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ThresholdError(
            f"threshold state {path} is unreadable: {exc}",
            hint="restore it from a backup or delete it to fall back to the catalog default "
            "(the audit log still holds every change)",
        ) from exc


class ThresholdStore:
    """Read, change and roll back live thresholds; every change audited."""

    def __init__(self, *, home: Path, audit: AuditLog | None = None) -> None:
        self.home = Path(home)
        self.audit = audit or AuditLog(self.home / "audit.db")

    def _locked(self) -> Any:
        return file_lock(self.home / STATE_DIR / ".lock")

    def _write(self, model: str, stack: list[ThresholdSetting]) -> None:
        write_json_atomic(
            _state_path(self.home, model), {"model": model, "stack": [asdict(s) for s in stack]}
        )

    def history(self, model: str) -> list[ThresholdSetting]:
        """Every setting still on the stack, oldest first (empty: the catalog default is live)."""
        return _read_stack(_state_path(self.home, model))

    def current(self, model: str, *, default: float) -> float:
        """The live threshold: the newest setting, or ``default`` when nobody changed it."""
        stack = self.history(model)
        return stack[-1].threshold if stack else default

    def set(
        self,
        *,
        model: str,
        threshold: float,
        reason: str,
        default: float,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> ThresholdChange:
        """Make ``threshold`` live for ``model``; nothing changes if it is invalid."""
        value = validate_threshold(threshold)
        if not reason.strip():
            raise ThresholdError("a threshold change needs a reason", hint='pass --reason "..."')
        who = actor or default_actor()
        with self._locked():
            stack = self.history(model)
            before = stack[-1].threshold if stack else default
            stack.append(
                ThresholdSetting(
                    threshold=value, at=_now(), actor=who, reason=reason, evidence=evidence or {}
                )
            )
            self._write(model, stack)
            audit_id = self.audit.record(
                model=model,
                action="threshold_set",
                actor=who,
                reason=reason,
                version=f"{value:g}",
                previous=f"{before:g}",
                evidence={"before": before, "after": value, **(evidence or {})},
            )
        return ThresholdChange(model=model, before=before, after=value, audit_id=audit_id)

    def rollback(
        self, *, model: str, reason: str, default: float, actor: str | None = None
    ) -> ThresholdChange:
        """Restore the threshold that was live before the latest change."""
        if not reason.strip():
            raise ThresholdError("a threshold rollback needs a reason", hint='pass --reason "..."')
        who = actor or default_actor()
        with self._locked():
            stack = self.history(model)
            if not stack:
                raise ThresholdError(
                    f"{model} has no threshold change to roll back (the catalog default {default:g} is live)",
                    hint="`foundry threshold show MODEL` lists the changes",
                )
            before = stack.pop().threshold
            after = stack[-1].threshold if stack else default
            self._write(model, stack)
            audit_id = self.audit.record(
                model=model,
                action="threshold_rollback",
                actor=who,
                reason=reason,
                version=f"{after:g}",
                previous=f"{before:g}",
                evidence={"before": before, "after": after},
            )
        return ThresholdChange(model=model, before=before, after=after, audit_id=audit_id)


class ThresholdReader:
    """The live threshold for a serving replica: re-read only when the state file changes."""

    def __init__(self, *, home: Path, model: str, default: float) -> None:
        self.path = _state_path(Path(home), model)
        self.default = default
        self._stamp: tuple[int, int] | None = None
        self._value = default

    def current(self) -> float:
        stamp = change_stamp(self.path)  # one stat per call; a rename gives a new inode
        if stamp is None:
            self._stamp, self._value = None, self.default
        elif stamp != self._stamp:
            try:
                stack = _read_stack(self.path)
            except ThresholdError:
                return (
                    self._value
                )  # keep answering with the last good value; the CLI reports the damage
            self._value = stack[-1].threshold if stack else self.default
            self._stamp = stamp
        return self._value
