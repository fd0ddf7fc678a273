"""Release the Ray Train placement groups of trials that were stopped mid-run.

When ASHA (or a time budget, or Ctrl-C) stops a trial, Tune ends the trial's
actor, and with it the Ray Train controller the trial started. Ray Train's
``PlacementGroupCleaner`` should then remove the run's placement group, but it
finds the cluster through the state API (``/tmp/ray/ray_current_cluster``,
``RAY_ADDRESS``), which fails on a host that runs several Ray instances: the
group keeps its CPUs and the next trial's workers wait for them forever. Every
validation report carries the worker group's placement group id
(``ray_train_job.PLACEMENT_GROUP_KEY``); ``GroupReleaser`` removes the groups of
stopped trials a few seconds after the stop (once the controller is gone, so it
cannot start a new worker group in their place). A trial stopped before its
first report (Ctrl-C right after it started) has sent no id: when the sweep
ends, every placement group this job created during the sweep and that still
exists is released (``job_placement_groups`` before and after). Removing a
group that Ray already removed is a no-op.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

__all__ = [
    "RELEASE_DELAY_S",
    "GroupReleaser",
    "job_placement_groups",
    "release_new_groups",
    "release_placement_groups",
]

log = logging.getLogger("raycore.tuning")
RELEASE_DELAY_S = 3.0


def release_placement_groups(ids: Iterable[str]) -> int:
    """Remove the placement groups ``ids`` (hex) that still exist; return how many were removed."""
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import (
        PlacementGroup,
        placement_group_table,
        remove_placement_group,
    )

    removed = 0
    for hex_id in set(ids):
        group = PlacementGroup(PlacementGroupID(bytes.fromhex(hex_id)))
        try:
            state = placement_group_table(group).get("state")
        except Exception:  # unknown id (another cluster's run): nothing of ours to free
            continue
        if state in (None, "REMOVED"):
            continue
        remove_placement_group(group)
        removed += 1
        log.debug("released placement group %s of a stopped trial", hex_id)
    return removed


class GroupReleaser:
    """Placement groups of stopped trials, released ``RELEASE_DELAY_S`` after the stop."""

    def __init__(self, delay_s: float = RELEASE_DELAY_S) -> None:
        self.delay_s = delay_s
        self._groups: dict[str, str] = {}
        self._due: list[tuple[float, str]] = []

    def seen(self, trial_id: str, group: str | None) -> None:
        """Remember the group a trial's Ray Train run reported."""
        if group:
            self._groups[trial_id] = group

    def stopped(self, trial_id: str) -> None:
        """The trial ended before its run did: release its group after the delay."""
        group = self._groups.pop(trial_id, None)
        if group:
            self._due.append((time.monotonic() + self.delay_s, group))

    def finished(self, trial_id: str) -> None:
        """The trial's run ended normally: Ray Train removed its group itself."""
        self._groups.pop(trial_id, None)

    def release_due(self, *, force: bool = False) -> int:
        """Release the groups whose delay has passed (every pending one with ``force``)."""
        now = time.monotonic()
        ready = [g for t, g in self._due if force or t <= now]
        self._due = [(t, g) for t, g in self._due if not (force or t <= now)]
        return release_placement_groups(ready) if ready else 0


def job_placement_groups() -> set[str]:
    """Hex ids of the live placement groups of this Ray job (a group's id ends with its job's id)."""
    import ray
    from ray.util.placement_group import placement_group_table

    job = ray.get_runtime_context().get_job_id()
    return {
        group
        for group, info in placement_group_table().items()
        if group.endswith(job) and info.get("state") != "REMOVED"
    }


def release_new_groups(before: set[str], *, delay_s: float = RELEASE_DELAY_S) -> int:
    """After a sweep: release this job's groups that did not exist ``before`` it and still hold resources."""
    if not job_placement_groups() - before:
        return 0
    time.sleep(delay_s)  # let Ray Train's own cleanup and Tune's actor shutdown finish first
    return release_placement_groups(job_placement_groups() - before)
