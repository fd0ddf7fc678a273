"""When may a model retrain? Triggers in, a verdict out — pure logic, no Ray.

Triggers: the catalog cadence (``scheduled``), a drift finding
(``drift``), the live metric below the gate (``performance``), and an
operator (``manual``). Safeguards, checked in this order, each named when it
blocks so the audit log says exactly why nothing happened:

1. ``in_progress``  — a retrain of this model is already running (always).
2. ``automation_off`` — the model's ``retrain.auto`` flag is off (automatic triggers only).
3. ``severity``     — a drift/performance finding below ``retrain.min_severity``.
4. ``cooldown``     — the last retrain started less than ``cooldown_days`` ago
   (``demo_cooldown_s`` in demo mode); a manual trigger with ``force`` skips it.
5. ``min_new_labels`` — fewer labelled rows arrived since the last training
   than ``retrain.min_new_labels`` (unknown counts as zero for automatic
   triggers; a manual trigger does not need new labels).

A scheduled trigger is only raised when the cadence is due (``cadence_due``).

Example:
    >>> from datetime import datetime, timezone
    >>> spec = RetrainSpec(cadence="weekly", auto=True)
    >>> now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    >>> judge(Trigger(kind="drift", severity=Severity.HIGH, new_labels=500), spec=spec,
    ...       state=RetrainHistory(), now=now).go
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from raycore.specs.model import RetrainSpec
from raycore.specs.monitoring import Severity

__all__ = ["CADENCE", "RetrainHistory", "Trigger", "TriggerKind", "Verdict", "cadence_due", "judge"]

TriggerKind = Literal["scheduled", "drift", "performance", "manual"]
CADENCE: dict[str, timedelta] = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
    "quarterly": timedelta(days=91),
}


@dataclass(frozen=True)
class Trigger:
    """Why someone or something asks for a retrain."""

    kind: TriggerKind
    severity: Severity = Severity.NONE
    new_labels: int | None = None  # labelled rows that arrived since the last training, if known
    detail: str = ""
    force: bool = False  # manual only: skip the cooldown
    actor: str = "policy:auto"


@dataclass(frozen=True)
class RetrainHistory:
    """What the controller remembers about a model's retrains."""

    last_started_at: datetime | None = None
    running_job: str | None = None


@dataclass(frozen=True)
class Verdict:
    """``go`` or the safeguard that blocked, with a sentence for the audit log."""

    go: bool
    reason: str
    safeguard: str | None = None


def cadence_due(cadence: str, *, last_trained_at: datetime | None, now: datetime) -> bool:
    """True when the model never trained or its cadence has passed since it last did."""
    return last_trained_at is None or now - last_trained_at >= CADENCE[cadence]


def _cooldown(spec: RetrainSpec, demo: bool) -> timedelta:
    return timedelta(seconds=spec.demo_cooldown_s) if demo else timedelta(days=spec.cooldown_days)


def judge(
    trigger: Trigger, *, spec: RetrainSpec, state: RetrainHistory, now: datetime, demo: bool = False
) -> Verdict:
    """Apply the safeguards to ``trigger``; see the module docstring for their order."""
    manual = trigger.kind == "manual"
    if trigger.force and not manual:
        return Verdict(False, "only a manual trigger may force a retrain", "invalid_trigger")
    if state.running_job is not None:
        return Verdict(
            False, f"a retrain is already running (job {state.running_job})", "in_progress"
        )
    if not manual and not spec.auto:
        return Verdict(
            False,
            f"{trigger.kind} trigger ignored: automatic retraining is off for this model (retrain.auto: false)",
            "automation_off",
        )
    if trigger.kind in ("drift", "performance"):
        needed = Severity(spec.min_severity)
        if trigger.severity < needed:
            return Verdict(
                False,
                f"{trigger.kind} finding is {trigger.severity.value}, below retrain.min_severity {needed.value}",
                "severity",
            )
    if state.last_started_at is not None and not (manual and trigger.force):
        wait = _cooldown(spec, demo)
        since = now - state.last_started_at
        if since < wait:
            left = wait - since
            return Verdict(
                False,
                f"cooldown: the last retrain started {_human(since)} ago; the next may start in {_human(left)}"
                + (" (or force a manual one)" if not manual else " (pass --force to skip it)"),
                "cooldown",
            )
    if not manual:
        arrived = trigger.new_labels or 0
        if arrived < spec.min_new_labels:
            known = "unknown" if trigger.new_labels is None else str(arrived)
            return Verdict(
                False,
                f"only {known} new labelled rows since the last training; retrain.min_new_labels is "
                f"{spec.min_new_labels}",
                "min_new_labels",
            )
    what = trigger.detail or trigger.kind
    return Verdict(
        True,
        f"retrain: {what}"
        + (f" (severity {trigger.severity.value})" if trigger.severity.rank else ""),
    )


def _human(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f} days"
