"""Promotion, refusal and rollback of the ``champion`` alias, with the evidence in the audit log.

Promotion is a champion/challenger gate: the candidate and the current
champion are scored **on the same fresh holdout** (the latest data, through
each bundle's own feature code), and the candidate replaces the champion only
if it beats it on the gate metric by more than the spec's ``promotion.margin``
(relative to the champion's value) and is no worse on any guard metric (the
gate's ``also`` metrics, or ``promotion.guards``). Otherwise the promotion is
refused with the numbers in the error, and the refusal is audited too.

Rollback moves ``champion`` back to the version that held it before the
current holder, in one step. The audit log, not MLflow, knows that order:
promotions push onto the champion's history, rollbacks pop.

Example:
    >>> decision = compare_results(spec, candidate={"mape": 0.11}, champion={"mape": 0.12})  # doctest: +SKIP
    >>> decision.accepted                                                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from raycore.errors import IncompatibleBundleError, PromotionRefusedError, RegistryError
from raycore.registry.audit import AuditEvent, default_actor
from raycore.specs import GuardSpec, ModelSpec

if TYPE_CHECKING:
    from raycore.registry.bundle import ModelBundle
    from raycore.registry.store import ModelStore
    from raycore.training.evaluation import EvalResult
    from raycore.training.pipeline import PreparedData

__all__ = [
    "Comparison",
    "PromotionDecision",
    "challenge",
    "champion_history",
    "compare_results",
    "promote_version",
    "rollback_champion",
]

# Actions that hand the champion alias to a new holder (pushed on its history).
_PUSH_ACTIONS = {"promote", "set_alias", "force_promote"}


@dataclass(frozen=True)
class Comparison:
    """One metric, candidate vs champion. ``improvement`` > 0 means the candidate is better."""

    metric: str
    role: str  # "gate" or "guard"
    op: str
    candidate: float
    champion: float
    improvement: float  # relative to the champion's value, signed: + is better
    required: float  # the gate metric must exceed this; a guard must be >= -tolerance
    ok: bool

    def line(self) -> str:
        better = "higher" if self.op == ">=" else "lower"
        need = (
            f"needs > {self.required:+.2%}"
            if self.role == "gate"
            else f"may not be worse than {self.required:+.2%}"
        )
        return (
            f"{self.role} {self.metric} ({better} is better): candidate {self.candidate:.6g} vs "
            f"champion {self.champion:.6g} → {self.improvement:+.2%} ({need}) "
            f"{'ok' if self.ok else 'FAILS'}"
        )


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of the champion/challenger gate."""

    model: str
    candidate_version: str | None
    champion_version: str | None
    accepted: bool
    comparisons: list[Comparison] = field(default_factory=list)
    summary: str = ""

    def evidence(self) -> dict[str, Any]:
        return {
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "comparisons": [asdict(c) for c in self.comparisons],
        }


def _relative(op: str, candidate: float, champion: float) -> float:
    """Signed relative improvement of ``candidate`` over ``champion`` (+ is better)."""
    delta = (candidate - champion) if op == ">=" else (champion - candidate)
    scale = abs(champion)
    if scale < 1e-12:
        return 0.0 if abs(delta) < 1e-12 else math.copysign(math.inf, delta)
    return delta / scale


def guards_of(spec: ModelSpec) -> list[GuardSpec]:
    """The promotion guards: ``promotion.guards``, plus every ``gate.also`` metric not listed there."""
    guards = list(spec.promotion.guards)
    named = {g.metric for g in guards} | {spec.gate.metric}
    for cond in spec.gate.also:
        if cond.metric not in named:
            guards.append(GuardSpec(metric=cond.metric, op=cond.op))
    return guards


