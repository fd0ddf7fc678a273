"""One retrain: fresh data → the training path → champion/challenger gate → live traffic.

The job is the same composition ``foundry train`` runs (``prepare_training`` →
``fit_released`` → ``evaluate_bundle`` → ``log_candidate``), then:

1. gate: a model that misses its catalog gate is refused (``retrain_refused``);
2. register the passing model as ``challenger`` (never straight to champion
   when one exists);
3. champion/challenger gate on the same fresh holdout
   (``raycore.registry.promotion.challenge``); a loser is refused with the
   comparison in the audit log;
4. deploy the winner to live traffic as the spec says (``retrain.deploy_as``):
   a shadow copy of every request, or a canary. Promotion waits for live
   evidence (``RetrainController``), never for this job.

``corrupt_labels`` (a share of training labels replaced by shuffled ones) is a
drill: it proves a bad retrain is caught by the gates before it reaches a caller.

Example:
    >>> result = run_retrain(spec, settings=settings, job_id="j1", trigger=Trigger(kind="manual"))  # doctest: +SKIP
    >>> result.stage                                                                                 # doctest: +SKIP
    'deployed'
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from raycore.errors import GateFailedError, RaycoreError
from raycore.retraining.policy import Trigger
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec

__all__ = ["RetrainResult", "run_retrain"]

Stage = Literal["refused", "deployed", "promoted", "failed"]


@dataclass(frozen=True)
class RetrainResult:
    """How a retrain job ended."""

    model: str
    job_id: str
    stage: Stage
    reason: str
    version: str | None = None
    champion_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _corrupt(prepared: Any, share: float, *, seed: int = 0) -> Any:
    """Shuffle the labels of ``share`` of the training rows (a drill for the gates)."""
    rows = prepared.train_rows.copy()
    label = prepared.spec.label
    rng = np.random.default_rng(seed)
    picked = rng.random(len(rows)) < share
    rows.loc[picked, label] = rng.permutation(rows.loc[picked, label].to_numpy())
    return dataclasses.replace(prepared, train_rows=rows)


def _deploy(spec: ModelSpec, store: Any, *, version: str, actor: str, job_id: str) -> str:
    """Send live traffic to the challenger as ``retrain.deploy_as`` says; return what was done."""
    from raycore.registry.traffic_state import TrafficStateStore
    from raycore.specs.traffic import CanarySpec, ShadowSpec, TrafficPolicy

    if spec.retrain.deploy_as == "canary":
        policy = TrafficPolicy(kind="canary", canary=CanarySpec(alias="challenger"))
    else:
        policy = TrafficPolicy(kind="shadow", shadow=ShadowSpec(alias="challenger"))
    TrafficStateStore.open(store).set_policy(
        model=spec.name,
        policy=policy,
        reason=f"retrain {job_id}: v{version} meets live traffic as {spec.retrain.deploy_as}",
        actor=actor,
        existing_aliases=["champion", "challenger"],
    )
    return policy.describe()


def run_retrain(
    spec: ModelSpec,
    *,
    settings: FoundrySettings,
    job_id: str,
    trigger: Trigger,
    corrupt_labels: float = 0.0,
    progress: Any = None,
) -> RetrainResult:
    """Retrain ``spec`` on the current data and put a winner in front of live traffic."""
    from raycore.registry.promotion import challenge
    from raycore.registry.store import ModelStore
    from raycore.training.pipeline import (
        evaluate_bundle,
        fit_released,
        log_candidate,
        materialize_tables,
        prepare_training,
        register_candidate,
    )

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    actor = f"retrain:{job_id}"
    store = ModelStore(settings)
    audit = store.audit

    def finish(stage: Stage, reason: str, **kw: Any) -> RetrainResult:
        action = {"refused": "retrain_refused", "failed": "retrain_failed"}.get(
            stage, f"retrain_{stage}"
        )
        result = RetrainResult(
            model=spec.name,
            job_id=job_id,
            stage=stage,
            reason=reason,
            seconds=time.perf_counter() - started,
            **kw,
        )
        audit.record(
            model=spec.name,
            action=action,
            actor=actor,
            reason=reason,
            alias="challenger" if stage == "deployed" else None,
            version=result.version,
            previous=result.champion_version,
            evidence={
                "job_id": job_id,
                "trigger": trigger.kind,
                **result.evidence,
                "metrics": result.metrics,
            },
        )
        return result

    try:
        say("loading fresh data")
        prepared = prepare_training(spec, settings=settings, progress=say)
        if corrupt_labels > 0:
            prepared = _corrupt(prepared, corrupt_labels)
        fitted = fit_released(prepared, settings=settings, progress=say)
        say("evaluating on the fresh holdout")
        result = evaluate_bundle(prepared, fitted.bundle)
        online = settings.online_store()
        try:
            materialize_tables(prepared.view, prepared.built, store=online)
        finally:
            online.close()
        tags = {"retrain_job": job_id, "trigger": trigger.kind}
        if corrupt_labels > 0:
            tags["drill.corrupt_labels"] = f"{corrupt_labels:g}"
        try:
            logged = log_candidate(
                store, prepared, fitted, result, seconds=time.perf_counter() - started, tags=tags
            )
        except GateFailedError as exc:
            return finish(
                "refused",
                f"the retrained model missed its gate: {exc.message}",
                metrics=result.metrics,
            )
        version, what = register_candidate(
            store, prepared, logged, evaluate_champion=False, actor=actor, source="retrain"
        )
        metrics = {k: float(v) for k, v in logged.metrics.items()}
        decision = challenge(store, prepared, version=version, candidate_result=logged.result)
        if decision.champion_version is None:
            return finish("promoted", what, version=version, metrics=metrics)
        if not decision.accepted:
            return finish(
                "refused",
                decision.summary,
                version=version,
                champion_version=decision.champion_version,
                metrics=metrics,
                evidence=decision.evidence(),
            )
        deployed = _deploy(spec, store, version=version, actor=actor, job_id=job_id)
        return finish(
            "deployed",
            f"{decision.summary}; live traffic: {deployed}; promotion waits for live evidence",
            version=version,
            champion_version=decision.champion_version,
            metrics=metrics,
            evidence=decision.evidence(),
        )
    except RaycoreError as exc:
        return finish("failed", f"{type(exc).__name__}: {exc.message}")
