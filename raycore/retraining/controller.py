"""The retrain controller: decides, launches and follows retrains, one model at a time each.

``RetrainController`` is plain Python (testable without an actor); in
production it runs as a named, detached Ray actor (``controller_actor``) with a
loop that calls ``tick`` every few seconds. Work it does:

- ``submit(model, trigger)``: the safeguards (``policy.judge``) decide; a
  blocked trigger is audited as ``retrain_blocked`` with the safeguard's
  reason; a passing one launches ``run_retrain`` as a Ray task (``num_cpus=0``:
  the task only drives Ray Train, which reserves the CPUs it trains on).
- ``tick()``:
  * collects finished jobs (refused/failed → idle; deployed → ``live``;
    first version → ``watching``);
  * ``live``: once ``min_live_comparisons`` labelled answers of both versions
    exist (shadow records, or the prediction log of both versions in a
    canary), promote if the new version is no worse than
    ``live_tolerance``, else send all traffic back to the champion;
  * ``watching``: during ``rollback_window_hours`` after a promotion, roll the
    champion back if the live metric drops more than ``rollback_metric_drop``;
  * scheduled triggers: a model with ``retrain.auto`` whose cadence is due.
  Every step is in the audit log.

Example:
    >>> ctl = RetrainController(home=".foundry")                              # doctest: +SKIP
    >>> ctl.submit("mdl-005", kind="manual", actor="user:ann")["verdict"]    # doctest: +SKIP
    {'go': True, 'reason': 'retrain: manual', 'safeguard': None}
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

from raycore.errors import RaycoreError, RegistryError
from raycore.monitoring.metrics import record_retrain
from raycore.retraining.evidence import live_metric, relative_change, shadow_comparison
from raycore.retraining.job import RetrainResult, run_retrain
from raycore.retraining.policy import RetrainHistory, Trigger, cadence_due, judge
from raycore.retraining.state import ModelRetrainState, RetrainStateStore, parse_time, utc_now
from raycore.runtime.state_file import read_json, write_json_atomic
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.specs.monitoring import Severity

__all__ = ["CONTROLLER_NAME", "NAMESPACE", "RetrainController", "controller_actor"]

log = logging.getLogger(__name__)
CONTROLLER_NAME = "foundry-retrain-controller"
WATCH_FILE = "watch.json"  # per model under monitoring/: the end of the last window the controller checked
NAMESPACE = "foundry"


def _job_entry(
    spec_id: str, settings_kwargs: dict[str, Any], trigger: Trigger, job_id: str, corrupt: float
) -> Any:
    """Runs in a Ray task: load the spec and settings there, then the job."""
    from raycore.catalog import load_catalog

    settings = FoundrySettings.load(**settings_kwargs)
    spec = load_catalog(extra_dirs=[settings.catalog_dir] if settings.catalog_dir else []).get(
        spec_id
    )
    return run_retrain(
        spec, settings=settings, job_id=job_id, trigger=trigger, corrupt_labels=corrupt
    )


class RetrainController:
    """Decides, runs and follows retrains; see the module docstring."""

    def __init__(
        self,
        *,
        home: str,
        tracking_uri: str | None = None,
        catalog_dir: str | None = None,
        demo: bool = False,
        inline: bool = False,
    ) -> None:
        self.settings_kwargs = {
            "home": home,
            "mlflow_tracking_uri": tracking_uri,
            "catalog_dir": catalog_dir,
        }
        self.settings = FoundrySettings.load(**self.settings_kwargs)
        self.demo = demo
        self.inline = inline  # run jobs in this process (a CLI without a long-lived controller)
        self.owner = f"{uuid.uuid4().hex[:8]}"
        self.states = RetrainStateStore(home=self.settings.ensure_home())
        self.jobs: dict[str, Any] = {}  # job_id -> ObjectRef, or a finished RetrainResult (inline)
        self._store: Any = None
        self._loop: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ helpers

    @property
    def store(self) -> Any:
        if self._store is None:
            from raycore.registry.store import ModelStore

            self._store = ModelStore(self.settings)
        return self._store

    def _spec(self, model: str) -> ModelSpec:
        return self._catalog().get(model)

    def _catalog(self) -> Any:
        from raycore.catalog import load_catalog

        extra = self.settings.catalog_dir
        return load_catalog(extra_dirs=[extra] if extra else [])

    def _audit(self, spec: ModelSpec, action: str, reason: str, *, actor: str, **kw: Any) -> None:
        self.store.audit.record(model=spec.name, action=action, actor=actor, reason=reason, **kw)

    # ------------------------------------------------------------------ triggers

    def submit(
        self,
        model: str,
        *,
        kind: str,
        severity: str = "NONE",
        new_labels: int | None = None,
        detail: str = "",
        force: bool = False,
        actor: str = "policy:auto",
        corrupt_labels: float = 0.0,
    ) -> dict[str, Any]:
        """Judge a trigger and launch the retrain if every safeguard passes."""
        spec = self._spec(model)
        trigger = Trigger(
            kind=kind,  # type: ignore[arg-type]
            severity=Severity(severity),
            new_labels=new_labels,
            detail=detail,
            force=force,
            actor=actor,
        )
        with self.states.lock():
            state = self._reconcile(self.states.get(spec.name))
            busy = state.job_id if state.stage != "idle" else None
            history = RetrainHistory(
                last_started_at=parse_time(state.last_started_at), running_job=busy
            )
            verdict = judge(
                trigger, spec=spec.retrain, state=history, now=utc_now(), demo=self.demo
            )
            if not verdict.go:
                self._audit(
                    spec,
                    "retrain_blocked",
                    verdict.reason,
                    actor=actor,
                    evidence={
                        "trigger": kind,
                        "safeguard": verdict.safeguard,
                        "severity": severity,
                        "new_labels": new_labels,
                        "stage": state.stage,
                    },
                )
                return {"model": spec.name, "verdict": asdict(verdict), "job_id": None}
            job_id = f"{spec.name}-{utc_now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            self.states.put(
                state.replace(
                    stage="training",
                    job_id=job_id,
                    job_owner=self.owner,
                    last_started_at=utc_now().isoformat(),
                    version=None,
                    last_result={},
                )
            )
            self._audit(
                spec,
                "retrain_started",
                verdict.reason,
                actor=actor,
                evidence={
                    "job_id": job_id,
                    "trigger": kind,
                    "severity": severity,
                    "new_labels": new_labels,
                },
            )
        if self.inline:
            self.jobs[job_id] = _job_entry(
                spec.id, self.settings_kwargs, trigger, job_id, corrupt_labels
            )
        else:
            import ray

            task = ray.remote(num_cpus=0, max_retries=0)(_job_entry)
            self.jobs[job_id] = task.remote(
                spec.id, self.settings_kwargs, trigger, job_id, corrupt_labels
            )
        return {"model": spec.name, "verdict": asdict(verdict), "job_id": job_id}

    def _reconcile(self, state: ModelRetrainState) -> ModelRetrainState:
        """A ``training`` state whose job no controller runs any more (it died) is failed."""
        if (
            state.stage == "training"
            and state.job_owner != self.owner
            and state.job_id not in self.jobs
        ):
            reason = f"job {state.job_id} was lost with its controller"
            state = state.replace(stage="idle", last_result={"stage": "failed", "reason": reason})
            self.states.put(state)
            self.store.audit.record(
                model=state.model, action="retrain_failed", actor="policy:auto", reason=reason
            )
        return state

    # ------------------------------------------------------------------ the loop

    def tick(self) -> list[dict[str, Any]]:
        """Advance every model one step; return what happened."""
        events = self._collect()
        for state in self.states.all():
            try:
                if state.stage == "live":
                    events.extend(self._live_check(state))
                elif state.stage == "watching":
                    events.extend(self._watch(state))
            except RaycoreError as exc:  # one model's trouble must not stop the others
                events.append({"model": state.model, "event": "error", "reason": exc.message})
        return events

    def _collect(self) -> list[dict[str, Any]]:
        done: list[tuple[str, RetrainResult | BaseException]] = []
        for job_id, ref in list(self.jobs.items()):
            if isinstance(ref, RetrainResult):
                done.append((job_id, ref))
                continue
            import ray

            ready, _ = ray.wait([ref], timeout=0)
            if ready:
                try:
                    done.append((job_id, ray.get(ref)))
                except Exception as exc:  # the task itself crashed
                    done.append((job_id, exc))
        events = []
        for job_id, outcome in done:
            del self.jobs[job_id]
            model = job_id.rsplit("-", 2)[0]
            with self.states.lock():
                state = self.states.get(model)
                if isinstance(outcome, BaseException):
                    result = {"stage": "failed", "reason": f"{type(outcome).__name__}: {outcome}"}
                    state = state.replace(stage="idle", last_result=result)
                    self.store.audit.record(
                        model=model,
                        action="retrain_failed",
                        actor=f"retrain:{job_id}",
                        reason=result["reason"],
                    )
                else:
                    result = asdict(outcome)
                    now = utc_now().isoformat()
                    if outcome.stage == "deployed":
                        state = state.replace(
                            stage="live",
                            version=outcome.version,
                            champion_version=outcome.champion_version,
                            deployed_at=now,
                        )
                    elif outcome.stage == "promoted":
                        state = state.replace(
                            stage="watching",
                            version=outcome.version,
                            promoted_at=now,
                            baseline=None,
                        )
                    else:
                        state = state.replace(stage="idle")
                    state = state.replace(
                        last_result={k: result[k] for k in ("stage", "reason", "version")}
                    )
                self.states.put(
                    state.replace(job_id=None if state.stage == "idle" else state.job_id)
                )
            record_retrain(model=model, outcome=str(result["stage"]))
            events.append(
                {
                    "model": model,
                    "event": f"job_{result['stage']}",
                    "job_id": job_id,
                    "reason": result["reason"],
                }
            )
        return events

    def _live_evidence(self, spec: ModelSpec, state: ModelRetrainState) -> tuple[int, float, float]:
        home = self.settings.home
        if spec.retrain.deploy_as == "canary":
            champ = live_metric(
                spec, home=home, version=state.champion_version, since=state.deployed_at
            )
            cand = live_metric(spec, home=home, version=state.version, since=state.deployed_at)
            return min(champ.n, cand.n), champ.value, cand.value
        cmp = shadow_comparison(spec, home=home, since=state.deployed_at)
        return cmp.n, cmp.primary, cmp.shadow

    def _single_traffic(self, spec: ModelSpec, reason: str, actor: str) -> None:
        from raycore.registry.traffic_state import TrafficStateStore
        from raycore.specs.traffic import TrafficPolicy

        TrafficStateStore.open(self.store).set_policy(
            model=spec.name, policy=TrafficPolicy(), reason=reason, actor=actor
        )

    def _live_check(self, state: ModelRetrainState) -> list[dict[str, Any]]:
        spec = self._spec(state.model)
        n, champion_value, new_value = self._live_evidence(spec, state)
        need = spec.retrain.min_live_comparisons
        if n < need:
            return []
        change = relative_change(op=spec.gate.op, before=champion_value, after=new_value)
        evidence = {
            "n": n,
            "metric": spec.gate.metric,
            "champion": champion_value,
            "candidate": new_value,
            "relative_change": change,
            "tolerance": spec.retrain.live_tolerance,
        }
        actor = "policy:auto"
        summary = (
            f"live {spec.gate.metric} on {n} labelled answers: v{state.version} {new_value:.4g} vs "
            f"champion v{state.champion_version} {champion_value:.4g} ({change:+.2%})"
        )
        with self.states.lock():
            if not math.isfinite(change) or change < -spec.retrain.live_tolerance:
                self._single_traffic(spec, f"retrain refused by live evidence: {summary}", actor)
                self._audit(
                    spec,
                    "retrain_refused",
                    f"live evidence disagrees: {summary}",
                    actor=actor,
                    version=state.version,
                    previous=state.champion_version,
                    evidence=evidence,
                )
                self.states.put(
                    state.replace(
                        stage="idle",
                        job_id=None,
                        last_result={
                            "stage": "refused",
                            "reason": summary,
                            "version": state.version,
                        },
                    )
                )
                return [{"model": spec.name, "event": "live_refused", "reason": summary}]
            with self.store.alias_lock():
                current = self.store.alias_version(spec.name, "champion")
                if current != state.champion_version:
                    raise RegistryError(
                        f"the champion of {spec.name} moved to v{current} during the live test of v{state.version}",
                        hint="the retrain is abandoned; trigger a new one",
                    )
                self.store.set_alias(
                    name=spec.name,
                    alias="champion",
                    version=str(state.version),
                    action="promote",
                    actor=actor,
                    reason=f"live evidence agrees: {summary}",
                    evidence=evidence,
                )
                self.store.remove_alias(
                    name=spec.name,
                    alias="challenger",
                    actor=actor,
                    reason=f"v{state.version} became champion",
                )
            self._single_traffic(
                spec, f"v{state.version} promoted; all traffic to the champion", actor
            )
            self.states.put(
                state.replace(
                    stage="watching", promoted_at=utc_now().isoformat(), baseline=new_value
                )
            )
        return [{"model": spec.name, "event": "promoted", "reason": summary}]

    def _watch(self, state: ModelRetrainState) -> list[dict[str, Any]]:
        from raycore.registry.promotion import rollback_champion

        spec = self._spec(state.model)
        promoted = parse_time(state.promoted_at) or utc_now()
        window = timedelta(hours=spec.retrain.rollback_window_hours)
        if utc_now() - promoted >= window:
            with self.states.lock():
                self.states.put(state.replace(stage="idle", job_id=None))
            self._audit(
                spec,
                "retrain_watch_ended",
                f"v{state.version} held for {window}",
                actor="policy:auto",
                version=state.version,
            )
            return [{"model": spec.name, "event": "watch_ended"}]
        now_metric = live_metric(
            spec, home=self.settings.home, version=state.version, since=state.promoted_at
        )
        if state.baseline is None or now_metric.n < spec.retrain.min_live_comparisons:
            return []
        change = relative_change(op=spec.gate.op, before=state.baseline, after=now_metric.value)
        if not math.isfinite(change) or change >= -spec.retrain.rollback_metric_drop:
            return []
        reason = (
            f"live {spec.gate.metric} of v{state.version} fell to {now_metric.value:.4g} from "
            f"{state.baseline:.4g} at promotion ({change:+.2%}, limit -{spec.retrain.rollback_metric_drop:.0%}) "
            f"on {now_metric.n} labelled answers"
        )
        with self.states.lock():
            new, old = rollback_champion(
                self.store,
                spec.name,
                to_version=state.champion_version,
                actor="policy:auto",
                reason=f"automatic rollback: {reason}",
            )
            self.states.put(
                state.replace(
                    stage="idle",
                    job_id=None,
                    last_result={"stage": "rolled_back", "reason": reason, "version": old},
                )
            )
        return [{"model": spec.name, "event": "rolled_back", "reason": reason, "champion": new}]

    # ------------------------------------------------------------------ schedule, status, loop

    def scheduled(self) -> list[dict[str, Any]]:
        """Raise a scheduled trigger for every automated model whose cadence is due."""
        out = []
        for spec in self._catalog():
            if not spec.retrain.auto:
                continue
            state = self.states.get(spec.name)
            last = self._last_trained(spec)
            if state.stage != "idle" or not cadence_due(
                spec.retrain.cadence, last_trained_at=last, now=utc_now()
            ):
                continue
            out.append(
                self.submit(
                    spec.id,
                    kind="scheduled",
                    new_labels=self._new_labels(spec, since=last),
                    detail=f"{spec.retrain.cadence} cadence is due",
                )
            )
        return out

    def watch(self) -> list[dict[str, Any]]:
        """Check each automated model's answers since its last check; HIGH and worse trigger a retrain.

        The controller is the one supervisor of the monitors: per model with
        ``retrain.auto`` and a champion, every ``monitoring.check_every_s``
        (each tick in demo mode) it runs ``DriftMonitor.check`` over the
        prediction-log window since the previous check and submits what it
        found — ``performance`` when labelled answers show the metric drop,
        ``drift`` otherwise — through the same safeguards as any trigger.
        """
        from raycore.monitoring.monitor import DriftMonitor

        out: list[dict[str, Any]] = []
        for spec in self._catalog():
            if not spec.retrain.auto or self.store.alias_version(spec.name, "champion") is None:
                continue
            marks = self.settings.home / "monitoring" / spec.name / WATCH_FILE
            previous = read_json(marks) or {}
            since = parse_time(previous.get("until"))
            now = utc_now()
            due = self.demo or since is None or (now - since).total_seconds() >= spec.monitoring.check_every_s
            if not due:
                continue
            try:
                result = DriftMonitor(settings=self.settings, spec=spec).check(
                    since=None if since is None else since.isoformat(), until=now.isoformat()
                )
            except RaycoreError as exc:  # no new answers yet, or a model without a reference
                out.append({"model": spec.name, "event": "watch_skipped", "reason": exc.message})
                write_json_atomic(marks, {"until": now.isoformat()})
                continue
            write_json_atomic(marks, {"until": now.isoformat(), "check_id": result.check_id})
            event = {"model": spec.name, "event": "checked", "check_id": result.check_id,
                     "severity": result.severity}  # fmt: skip
            if Severity(result.severity) >= Severity.HIGH:
                dropped = result.metric_drop is not None and result.metric_drop > 0
                found = (
                    f"live {spec.gate.metric} dropped {result.metric_drop:.1%}" if dropped
                    else f"drifted: {', '.join(result.drifted_features) or 'predictions'}"
                )  # fmt: skip
                event["submitted"] = self.submit(
                    spec.id,
                    kind="performance" if dropped else "drift",
                    severity=result.severity,
                    new_labels=self._new_labels(spec, since=self._last_trained(spec)),
                    detail=f"check {result.check_id}: {found}",
                )
            out.append(event)
        return out

    def _last_trained(self, spec: ModelSpec) -> datetime | None:
        """When the model last started a retrain, else when its champion was registered."""
        return parse_time(self.states.get(spec.name).last_started_at) or self._registered_at(spec)

    def _new_labels(self, spec: ModelSpec, *, since: datetime | None) -> int:
        """Labelled answers that came back since ``since`` (the min_new_labels safeguard's count)."""
        from raycore.feedback import count_labels_since

        return count_labels_since(home=self.settings.home, model=spec.name, since=since)

    def _registered_at(self, spec: ModelSpec) -> datetime | None:
        try:
            versions = self.store.versions(spec.name)
        except RaycoreError:
            return None
        champion = next((v for v in versions if "champion" in v.aliases), None)
        return (
            None
            if champion is None
            else datetime.fromtimestamp(champion.created_ms / 1000, tz=timezone.utc)
        )

    def status(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.states.all()]

    def wait(self, job_id: str, *, timeout_s: float = 900.0) -> dict[str, Any] | None:
        """Block until ``job_id`` finished and was collected; return the model's state."""
        deadline = time.monotonic() + timeout_s
        while job_id in self.jobs and time.monotonic() < deadline:
            self._collect()
            if job_id in self.jobs:
                time.sleep(0.5)
        model = job_id.rsplit("-", 2)[0]
        return None if job_id in self.jobs else asdict(self.states.get(model))

    def run_forever(
        self, *, interval_s: float = 5.0, schedule: bool = True, watch: bool = True
    ) -> None:
        """Start the background loop (actor mode); ``watch`` runs the drift checks (``watch()``)."""
        if self._loop is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.tick()
                    if schedule:
                        self.scheduled()
                    if watch:
                        self.watch()
                except Exception:  # keep the controller alive; the next tick retries
                    log.exception("retrain controller tick failed")

        self._loop = threading.Thread(target=loop, name="retrain-controller", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        self._stop.set()


def controller_actor(
    settings: FoundrySettings, *, demo: bool = False, interval_s: float = 5.0, watch: bool = True
) -> Any:
    """The named, detached controller actor of this foundry (created on first use)."""
    import ray

    from raycore.runtime import connect_ray

    connect_ray(settings)
    try:
        return ray.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
    except ValueError:
        pass
    actor_cls = ray.remote(RetrainController)
    handle: Any = actor_cls.options(  # type: ignore[attr-defined]
        name=CONTROLLER_NAME,
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=4,
    ).remote(
        home=str(settings.home),
        tracking_uri=settings.mlflow_tracking_uri,
        catalog_dir=str(settings.catalog_dir) if settings.catalog_dir else None,
        demo=demo,
    )
    ray.get(handle.run_forever.remote(interval_s=interval_s, watch=watch))
    return handle