def compare_results(
    spec: ModelSpec,
    *,
    candidate: Mapping[str, float],
    champion: Mapping[str, float],
    candidate_version: str | None = None,
    champion_version: str | None = None,
) -> PromotionDecision:
    """Apply the champion/challenger gate of ``spec`` to two sets of holdout metrics."""
    comparisons = []
    metric, op, margin = spec.gate.metric, spec.gate.op, spec.promotion.margin
    for name in [metric, *(g.metric for g in guards_of(spec))]:
        for side, values in (("candidate", candidate), ("champion", champion)):
            if name not in values or not math.isfinite(float(values[name])):
                raise RegistryError(
                    f"the {side} has no finite '{name}' on the holdout",
                    hint="the model's evaluator must report every gate and guard metric",
                )
    cand, champ = float(candidate[metric]), float(champion[metric])
    imp = _relative(op, cand, champ)
    comparisons.append(Comparison(metric, "gate", op, cand, champ, imp, margin, imp > margin))
    for guard in guards_of(spec):
        cand, champ = float(candidate[guard.metric]), float(champion[guard.metric])
        imp = _relative(guard.op, cand, champ)
        comparisons.append(
            Comparison(
                guard.metric, "guard", guard.op, cand, champ, imp, -guard.tolerance, imp >= -guard.tolerance
            )
        )
    accepted = all(c.ok for c in comparisons)
    head = (
        f"{spec.name}: candidate v{candidate_version} vs champion v{champion_version} on the same holdout"
    )
    verdict = "promoted" if accepted else "refused"
    summary = f"{head}: {verdict}; " + "; ".join(c.line() for c in comparisons)
    return PromotionDecision(
        model=spec.name,
        candidate_version=candidate_version,
        champion_version=champion_version,
        accepted=accepted,
        comparisons=comparisons,
        summary=summary,
    )


def _evaluate(prepared: PreparedData, bundle: ModelBundle) -> EvalResult:
    from raycore.training.pipeline import evaluate_bundle

    return evaluate_bundle(prepared, bundle)


def _load(store: ModelStore, name: str, version: str, role: str) -> ModelBundle:
    try:
        bundle, _ = store.load_bundle(name, version=version)
    except IncompatibleBundleError:
        raise
    except RegistryError as exc:
        raise RegistryError(
            f"cannot load the {role} {name} v{version} to compare on the fresh holdout: {exc.message}",
            hint=exc.hint,
        ) from exc
    return bundle


def challenge(
    store: ModelStore,
    prepared: PreparedData,
    *,
    version: str,
    candidate_result: EvalResult | None = None,
) -> PromotionDecision:
    """The champion/challenger gate for ``version`` on ``prepared``'s holdout, without moving an alias.

    No champion: accepted (it would be the first). A champion the current code
    cannot load (its feature view version is gone): accepted without a
    comparison, and the summary says why.
    """
    spec = prepared.spec
    name = spec.name
    champion = store.alias_version(name, "champion")
    if champion is None:
        return PromotionDecision(name, version, None, True, [], f"{name}: v{version} is the first champion")
    if candidate_result is None:
        candidate_result = _evaluate(prepared, _load(store, name, version, "candidate"))
    try:
        champion_bundle = _load(store, name, champion, "champion")
    except IncompatibleBundleError as exc:
        # The champion cannot run with this code (nor be served by it): the candidate, which
        # passed its gate with the current feature code, replaces it without a comparison.
        return PromotionDecision(
            name, version, champion, True, [],
            f"{name}: champion v{champion} cannot run with this code ({exc.message}); "
            f"v{version} passed its gate and replaces it",
        )
    return compare_results(
        spec,
        candidate=candidate_result.metrics,
        champion=_evaluate(prepared, champion_bundle).metrics,
        candidate_version=version,
        champion_version=champion,
    )


