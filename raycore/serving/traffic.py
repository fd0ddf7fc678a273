"""Traffic at runtime, without Ray: routing, the canary controller, and the replica's glue.

What a serving replica does for one model (``ModelTraffic`` bundles it)::

    from raycore.registry.traffic_state import TrafficStateStore
    from raycore.serving.auth import ApiKeys, AuthError
    from raycore.serving.traffic import ModelTraffic, ShadowLog

    # once, when the replica starts (store: the replica's ModelStore)
    keys = ApiKeys.load(home=settings.home)
    traffic = ModelTraffic(model=name, state=TrafficStateStore.open(store),
                           shadow_log=ShadowLog(home=settings.home, model=name),
                           available={"champion", "challenger"})   # the aliases this replica loaded

    # per request (async handler)
    keys.check(request.headers, scope="infer")        # AuthError -> exc.status_code (401/403), exc.headers()
    traffic.refresh()                                 # re-reads the policy when its version stamp changed
    key = traffic.request_key(headers=request.headers, row=rows[0])  # the sticky key, or None
    decision = traffic.decide(request_key=key)        # RouteDecision(primary_alias, shadow_alias)
    answer = await traffic.call(decision, call=lambda alias: predict(alias, rows), request_id=rid)

``call`` awaits the primary alias and returns its answer (or re-raises its
error), records the outcome for the canary (a step or rollback is written to
the live state and the audit log), and — when ``decision.shadow_alias`` is
set — sends the same rows to the shadow fire-and-forget
(:mod:`raycore.serving.shadow`): its answer is only logged, its failures never
reach the caller. Admin routes (traffic changes, reloads) check
``scope="admin"``. The pieces are usable alone: ``Router.choose``,
``CanaryController.record``, ``run_shadow`` and ``shadow_stats``.

Stickiness hashes the request key with SHA-256 (salted by the model name), so
the same key lands on the same alias in every process and after restarts.
Each replica runs its own canary controller on the traffic it sees; a step or
rollback written by one replica is adopted by the others at their next
``refresh`` (a rollback anywhere rolls back everywhere).

Example:
    >>> from raycore.specs.traffic import AbSpec, TrafficPolicy
    >>> policy = TrafficPolicy(kind="ab", ab=AbSpec(weights={"champion": 50, "challenger": 50}, sticky_key="id"))
    >>> router = Router(model="m")
    >>> a = router.choose(policy, request_key="customer-7", rng=random.Random(0))
    >>> a == router.choose(policy, request_key="customer-7", rng=random.Random(1))
    True
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from raycore.serving.shadow import (
    ShadowCounters,
    ShadowLog,
    ShadowStats,
    compare_answers,
    run_shadow,
    shadow_stats,
)
from raycore.specs.traffic import CHAMPION, CanarySpec, TrafficPolicy

if TYPE_CHECKING:
    from raycore.registry.traffic_state import CanaryLive, TrafficStateStore

__all__ = [
    "CanaryController",
    "CanaryEvent",
    "ModelTraffic",
    "RouteDecision",
    "Router",
    "ShadowCounters",
    "ShadowLog",
    "ShadowStats",
    "compare_answers",
    "run_shadow",
    "shadow_stats",
    "stable_fraction",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
_P99_FLOOR_MS = 1.0  # ratios against a sub-millisecond champion p99 would flag harmless jitter


def stable_fraction(key: str, *, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``key`` (and ``salt``): the same in every process and after restarts."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class RouteDecision:
    """Which alias answers the caller, and which one (if any) gets a shadow copy."""

    primary_alias: str
    shadow_alias: str | None = None


class Router:
    """Chooses the alias of each request from a policy.

    ``available`` (optional) lists the aliases that are loaded: traffic meant
    for another one goes to the champion instead of failing.
    """

    def __init__(self, *, model: str) -> None:
        self.model = model

    def _draw(self, request_key: str | None, rng: random.Random, purpose: str) -> float:
        if request_key is None:
            return rng.random()
        return stable_fraction(request_key, salt=f"{self.model}:{purpose}")

    def choose(
        self,
        policy: TrafficPolicy,
        *,
        request_key: str | None,
        rng: random.Random,
        canary_percent: float | None = None,
        available: Collection[str] | None = None,
    ) -> RouteDecision:
        """Route one request. ``canary_percent`` is the controller's live share (default: the start).

        Example:
            >>> Router(model="m").choose(TrafficPolicy(), request_key=None, rng=random.Random(0))
            RouteDecision(primary_alias='champion', shadow_alias=None)
        """

        def ok(alias: str) -> str:
            return alias if available is None or alias in available else CHAMPION

        if policy.ab is not None:
            weights = sorted((a, w) for a, w in policy.ab.weights.items() if w > 0)
            total = sum(w for _, w in weights)
            point = self._draw(request_key, rng, "ab") * total
            upto = 0.0
            for alias, weight in weights:
                upto += weight
                if point < upto:
                    return RouteDecision(ok(alias))
            return RouteDecision(ok(weights[-1][0]))
        if policy.canary is not None:
            percent = policy.canary.start_percent if canary_percent is None else canary_percent
            hit = self._draw(request_key, rng, "canary") * 100.0 < percent
            return RouteDecision(ok(policy.canary.alias) if hit else CHAMPION)
        if policy.shadow is not None:
            copy = rng.random() * 100.0 < policy.shadow.sample_percent
            alias = policy.shadow.alias
            return RouteDecision(
                CHAMPION, alias if copy and (available is None or alias in available) else None
            )
        return RouteDecision(CHAMPION)


@dataclass(frozen=True)
class CanaryEvent:
    """A canary step or rollback, as written to the audit log."""

    action: Literal["canary_step", "canary_rollback"]
    alias: str
    from_percent: float
    to_percent: float
    status: Literal["stepping", "complete", "rolled_back"]
    steps: int
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


class _Window:
    """Outcomes of one alias since the last step: counts exact, latencies the last 10,000,
    and the errors among the last ``recent`` outcomes (a sliding window)."""

    def __init__(self, recent: int = 100) -> None:
        self.n = 0
        self.errors = 0
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.recent: deque[bool] = deque(maxlen=recent)
        self.recent_errors = 0

    def add(self, *, ok: bool, latency_ms: float) -> None:
        self.n += 1
        self.errors += 0 if ok else 1
        self.latencies.append(latency_ms)
        if len(self.recent) == self.recent.maxlen and not self.recent[0]:
            self.recent_errors -= 1
        self.recent.append(ok)
        self.recent_errors += 0 if ok else 1

    def p99(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class CanaryController:
    """Steps a canary's share up while its window is healthy; rolls it back to 0 % at the first breach.

    Once at ``max_percent`` (status ``complete``) it stops stepping but keeps
    judging windows: a later breach still rolls back.

    Feed it every outcome (``record``). The challenger breaches when the
    errors among its last ``min_requests_per_step`` requests exceed
    ``max_error_rate`` of that many (so a broken challenger is caught before
    a full window, and a challenger that breaks late is not diluted by a
    long healthy past), or when a full window's p99 exceeds ``max_p99_ms`` or ``max_p99_ms_ratio`` x the
    champion's p99. A full, healthy window steps up once ``step_every_s`` have
    passed or ``step_every_requests`` challenger requests were seen.

    Example:
        >>> spec = CanarySpec(start_percent=10, step_percent=10, step_every_requests=5, min_requests_per_step=5)
        >>> ctl = CanaryController(spec, clock=lambda: 0.0)
        >>> [ctl.record(alias="challenger", ok=True, latency_ms=1.0) for _ in range(5)][-1].to_percent
        20.0
    """

    def __init__(
        self,
        spec: CanarySpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        percent: float | None = None,
        status: Literal["stepping", "complete", "rolled_back"] = "stepping",
        steps: int = 0,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.percent = spec.start_percent if percent is None else percent
        self.status = status
        self.steps = steps
        self._reset(clock())

    def _reset(self, now: float) -> None:
        self._challenger = _Window(self.spec.min_requests_per_step)
        self._champion = _Window(self.spec.min_requests_per_step)
        self._since = now

    def adopt(self, live: CanaryLive) -> None:
        """Take over a step or rollback another replica wrote (never moves backwards in steps)."""
        if live.status == "rolled_back" or live.steps > self.steps:
            self.percent, self.status, self.steps = live.percent, live.status, live.steps
            self._reset(self.clock())

    def window(self) -> dict[str, Any]:
        """The current window, for evidence and ``foundry traffic show``."""
        c, h = self._challenger, self._champion
        return {
            "challenger_requests": c.n,
            "challenger_errors": c.errors,
            "challenger_error_rate": c.errors / c.n if c.n else None,
            "challenger_p99_ms": c.p99(),
            "champion_requests": h.n,
            "champion_errors": h.errors,
            "champion_p99_ms": h.p99(),
            "window_s": round(self.clock() - self._since, 3),
        }

    def record(self, *, alias: str, ok: bool, latency_ms: float) -> CanaryEvent | None:
        """Count one outcome; return the step or rollback it triggers, if any."""
        if self.status == "rolled_back":
            return None  # a completed canary is still watched: it can roll back until promoted
        spec = self.spec
        if alias == CHAMPION:
            self._champion.add(ok=ok, latency_ms=latency_ms)
            return None
        if alias != spec.alias:
            return None
        win = self._challenger
        win.add(ok=ok, latency_ms=latency_ms)
        if win.recent_errors / spec.min_requests_per_step > spec.max_error_rate:
            return self._rollback(
                f"challenger error rate: {win.recent_errors} errors in its last {len(win.recent)} requests "
                f"exceed max_error_rate {spec.max_error_rate:g} of a {spec.min_requests_per_step}-request window"
            )
        if win.n < spec.min_requests_per_step:
            return None
        now = self.clock()
        due = self.status == "stepping" and (
            (spec.step_every_s is not None and now - self._since >= spec.step_every_s)
            or (spec.step_every_requests is not None and win.n >= spec.step_every_requests)
        )
        if not due and win.n % spec.min_requests_per_step:
            return None
        breach = self._latency_breach()
        if breach:
            return self._rollback(breach)
        return self._step(now) if due else None

    def _latency_breach(self) -> str | None:
        spec, p99 = self.spec, self._challenger.p99()
        if p99 is None:
            return None
        if spec.max_p99_ms is not None and p99 > spec.max_p99_ms:
            return f"challenger p99 {p99:.1f} ms exceeds max_p99_ms {spec.max_p99_ms:g}"
        champ = self._champion.p99()
        if (
            spec.max_p99_ms_ratio is not None
            and champ is not None
            and self._champion.n >= spec.min_requests_per_step
        ):
            bound = spec.max_p99_ms_ratio * max(champ, _P99_FLOOR_MS)
            if p99 > bound:
                return (
                    f"challenger p99 {p99:.1f} ms exceeds {spec.max_p99_ms_ratio:g} x champion p99 "
                    f"{champ:.1f} ms (floor {_P99_FLOOR_MS:g} ms)"
                )
        return None

    def _step(self, now: float) -> CanaryEvent:
        before, evidence = self.percent, self.window()
        self.percent = min(self.percent + self.spec.step_percent, self.spec.max_percent)
        self.steps += 1
        self.status = "complete" if self.percent >= self.spec.max_percent else "stepping"
        self._reset(now)
        return CanaryEvent(
            action="canary_step",
            alias=self.spec.alias,
            from_percent=before,
            to_percent=self.percent,
            status=self.status,
            steps=self.steps,
            reason=f"healthy window: {self.spec.alias} {before:g}% → {self.percent:g}%"
            + (" (max reached)" if self.status == "complete" else ""),
            evidence=evidence,
        )

    def _rollback(self, why: str) -> CanaryEvent:
        before, evidence = self.percent, self.window()
        self.percent, self.status = 0.0, "rolled_back"
        self.steps += 1
        self._reset(self.clock())
        return CanaryEvent(
            action="canary_rollback",
            alias=self.spec.alias,
            from_percent=before,
            to_percent=0.0,
            status="rolled_back",
            steps=self.steps,
            reason=f"rolled back to champion only: {why}",
            evidence=evidence,
        )


# ---------------------------------------------------------------- one model's traffic in a replica


class ModelTraffic:
    """Everything a replica needs for one model: the polled policy, router, canary controller, shadow log."""

    def __init__(
        self,
        *,
        model: str,
        state: TrafficStateStore,
        shadow_log: ShadowLog | None = None,
        available: Collection[str] | None = None,
        poll_s: float = 1.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.state = state
        self.shadow_log = shadow_log
        self.available = None if available is None else frozenset(available)
        self.poll_s = poll_s
        self.rng = rng or random.Random()
        self.clock = clock
        self.router = Router(model=model)
        self.counters = ShadowCounters()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.version = -1
        self.policy = TrafficPolicy()
        self.canary: CanaryController | None = None
        self._next_poll = 0.0
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the policy if its version changed (at most every ``poll_s``); True when it did."""
        now = self.clock()
        if not force and now < self._next_poll:
            return False
        self._next_poll = now + self.poll_s
        version = self.state.version(self.model)
        if version != self.version:
            active = self.state.active(self.model)
            self.version, self.policy = active.version, active.policy
            self.canary = (
                CanaryController(active.policy.canary, clock=self.clock)
                if active.policy.canary
                else None
            )
            changed = True
        else:
            changed = False
        if self.canary is not None:
            live = self.state.canary(self.model)
            if live is not None:
                self.canary.adopt(live)
        return changed

    def request_key(
        self, *, headers: Mapping[str, str] | None = None, row: Mapping[str, Any] | None = None
    ) -> str | None:
        """The sticky key of a request: the policy's ``sticky_key`` from the row, else from a header."""
        block = self.policy.ab or self.policy.canary
        name = getattr(block, "sticky_key", None)
        if name is None:
            return None
        if row is not None and row.get(name) is not None:
            return str(row[name])
        if headers is not None:
            lowered = {k.lower(): v for k, v in headers.items()}
            value = lowered.get(name.lower())
            return None if value is None else str(value)
        return None

    def decide(self, *, request_key: str | None) -> RouteDecision:
        """Route one request under the current policy and canary share."""
        percent = self.canary.percent if self.canary is not None else None
        return self.router.choose(
            self.policy,
            request_key=request_key,
            rng=self.rng,
            canary_percent=percent,
            available=self.available,
        )

    def record(self, *, alias: str, ok: bool, latency_ms: float) -> CanaryEvent | None:
        """Feed one outcome to the canary; a step or rollback is written to the live state and audit log."""
        if self.canary is None:
            return None
        event = self.canary.record(alias=alias, ok=ok, latency_ms=latency_ms)
        if event is not None:
            try:
                self.state.record_canary(
                    model=self.model,
                    policy_version=self.version,
                    action=event.action,
                    alias=event.alias,
                    from_percent=event.from_percent,
                    to_percent=event.to_percent,
                    status=event.status,
                    steps=event.steps,
                    reason=event.reason,
                    evidence=event.evidence,
                )
            except (
                Exception
            ):  # the controller already acted; losing the record must not fail the request
                log.exception("cannot write the canary %s of %s", event.action, self.model)
        return event

    async def call(
        self,
        decision: RouteDecision,
        *,
        call: Callable[[str], Awaitable[T]],
        request_id: str | None = None,
    ) -> T:
        """Ask the primary alias (and a shadow copy); record the outcome; return or raise the primary's."""
        started = time.perf_counter()
        try:
            if decision.shadow_alias is not None and self.shadow_log is not None:
                shadow_alias = decision.shadow_alias
                answer = await run_shadow(
                    primary=call(decision.primary_alias),
                    shadow=lambda: call(shadow_alias),
                    log_to=self.shadow_log,
                    primary_alias=decision.primary_alias,
                    shadow_alias=shadow_alias,
                    request_id=request_id,
                    counters=self.counters,
                    tasks=self.tasks,
                )
            else:
                answer = await call(decision.primary_alias)
        except asyncio.CancelledError:
            raise  # the caller went away: not the model's failure
        except Exception:
            self.record(
                alias=decision.primary_alias,
                ok=False,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
            raise
        self.record(
            alias=decision.primary_alias,
            ok=True,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
        return answer
