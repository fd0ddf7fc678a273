"""Detection steps of the drift demonstration: a calm replay (false alarms) and a covariate shift (delay, features).

Traffic is replayed window by window over HTTP; once the prediction log holds
every window, each window is checked on its own (``since``/``until`` of the
time it was sent in), exactly as a scheduled check at the window's end would
see it. A false alarm is any alert or any drifted feature in a window of the
world without drift. The features a check names are held against the drift
truth mapped to model features by the view itself
(``raycore.demo.worlds.true_drifted_features``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raycore.demo.plan import (
    COVARIATE_START,
    TRAFFIC_START,
    WINDOW_GAP_S,
    DemoPlan,
    StepOutcome,
    approved_rows,
    calendar_windows,
)
from raycore.demo.replay import HttpReplay, Sent
from raycore.demo.worlds import WorldLake, true_drifted_features

__all__ = ["DetectionSteps"]


class DetectionSteps(ABC):
    """The no-drift and covariate-drift steps (a part of the demo scenario)."""

    plan: DemoPlan
    home: Path
    rng: np.random.Generator
    figures: dict[str, Any]
    replay: HttpReplay | None
    settings: Any
    spec: Any
    view: Any
    before: WorldLake
    covariate: WorldLake

    @abstractmethod
    def say(self, text: str) -> None: ...

    def _window_rows(self, world: WorldLake, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
        apps = self._apps(world)
        rows = apps[(apps["applied_at"] >= lo) & (apps["applied_at"] < hi)]
        return rows.sample(frac=1.0, random_state=int(self.rng.integers(2**31))).reset_index(
            drop=True
        )

    def _apps(self, world: WorldLake) -> pd.DataFrame:
        cache = self.__dict__.setdefault("_apps_cache", {})
        if world.root not in cache:
            apps = approved_rows(world.silver("credit_applications"))
            # The HTTP schema has no optional request fields: an application with a missing
            # employment or utilisation value cannot be sent; it is left out and counted.
            complete = apps[self.view.input_names].notna().all(axis=1)
            skipped = self.figures.setdefault("rows_not_sendable", {})
            skipped[world.root.name] = int((~complete).sum())
            cache[world.root] = apps[complete].reset_index(drop=True)
        return cache[world.root]

    def _replay_windows(
        self,
        world: WorldLake | list[WorldLake],
        windows: list[tuple[pd.Timestamp, pd.Timestamp]],
        tag: str,
    ) -> list[Sent]:
        """Send each window's applications (from ``world``, or the world of that window)."""
        assert self.replay is not None
        worlds = world if isinstance(world, list) else [world] * len(windows)
        sent = []
        for i, ((lo, hi), source) in enumerate(zip(windows, worlds, strict=True)):
            rows = self._window_rows(source, lo, hi)
            sent.append(self.replay.send(rows, prefix=f"{tag}-w{i}"))
            time.sleep(WINDOW_GAP_S)  # windows must not share a logged instant
        self.replay.wait_logged(home=self.home, sent=sent)
        return sent

    def _check(self, sent: Sent) -> Any:
        from raycore.monitoring.monitor import DriftMonitor

        monitor = self.__dict__.setdefault(
            "_monitor", DriftMonitor(settings=self.settings, spec=self.spec)
        )
        # Every answer of a batch is logged after it was sent and before its reply came back.
        return monitor.check(
            since=sent.started,
            until=sent.finished + pd.Timedelta(seconds=WINDOW_GAP_S / 2),
        )

    def no_drift(self) -> StepOutcome:
        windows = calendar_windows(TRAFFIC_START, self.plan.no_drift_windows, self.plan.window_days)
        sent = self._replay_windows(self.before, windows, "calm")
        checks = []
        for (lo, _hi), s in zip(windows, sent, strict=True):
            result = self._check(s)
            alarm = result.alerted or bool(result.drifted_features)
            checks.append(
                {
                    "window": f"{lo:%Y-%m-%d}",
                    "rows": result.rows,
                    "severity": result.severity,
                    "drifted": result.drifted_features,
                    "alarm": alarm,
                }
            )
            self.say(
                f"{self.plan.window_days} days from {lo:%Y-%m-%d}: {result.rows} answers, severity {result.severity}, "
                f"drifted {result.drifted_features or 'none'}"
            )
        alarms = sum(c["alarm"] for c in checks)
        self.figures.update(false_alarms_no_drift=alarms, windows_no_drift=len(checks))
        return StepOutcome(
            "no_drift_replay",
            alarms == 0,
            f"{alarms} false alarm(s) in {len(checks)} windows of {self.plan.window_days} days of the world without drift "
            f"({sum(c['rows'] for c in checks)} answers over HTTP)",
            {"checks": checks},
        )

    def covariate_shift(self) -> StepOutcome:
        plan = self.plan
        first = pd.Timestamp(COVARIATE_START) - pd.Timedelta(
            days=plan.covariate_pre_windows * plan.window_days
        )
        windows = calendar_windows(
            first.date(), plan.covariate_pre_windows + plan.covariate_post_windows, plan.window_days
        )
        # Before its start a drift changes nothing, so the windows before it are the world as it
        # was (the covariate world's own pre-start approvals differ: its legacy scorecard cut-off
        # is a quantile over every application, the shifted ones included).
        start = pd.Timestamp(COVARIATE_START)
        worlds = [self.covariate if hi > start else self.before for _lo, hi in windows]
        sent = self._replay_windows(worlds, windows, "shift")
        raw = pd.concat([self._window_rows(self.covariate, *w) for w in windows[-1:]])
        truth = self.covariate.truth("drift_truth")
        true_features = true_drifted_features(
            self.view, raw[self.view.input_names], truth, table="credit_applications"
        )
        checks, detected_at, found = [], None, []
        pre_alarms = 0
        for i, ((lo, _hi), s) in enumerate(zip(windows, sent, strict=True)):
            result = self._check(s)
            post = lo >= pd.Timestamp(COVARIATE_START)
            alarm = result.alerted and bool(result.drifted_features)
            checks.append(
                {
                    "window": f"{lo:%Y-%m-%d}",
                    "after_start": post,
                    "rows": result.rows,
                    "severity": result.severity,
                    "drifted": result.drifted_features,
                    "check_id": result.check_id,
                }
            )
            self.say(
                f"{plan.window_days} days from {lo:%Y-%m-%d} ({'after' if post else 'before'} the shift): {result.rows} answers, "
                f"severity {result.severity}, drifted {result.drifted_features or 'none'}"
            )
            if not post and (result.alerted or result.drifted_features):
                pre_alarms += 1
            if post and alarm and detected_at is None:
                detected_at, found = i - plan.covariate_pre_windows, list(result.drifted_features)
        recall = len(set(found) & set(true_features)) / len(true_features) if true_features else 0.0
        extra = sorted(set(found) - set(true_features))
        delay = None if detected_at is None else detected_at + 1
        delay_days = None if detected_at is None else (detected_at + 1) * plan.window_days
        self.figures.update(
            detection_delay_windows=delay,
            detection_delay_days=delay_days,
            false_alarms_before_shift=pre_alarms,
            drifted_features_true=true_features,
            drifted_features_found=found,
            drifted_features_recall=recall,
            drifted_features_extra=extra,
        )
        # A feature named beyond the truth is shown with how the served population really moved:
        # the approval policy reacts to the shifted incomes and debts, so approved rows move in more.
        moved = {}
        if detected_at is not None and extra:
            lo, hi = windows[plan.covariate_pre_windows + detected_at]
            moved = self._moved(extra, lo, hi)
            for name, means in moved.items():
                self.say(
                    f"also named {name}: mean {means['without_drift']:.4g} in the world without drift, "
                    f"{means['served']:.4g} in the served window"
                )
        held = delay == 1 and recall == 1.0 and pre_alarms == 0
        alerts = self.home / "monitoring" / "alerts.jsonl"
        return StepOutcome(
            "covariate_drift",
            held,
            (
                f"detected in post-shift window {delay} ({delay_days} days after {COVARIATE_START}); "
                f"named {found}, truth {true_features} (recall {recall:.0%}, extra {extra or 'none'}); "
                f"{pre_alarms} alarm(s) before the shift"
                if delay is not None
                else f"not detected in {plan.covariate_post_windows} post-shift windows; truth {true_features}"
            ),
            {"checks": checks, "alerts_file": str(alerts), "extra_moved": moved},
        )

    def _moved(
        self, names: list[str], lo: pd.Timestamp, hi: pd.Timestamp
    ) -> dict[str, dict[str, float]]:
        """Mean of each feature in the served window and over the same dates without drift."""
        out: dict[str, dict[str, float]] = {}
        frames = {
            "without_drift": self._window_rows(self.before, lo, hi),
            "served": self._window_rows(self.covariate, lo, hi),
        }
        features = {
            k: self.view.compute(self.view.coerce_inputs(v[self.view.input_names]))
            for k, v in frames.items()
        }
        for name in names:
            out[name] = {k: float(f[name].mean()) for k, f in features.items()}
        return out