def promote_version(
    store: ModelStore,
    prepared: PreparedData,
    *,
    version: str,
    candidate_result: EvalResult | None = None,
    actor: str | None = None,
    reason: str | None = None,
    force: bool = False,
) -> PromotionDecision:
    """Make ``version`` the champion if it beats the current one on ``prepared``'s holdout.

    ``candidate_result`` is the candidate's score on this holdout when the
    caller has it (training just computed it); otherwise the candidate is
    loaded and scored. ``force`` promotes whatever the comparison says (the
    reason is mandatory and the comparison, where possible, is audited).
    Raises ``PromotionRefusedError`` (with the comparison) on refusal.
    """
    spec = prepared.spec
    name = spec.name
    actor = actor or default_actor()
    store._require_version(name, version)
    champion = store.alias_version(name, "champion")
    if champion == str(version):
        raise RegistryError(
            f"{name} v{version} is already the champion", hint="nothing to promote"
        )
    if force and not (reason or "").strip():
        raise RegistryError("a forced promotion needs a reason", hint="pass --reason '...'")

    decision = challenge(store, prepared, version=str(version), candidate_result=candidate_result)
    champion = decision.champion_version  # the holder the comparison was made against
    if not decision.accepted and not force:
        store.audit.record(
            model=name,
            action="promotion_refused",
            alias="champion",
            version=str(version),
            previous=champion,
            actor=actor,
            reason=f"{reason}: {decision.summary}" if reason else decision.summary,
            evidence=decision.evidence(),
        )
        raise PromotionRefusedError(
            decision.summary,
            comparison=[asdict(c) for c in decision.comparisons],
            hint=f"v{champion} stays champion; improve the candidate, or lower promotion.margin in the spec",
        )

    with store.alias_lock():
        now = store.alias_version(name, "champion")
        if now != champion:
            raise RegistryError(
                f"the champion of {name} changed from v{champion} to v{now} while v{version} was being compared",
                hint="re-run the promotion: it will compare against the new champion",
            )
        why = reason or decision.summary
        store.set_alias(
            name=name,
            alias="champion",
            version=str(version),
            action="force_promote" if force and not decision.accepted else "promote",
            actor=actor,
            reason=why,
            evidence=decision.evidence(),
        )
        if store.alias_version(name, "challenger") == str(version):
            store.remove_alias(
                name=name,
                alias="challenger",
                actor=actor,
                reason=f"v{version} became champion",
            )
    return decision


def champion_history(events: Iterable[AuditEvent]) -> list[str]:
    """The champion's holders in order, as promotions and rollbacks left them (last = current)."""
    stack: list[str] = []
    for event in events:
        if event.alias != "champion" or event.version is None:
            continue
        if event.action == "rollback":
            if event.version in stack:
                while stack[-1] != event.version:
                    stack.pop()
            else:
                stack.append(event.version)
        elif event.action in _PUSH_ACTIONS:
            if not stack or stack[-1] != event.version:
                stack.append(event.version)
    return stack


def rollback_champion(
    store: ModelStore,
    name: str,
    *,
    to_version: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> tuple[str, str]:
    """Move ``champion`` back to the previous champion (or ``to_version``); return (new, old).

    Runs under the alias lock, so two rollbacks at once move back two steps,
    never the same step twice.
    """
    actor = actor or default_actor()
    with store.alias_lock():
        current = store.alias_version(name, "champion")
        if current is None:
            raise RegistryError(f"{name} has no champion to roll back", hint="train it first")
        stack = champion_history(store.audit.history(name))
        if stack and stack[-1] != current:
            # MLflow was changed behind the audit log's back: trust MLflow for the current holder.
            stack.append(current)
        if to_version is None:
            if len(stack) < 2:
                raise RegistryError(
                    f"{name} v{current} has no previous champion to roll back to",
                    hint="`foundry registry history` shows the champion's holders",
                )
            target = stack[-2]
        else:
            target = str(to_version)
            if target == current:
                raise RegistryError(f"{name} v{target} is already the champion", hint="nothing to roll back")
        store.set_alias(
            name=name,
            alias="champion",
            version=target,
            action="rollback",
            actor=actor,
            reason=reason or f"rollback from v{current}",
            evidence={"from_version": current, "champion_history": stack},
        )
    return target, current
