"""What the retrain controller remembers per model, in ``$FOUNDRY_HOME/retraining/<model>.json``.

Stages of one retrain::

    idle ──trigger (safeguards pass)──► training ──refused/failed──► idle
                                          │
                                          ├─ first version ever ─► watching
                                          └─ beats champion ───► live ──live evidence agrees──► watching ──window over──► idle
                                                                   └──live evidence disagrees──► idle      └─metric drops──► rolled back, idle

The file survives the controller: a new controller (another process, after a
crash) picks up a retrain in ``live`` or ``watching`` where it was. A job that
was ``training`` when its controller died is marked failed on the next tick.

Example:
    >>> states = RetrainStateStore(home=Path(".foundry"))     # doctest: +SKIP
    >>> states.get("churn_risk").stage                        # doctest: +SKIP
    'idle'
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from raycore.errors import RegistryError
from raycore.runtime.state_file import file_lock, read_json, write_json_atomic

__all__ = ["ModelRetrainState", "RetrainStateStore", "parse_time", "utc_now"]

Stage = Literal["idle", "training", "live", "watching"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value)


@dataclass(frozen=True)
class ModelRetrainState:
    """One model's retrain stage and the facts the next step needs."""

    model: str
    stage: Stage = "idle"
    job_id: str | None = None
    job_owner: str | None = None  # the controller that launched the job (a job dies with it)
    last_started_at: str | None = None
    version: str | None = None  # the retrained version under live test / watch
    champion_version: str | None = None  # the champion it must beat / the one to roll back to
    deployed_at: str | None = None
    promoted_at: str | None = None
    baseline: float | None = None  # live metric at promotion, for the rollback window
    last_result: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ModelRetrainState:
        return dataclasses.replace(self, **changes)


class RetrainStateStore:
    """Atomic per-model state files with a lock for read-modify-write."""

    def __init__(self, *, home: Path) -> None:
        self.folder = Path(home) / "retraining"

    def lock(self) -> Any:
        return file_lock(self.folder / ".lock")

    def get(self, model: str) -> ModelRetrainState:
        path = self.folder / f"{model}.json"
        try:
            data = read_json(path)
            return ModelRetrainState(model=model) if data is None else ModelRetrainState(**data)
        except (ValueError, TypeError) as exc:
            raise RegistryError(
                f"retrain state {path} is unreadable: {exc}",
                hint="delete it to reset the model to idle (the audit log keeps every step)",
            ) from exc

    def put(self, state: ModelRetrainState) -> None:
        write_json_atomic(self.folder / f"{state.model}.json", asdict(state))

    def all(self) -> list[ModelRetrainState]:
        if not self.folder.is_dir():
            return []
        return [self.get(p.stem) for p in sorted(self.folder.glob("*.json"))]
