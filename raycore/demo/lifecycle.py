"""Retraining steps of the drift demonstration: concept shift, retrain, shadow, promotion, rollback, cooldown, drill.

The retrain controller runs as the named, detached Ray actor; the demo only
does what the world and its users would do — send traffic over HTTP, deliver
the true outcomes as late labels, hand the monitor's finding to the controller
as a trigger — and reads every verdict back from the controller's state, the
registry aliases, the traffic state and the audit log.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raycore.demo.plan import (
    CONCEPT_TRAFFIC_START,
    DEMO_MODEL_ID,
    DEMO_MODEL_NAME,
    DRILL_CORRUPTION,
    DemoPlan,
    StepFailed,
    StepOutcome,
)
from raycore.demo.replay import HttpReplay, Sent
from raycore.demo.worlds import WorldLake
from raycore.errors import RaycoreError

__all__ = ["RetrainSteps"]


class RetrainSteps(ABC):
    """The concept-drift and retraining steps (a part of the demo scenario)."""

    plan: DemoPlan
    home: Path
    rng: np.random.Generator
    figures: dict[str, Any]
    replay: HttpReplay | None
    spec: Any
    store: Any
    actor: Any
    concept: WorldLake
    concept_sent: Sent

    @abstractmethod
    def say(self, text: str) -> None: ...

    @abstractmethod
    def _apps(self, world: WorldLake) -> pd.DataFrame: ...

    @abstractmethod
    def _check(self, sent: Sent) -> Any: ...

    @abstractmethod
    def audit(self, *actions: str) -> list[Any]: ...

    @abstractmethod
    def wait_state(self, done: Any, *, what: str) -> dict[str, Any]: ...

    @abstractmethod
    def labels(self, sent: Sent, truth: pd.Series, *, flip: bool = False) -> int: ...

    def _concept_rows(self, count: int) -> pd.DataFrame:
        apps = self._apps(self.concept)
        pool = apps[apps["applied_at"] >= pd.Timestamp(CONCEPT_TRAFFIC_START)]
        used = self.__dict__.setdefault("_concept_used", set())
        fresh = pool[~pool["application_id"].isin(used)]
        if len(fresh) < count:
            raise StepFailed(
                f"the concept world has only {len(fresh)} unused approved applications after "
                f"{CONCEPT_TRAFFIC_START}, {count} needed"
            )
        rows = fresh.sample(n=count, random_state=int(self.rng.integers(2**31)))
        used.update(rows["application_id"].tolist())
        return rows.reset_index(drop=True)

    def _outcomes(self) -> pd.Series:
        truth = self.concept.truth("credit_applications_truth")
        return truth.drop_duplicates("application_id").set_index("application_id")["defaulted_12m"]

    def concept_shift(self) -> StepOutcome:
        import ray

        from raycore.feedback import count_labels_since
        from raycore.specs.monitoring import Severity

        assert self.replay is not None
        sent = self.replay.send(self._concept_rows(self.plan.concept_rows), prefix="concept")
        self.replay.wait_logged(home=self.home, sent=[sent])
        n = self.labels(sent, self._outcomes())
        self.concept_sent = sent
        self.say(f"{len(sent.answers)} answers over HTTP; {n} true outcomes arrived as late labels")
        result = self._check(sent)
        self.say(
            f"monitor: live {self.spec.gate.metric} {result.live_metric:.4f} on {result.live_n} labelled "
            f"answers vs {result.holdout_metric:.4f} on the holdout (drop {result.metric_drop:+.1%}); "
            f"input drift: {result.drifted_features or 'none'}; severity {result.severity}"
            if result.live_metric is not None and result.metric_drop is not None
            else f"monitor: no live metric ({result.live_n} labelled answers)"
        )
        severe = Severity(result.severity) >= Severity(self.spec.retrain.min_severity)
        new_labels = count_labels_since(home=self.home, model=DEMO_MODEL_NAME, since=None)
        trigger = ray.get(
            self.actor.submit.remote(
                DEMO_MODEL_ID,
                kind="performance",
                severity=result.severity,
                new_labels=new_labels,
                detail=f"live {self.spec.gate.metric} dropped {result.metric_drop or 0:+.1%} (check {result.check_id})",
            )
        )
        again = ray.get(
            self.actor.submit.remote(
                DEMO_MODEL_ID,
                kind="performance",
                severity=result.severity,
                new_labels=new_labels,
                detail="the same finding, raised again",
            )
        )
        self.say(f"trigger: {trigger['verdict']['reason']} -> job {trigger['job_id']}")
        self.say(
            f"second trigger: blocked ({again['verdict']['safeguard']}): {again['verdict']['reason']}"
        )
        self.figures.update(
            concept_metric_drop=result.metric_drop,
            concept_severity=result.severity,
            concept_input_drift=result.drifted_features,
        )
        held = (
            severe
            and not result.drifted_features
            and bool(trigger["verdict"]["go"])
            and again["verdict"]["safeguard"] == "in_progress"
        )
        return StepOutcome(
            "concept_drift",
            held,
            f"labels moved the live {self.spec.gate.metric} by {result.metric_drop or 0:+.1%} with no input drift: "
            f"severity {result.severity} -> retrain {trigger['job_id']} started; a repeat trigger was blocked "
            f"({again['verdict']['safeguard']})",
            {
                "check_id": result.check_id,
                "live_n": result.live_n,
                "live_metric": result.live_metric,
                "holdout_metric": result.holdout_metric,
                "metric_drop": result.metric_drop,
                "severity": result.severity,
                "trigger": trigger,
                "repeat": again["verdict"],
            },
        )

    def retrain(self) -> StepOutcome:
        from raycore.registry.traffic_state import TrafficStateStore

        state = self.wait_state(lambda s: s["stage"] != "training", what="finish the retrain")
        last = state.get("last_result") or {}
        deployed = self.audit("retrain_deployed")
        policy = TrafficStateStore.reader(home=self.home).active(DEMO_MODEL_NAME).policy
        shadow = policy.kind == "shadow" and policy.shadow is not None
        held = state["stage"] == "live" and bool(deployed) and shadow
        evidence = deployed[-1].evidence if deployed else {}
        self.say(f"audit: {deployed[-1].reason if deployed else last.get('reason', '?')}")
        return StepOutcome(
            "retrain",
            held,
            f"v{state.get('version')} validated against champion v{state.get('champion_version')} on the fresh "
            f"holdout and deployed as {policy.describe()}"
            if held
            else f"retrain ended {last.get('stage', state['stage'])}: {last.get('reason', '')}",
            {"state": state, "audit": evidence},
        )

    def shadow_promote(self) -> StepOutcome:
        assert self.replay is not None
        # The replicas follow the traffic policy within their poll: wait until a request is shadowed.
        deadline = time.monotonic() + 60
        probes = 0
        while True:
            probe = self.replay.send(self._concept_rows(1), prefix=f"probe-{probes}")
            probes += 1
            try:
                self.replay.wait_shadowed(home=self.home, sent=probe, timeout_s=3)
                break
            except RaycoreError:
                if time.monotonic() > deadline:
                    raise
        sent = self.replay.send(self._concept_rows(self.plan.shadow_rows), prefix="shadow")
        shadowed = self.replay.wait_shadowed(home=self.home, sent=sent)
        n = self.labels(sent, self._outcomes())
        self.say(
            f"{len(sent.answers)} answers over HTTP, {shadowed} requests shadowed by the challenger; "
            f"{n} outcomes arrived"
        )
        state = self.wait_state(lambda s: s["stage"] != "live", what="judge the live evidence")
        promoted = self.audit("promote")
        champion = self.store.alias_version(DEMO_MODEL_NAME, "champion")
        held = state["stage"] == "watching" and bool(promoted) and champion == state.get("version")
        evidence = promoted[-1].evidence if promoted else {}
        reason = (
            promoted[-1].reason if promoted else (state.get("last_result") or {}).get("reason", "")
        )
        self.figures["live_evidence"] = evidence
        return StepOutcome(
            "shadow_promote",
            held,
            f"champion is v{champion}: {reason}",
            {"state": state, "audit": evidence},
        )

    def rollback(self) -> StepOutcome:
        assert self.replay is not None
        new = self.store.alias_version(DEMO_MODEL_NAME, "champion")
        deadline = time.monotonic() + 60
        probes = 0
        while True:  # the replicas reload the champion alias within their poll
            probe = self.replay.send(self._concept_rows(1), prefix=f"reload-{probes}")
            probes += 1
            if set(probe.answers["version"]) == {str(new)}:
                break
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"the app still answers with {set(probe.answers['version'])}, not v{new}"
                )
            time.sleep(0.5)
        sent = self.replay.send(self._concept_rows(self.plan.rollback_rows), prefix="after")
        self.replay.wait_logged(home=self.home, sent=[sent])
        n = self.labels(sent, self._outcomes(), flip=True)
        self.say(
            f"v{new} answered {len(sent.answers)} rows over HTTP; {n} labels arrived that contradict "
            "every outcome (an induced drop)"
        )
        state = self.wait_state(lambda s: s["stage"] != "watching", what="end the rollback window")
        rolled = self.audit("rollback")
        champion = self.store.alias_version(DEMO_MODEL_NAME, "champion")
        last = state.get("last_result") or {}
        held = last.get("stage") == "rolled_back" and bool(rolled) and champion == "1"
        return StepOutcome(
            "rollback",
            held,
            f"champion back to v{champion}: {last.get('reason', '')}",
            {"state": state, "audit": rolled[-1].evidence if rolled else {}},
        )

    def cooldown(self) -> StepOutcome:
        import ray

        from raycore.feedback import count_labels_since

        result = self._check(self.concept_sent)
        verdict = ray.get(
            self.actor.submit.remote(
                DEMO_MODEL_ID,
                kind="performance",
                severity=result.severity,
                new_labels=count_labels_since(home=self.home, model=DEMO_MODEL_NAME, since=None),
                detail=f"live {self.spec.gate.metric} still down {result.metric_drop or 0:+.1%}",
            )
        )["verdict"]
        blocked = [e for e in self.audit("retrain_blocked") if "cooldown" in e.reason]
        held = verdict["safeguard"] == "cooldown" and bool(blocked)
        return StepOutcome(
            "cooldown",
            held,
            f"severity {result.severity} again on v{result.version}; trigger blocked "
            f"({verdict['safeguard']}): {verdict['reason']}",
            {"verdict": verdict, "severity": result.severity},
        )

    def drill(self) -> StepOutcome:
        import ray

        from raycore.registry.traffic_state import TrafficStateStore

        out = ray.get(
            self.actor.submit.remote(
                DEMO_MODEL_ID,
                kind="manual",
                force=True,
                corrupt_labels=DRILL_CORRUPTION,
                detail=f"drill: {DRILL_CORRUPTION:.0%} of the training labels shuffled",
                actor="user:demo-drill",
            )
        )
        if not out["verdict"]["go"]:
            raise StepFailed(f"the drill was not started: {out['verdict']['reason']}")
        self.say(f"drill retrain {out['job_id']} started (forced past the cooldown)")
        state = self.wait_state(lambda s: s["stage"] == "idle", what="finish the drill")
        last = state.get("last_result") or {}
        refused = [
            e for e in self.audit("retrain_refused") if e.actor == f"retrain:{out['job_id']}"
        ]
        champion = self.store.alias_version(DEMO_MODEL_NAME, "champion")
        policy = TrafficStateStore.reader(home=self.home).active(DEMO_MODEL_NAME).policy
        held = (
            last.get("stage") == "refused"
            and bool(refused)
            and champion == "1"
            and policy.kind == "single"
        )
        return StepOutcome(
            "corrupted_retrain_refused",
            held,
            f"{last.get('reason', '')}; champion stays v{champion}, traffic {policy.describe()}",
            {"state": state, "audit": refused[-1].evidence if refused else {}},
        )
