"""Where a sweep lives and what it is: ``settings.ray_storage/tune/<sweep>/sweep.json``.

The folder is Ray Tune's experiment folder (``Tuner.restore`` reads it) plus
the validation file the trials score on and ``sweep.json``: the model, the data
world, the resolved sweep config, the MLflow parent run and the status
(``running`` → ``interrupted`` → ``running`` … → ``finished``). A sweep whose
driver died keeps ``running`` and is resumable like an interrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from raycore.data.world import WorldConfig
from raycore.errors import TrainingError
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.tuning.config import SweepConfig

__all__ = ["MANIFEST", "SweepState", "find_resumable", "sweeps_root"]

MANIFEST = "sweep.json"


def sweeps_root(settings: FoundrySettings) -> Path:
    """The folder holding every sweep of this foundry."""
    return settings.ray_storage / "tune"


@dataclass(frozen=True)
class SweepState:
    """The contents of ``sweep.json``."""

    model_id: str
    model_name: str
    sweep: str
    parent_run_id: str
    world: dict[str, Any]
    config: dict[str, Any]
    status: str = "running"
    created: float = field(default_factory=time.time)
    best_trial: str | None = None
    decision: str = ""

    @classmethod
    def new(
        cls,
        *,
        spec: ModelSpec,
        sweep: str,
        parent_run_id: str,
        world: WorldConfig,
        config: SweepConfig,
    ) -> SweepState:
        return cls(
            model_id=spec.id,
            model_name=spec.name,
            sweep=sweep,
            parent_run_id=parent_run_id,
            world={"seed": world.seed, "scale": world.scale, "start": world.start.isoformat()},
            config=config.model_dump(),
        )

    @property
    def world_config(self) -> WorldConfig:
        return WorldConfig(
            seed=int(self.world["seed"]),
            scale=self.world["scale"],
            start=date.fromisoformat(self.world["start"]),
        )

    @property
    def sweep_config(self) -> SweepConfig:
        return SweepConfig.model_validate(self.config)

    def with_status(self, status: str, **changes: Any) -> SweepState:
        return replace(self, status=status, **changes)

    def save(self, folder: Path) -> None:
        """Write atomically: a crash mid-write leaves the previous state."""
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        tmp.replace(folder / MANIFEST)

    @classmethod
    def load(cls, folder: Path) -> SweepState:
        try:
            return cls(**json.loads((folder / MANIFEST).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise TrainingError(
                f"sweep state {folder / MANIFEST} is unreadable: {exc}",
                hint="the sweep folder is incomplete or from another version; start a new sweep",
            ) from exc


def find_resumable(settings: FoundrySettings, spec: ModelSpec) -> Path:
    """The latest sweep of ``spec`` that did not finish and that Ray Tune can restore."""
    from ray.tune import Tuner

    root = sweeps_root(settings)
    candidates = []
    for manifest in root.glob(f"*/{MANIFEST}"):
        try:
            state = SweepState.load(manifest.parent)
        except TrainingError:
            continue
        if state.model_id == spec.id and state.status != "finished":
            candidates.append((state.created, manifest.parent))
    for _created, path in sorted(candidates, reverse=True):
        if Tuner.can_restore(str(path)):
            return path
    raise TrainingError(
        f"no unfinished sweep of {spec.id} {spec.name} to resume under {root}",
        hint=f"start one with `foundry tune {spec.id}`",
    )
