"""Traffic policies, routing, the canary controller, shadow calls, traffic state and API keys: no Ray."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from raycore.errors import ConfigurationError, RegistryError, SpecError
from raycore.registry.audit import AuditLog
from raycore.registry.traffic_state import TrafficStateStore, shipped_default
from raycore.serving.auth import ApiKeys, AuthError, check_bind, create_key, list_keys
from raycore.serving.traffic import (
    CanaryController,
    ModelTraffic,
    Router,
    ShadowLog,
    run_shadow,
    shadow_stats,
    stable_fraction,
)
from raycore.specs.loader import parse_spec
from raycore.specs.traffic import (
    AbSpec,
    CanarySpec,
    ShadowSpec,
    TrafficPolicy,
    load_traffic_policy,
    policy_from_flags,
)

MODEL = "sales_forecasting"
AB_90_10 = TrafficPolicy(
    kind="ab", ab=AbSpec(weights={"champion": 90, "challenger": 10}, sticky_key="customer_id")
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_RLOCK = threading.RLock()


@contextmanager
def _lock() -> Iterator[None]:
    with _RLOCK:
        yield


@pytest.fixture()
def state(tmp_path: Path) -> TrafficStateStore:
    return TrafficStateStore(home=tmp_path, audit=AuditLog(tmp_path / "audit.db"), lock=_lock)


# ---------------------------------------------------------------- routing


def test_ab_split_proportions_over_10k_keys() -> None:
    router = Router(model=MODEL)
    rng = random.Random(0)
    picks = [
        router.choose(AB_90_10, request_key=f"customer-{i}", rng=rng).primary_alias
        for i in range(10_000)
    ]
    share = picks.count("challenger") / len(picks)
    assert share == pytest.approx(0.10, abs=0.015)
    three = TrafficPolicy(
        kind="ab", ab=AbSpec(weights={"champion": 2, "challenger": 1, "shadow": 1})
    )
    unsticky = [
        router.choose(three, request_key=None, rng=rng).primary_alias for _ in range(10_000)
    ]
    assert unsticky.count("champion") / 10_000 == pytest.approx(0.5, abs=0.02)
    assert unsticky.count("shadow") / 10_000 == pytest.approx(0.25, abs=0.02)


def test_sticky_keys_keep_their_alias_across_rngs_instances_and_processes() -> None:
    keys = [f"customer-{i}" for i in range(200)]
    first = [
        Router(model=MODEL).choose(AB_90_10, request_key=k, rng=random.Random(1)).primary_alias
        for k in keys
    ]
    again = [
        Router(model=MODEL).choose(AB_90_10, request_key=k, rng=random.Random(99)).primary_alias
        for k in keys
    ]
    assert first == again
    assert 0 < first.count("challenger") < len(keys)
    code = (
        "import json, random, sys\n"
        "from raycore.serving.traffic import Router\n"
        "from raycore.specs.traffic import AbSpec, TrafficPolicy\n"
        "p = TrafficPolicy(kind='ab', ab=AbSpec(weights={'champion': 90, 'challenger': 10}, sticky_key='customer_id'))\n"
        f"keys = {keys!r}\n"
        f"print(json.dumps([Router(model={MODEL!r}).choose(p, request_key=k, rng=random.Random()).primary_alias"
        " for k in keys]))\n"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
    }  # a different hash() seed: stickiness must not depend on it
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    assert json.loads(out.stdout) == first
    # Pinned: a change of the hash would silently move every sticky caller.
    assert stable_fraction("customer-42", salt=f"{MODEL}:ab") == pytest.approx(0.5478320529510173)


def test_canary_share_is_sticky_and_monotone_as_it_climbs() -> None:
    policy = TrafficPolicy(
        kind="canary", canary=CanarySpec(start_percent=10, step_every_s=60, sticky_key="id")
    )
    router = Router(model=MODEL)
    rng = random.Random(3)
    at10 = {
        k
        for k in map(str, range(5000))
        if router.choose(policy, request_key=k, rng=rng, canary_percent=10).primary_alias
        == "challenger"
    }
    at30 = {
        k
        for k in map(str, range(5000))
        if router.choose(policy, request_key=k, rng=rng, canary_percent=30).primary_alias
        == "challenger"
    }
    assert at10 < at30  # callers on the canary stay on it as the share rises
    assert len(at30) / 5000 == pytest.approx(0.30, abs=0.02)
    assert (
        router.choose(policy, request_key="x", rng=rng, canary_percent=0).primary_alias
        == "champion"
    )


def test_shadow_samples_copies_and_never_changes_the_primary() -> None:
    policy = TrafficPolicy(kind="shadow", shadow=ShadowSpec(alias="challenger", sample_percent=25))
    rng = random.Random(5)
    picks = [Router(model=MODEL).choose(policy, request_key=None, rng=rng) for _ in range(8000)]
    assert {p.primary_alias for p in picks} == {"champion"}
    assert sum(p.shadow_alias == "challenger" for p in picks) / 8000 == pytest.approx(
        0.25, abs=0.02
    )
    missing = Router(model=MODEL).choose(
        policy.model_copy(update={"shadow": ShadowSpec(alias="challenger")}),
        request_key=None,
        rng=rng,
        available={"champion"},
    )
    assert missing.shadow_alias is None


# ---------------------------------------------------------------- specs and flags


@pytest.mark.parametrize(
    ("yaml_text", "field", "words"),
    [
        (
            "kind: ab\nab: {weights: {champion: 0, challenger: 0}}\n",
            "ab.weights",
            "sum to more than 0",
        ),
        ("kind: ab\nab: {weights: {champion: 90, challanger: 10}}\n", "ab.weights", "'challanger'"),
        ("kind: ab\nab: {weights: {champion: -1}}\n", "ab.weights", "-1"),
        (
            "kind: canary\ncanary: {alias: challenger, start_percent: 150}\n",
            "canary.start_percent",
            "150",
        ),
        ("kind: canary\ncanary: {alias: champion}\n", "canary.alias", "cannot be 'champion'"),
        (
            "kind: canary\ncanary: {start_percent: 60, max_percent: 50}\n",
            "canary",
            "start_percent (60.0)",
        ),
        ("kind: canary\ncanary: {step_every_s: null}\n", "canary", "step_every_requests"),
        (
            "kind: shadow\nshadow: {alias: challenger, sample_percent: 101}\n",
            "shadow.sample_percent",
            "101",
        ),
        ("kind: shadow\n", "(top level)", "needs a 'shadow:' block"),
        ("kind: single\ncanary: {alias: challenger}\n", "(top level)", "'canary' block"),
        ("kind: ab\nab: {weights: {champion: 1}, stiky_key: id}\n", "ab.stiky_key", "Extra inputs"),
    ],
)
def test_bad_policy_yaml_names_the_field(
    tmp_path: Path, yaml_text: str, field: str, words: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SpecError) as err:
        load_traffic_policy(path)
    assert err.value.field == field
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_flags_build_policies_and_bad_flags_name_the_flag() -> None:
    ab = policy_from_flags(ab="champion=90,challenger=10", sticky="customer_id")
    assert ab == AB_90_10
    canary = policy_from_flags(
        canary="challenger", canary_options={"step_percent": 20, "step_every_requests": 50}
    )
    assert (
        canary.canary is not None
        and canary.canary.step_percent == 20
        and canary.canary.step_every_requests == 50
    )
    assert policy_from_flags(single=True).kind == "single"
    assert policy_from_flags(shadow="shadow", sample_percent=10).shadow == ShadowSpec(
        alias="shadow", sample_percent=10
    )
    cases = [
        (dict(ab="champion:90"), "--ab", "ALIAS=WEIGHT"),
        (dict(ab="champion=9,champion=1"), "--ab", "given twice"),
        (dict(ab="champion=90", canary="challenger"), "kind", "--ab, --canary"),
        (dict(), "kind", "got none"),
        (dict(single=True, sticky="id"), "--sticky", "only applies"),
        (dict(shadow="challenger", canary_options={"step_percent": 5}), "--canary", "step_percent"),
        (
            dict(canary="challenger", canary_options={"step_percent": 500}),
            "canary.step_percent",
            "500",
        ),
        (dict(ab="champion=90,nobody=10"), "ab.weights", "'nobody'"),
    ]
    for flags, field, words in cases:
        with pytest.raises(SpecError) as err:
            policy_from_flags(**flags)  # type: ignore[arg-type]
        assert err.value.field == field, flags
        assert words in str(err.value), (flags, str(err.value))


def test_shipped_defaults_are_valid_policies() -> None:
    folder = Path(__file__).resolve().parents[2] / "raycore" / "catalog" / "traffic"
    files = sorted(folder.glob("*.yaml"))
    assert files
    for path in files:
        load_traffic_policy(path)
    assert shipped_default(MODEL) is not None
    assert shipped_default("no_such_model") is None


# ---------------------------------------------------------------- canary


def test_canary_steps_up_on_healthy_windows_until_max() -> None:
    clock = Clock()
    spec = CanarySpec(
        start_percent=10,
        step_percent=20,
        step_every_s=None,
        step_every_requests=20,
        max_percent=50,
        min_requests_per_step=20,
        max_error_rate=0.05,
    )
    ctl = CanaryController(spec, clock=clock)
    events = []
    for i in range(200):
        ctl.record(alias="champion", ok=True, latency_ms=10.0)
        event = ctl.record(
            alias="challenger", ok=i % 50 != 7, latency_ms=11.0
        )  # 1 error per 50: within 5 %
        if event:
            events.append(event)
    assert [(e.action, e.from_percent, e.to_percent) for e in events] == [
        ("canary_step", 10, 30),
        ("canary_step", 30, 50),
    ]
    assert ctl.status == "complete" and ctl.percent == 50
    assert events[0].evidence["challenger_requests"] == 20


def test_canary_steps_by_time_only_with_a_full_window() -> None:
    clock = Clock()
    spec = CanarySpec(start_percent=5, step_percent=5, step_every_s=60, min_requests_per_step=10)
    ctl = CanaryController(spec, clock=clock)
    for _ in range(9):
        assert ctl.record(alias="challenger", ok=True, latency_ms=5) is None
    clock.now += 61
    assert (
        ctl.record(alias="challenger", ok=True, latency_ms=5) is not None
    )  # 10th request, 61 s: step
    assert ctl.percent == 10
    for _ in range(50):
        assert (
            ctl.record(alias="challenger", ok=True, latency_ms=5) is None
        )  # window full, time not yet
    clock.now += 60
    assert ctl.record(alias="challenger", ok=True, latency_ms=5).to_percent == 15  # type: ignore[union-attr]


def test_broken_challenger_rolls_back_before_a_full_window() -> None:
    spec = CanarySpec(
        start_percent=20, step_every_s=1, min_requests_per_step=100, max_error_rate=0.05
    )
    ctl = CanaryController(spec, clock=Clock())
    events = [ctl.record(alias="challenger", ok=False, latency_ms=3) for _ in range(6)]
    rollback = [e for e in events if e is not None]
    assert len(rollback) == 1 and events[5] is rollback[0]  # 6 errors > 5 % of 100: certain breach
    assert rollback[0].action == "canary_rollback" and rollback[0].to_percent == 0
    assert "6 errors in its last 6 requests" in rollback[0].reason
    assert ctl.percent == 0 and ctl.status == "rolled_back"
    assert ctl.record(alias="challenger", ok=False, latency_ms=3) is None  # no second rollback


def test_slow_challenger_rolls_back_on_p99() -> None:
    spec = CanarySpec(
        start_percent=20, step_every_s=600, min_requests_per_step=50, max_p99_ms_ratio=1.5
    )
    ctl = CanaryController(spec, clock=Clock())
    for _ in range(100):
        ctl.record(alias="champion", ok=True, latency_ms=10.0)
    events = [ctl.record(alias="challenger", ok=True, latency_ms=40.0) for _ in range(50)]
    assert events[-1] is not None and events[-1].action == "canary_rollback"
    assert "p99 40.0 ms exceeds 1.5 x champion p99 10.0 ms" in events[-1].reason
    absolute = CanaryController(
        spec.model_copy(update={"max_p99_ms": 30.0, "max_p99_ms_ratio": None}), clock=Clock()
    )
    events = [absolute.record(alias="challenger", ok=True, latency_ms=31.0) for _ in range(50)]
    assert events[-1] is not None and "max_p99_ms 30" in events[-1].reason


# ---------------------------------------------------------------- state + replica wiring


def test_policy_set_is_versioned_audited_and_checked_against_aliases(
    state: TrafficStateStore,
) -> None:
    assert state.version(MODEL) == 0
    assert state.active(MODEL).source == "shipped default"
    assert state.active("other_model").policy.kind == "single"
    with pytest.raises(RegistryError, match="needs a reason"):
        state.set_policy(model=MODEL, policy=AB_90_10, reason=" ")
    with pytest.raises(SpecError, match="no version with alias 'challenger'") as err:
        state.set_policy(model=MODEL, policy=AB_90_10, reason="try", existing_aliases={"champion"})
    assert "it has: champion" in str(err.value)
    assert state.version(MODEL) == 0 and state.events(MODEL) == []  # nothing changed

    first = state.set_policy(
        model=MODEL,
        policy=AB_90_10,
        reason="10 % to v4",
        actor="user:test",
        existing_aliases={"champion", "challenger"},
    )
    assert first.version == 1
    second = state.set_policy(
        model=MODEL, policy=TrafficPolicy(), reason="back to single", actor="user:test"
    )
    assert second.version == 2 and state.version(MODEL) == 2
    assert state.active(MODEL).reason == "back to single"
    events = state.events(MODEL)
    assert [e.action for e in events] == ["traffic_set", "traffic_set"]
    assert (
        events[0].evidence["before"]["kind"] == "single"
        and events[0].evidence["after"]["kind"] == "ab"
    )
    assert events[1].evidence["before"]["ab"]["weights"] == {"champion": 90.0, "challenger": 10.0}
    assert events[1].actor == "user:test" and events[1].previous == "1" and events[1].version == "2"
    assert [p.name for p in state.folder.iterdir()] == [f"{MODEL}.json"]  # no temp files left


def test_corrupt_state_file_is_a_clear_error(state: TrafficStateStore) -> None:
    state.folder.mkdir(parents=True)
    (state.folder / f"{MODEL}.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        state.active(MODEL)


def test_replica_runs_a_canary_writes_steps_and_rollback_to_the_audit_log(
    state: TrafficStateStore,
) -> None:
    clock = Clock()
    policy = TrafficPolicy(
        kind="canary",
        canary=CanarySpec(
            start_percent=20,
            step_percent=20,
            step_every_s=None,
            step_every_requests=10,
            min_requests_per_step=10,
            max_error_rate=0.2,
            max_percent=80,
        ),
    )
    state.set_policy(model=MODEL, policy=policy, reason="canary v4")
    replica = ModelTraffic(model=MODEL, state=state, rng=random.Random(0), clock=clock)
    other = ModelTraffic(model=MODEL, state=state, rng=random.Random(1), clock=clock)
    healthy = True

    async def model(alias: str) -> dict[str, Any]:
        if alias == "challenger" and not healthy:
            raise RuntimeError("challenger is broken")
        return {"predictions": [1.0 if alias == "champion" else 2.0]}

    async def requests(n: int) -> list[str]:
        seen = []
        for _ in range(n):
            replica.refresh()
            decision = replica.decide(request_key=None)
            try:
                await replica.call(decision, call=model)
                seen.append(decision.primary_alias)
            except RuntimeError:
                seen.append("error")
        return seen

    asyncio.run(requests(400))
    live = state.canary(MODEL)
    assert live is not None and live.percent == 80 and live.status == "complete"
    steps = state.events(MODEL)
    assert [e.action for e in steps] == ["traffic_set"] + ["canary_step"] * 3
    assert (
        steps[1].previous == "20%"
        and steps[1].version == "40%"
        and steps[1].actor == "serve:canary"
    )

    clock.now += 2  # the other replica polls and adopts the live share
    other.refresh()
    assert other.canary is not None and other.canary.percent == live.percent

    healthy = False
    after = asyncio.run(requests(200))
    live = state.canary(MODEL)
    assert live is not None and live.status == "rolled_back" and live.percent == 0
    last = state.events(MODEL)[-1]
    assert last.action == "canary_rollback" and "error rate" in last.reason
    assert last.evidence["challenger_errors"] >= 1
    tail = after[after.index("error") :]
    assert tail.count("error") <= 3  # 3 errors > 20 % of a 10-request window
    assert set(after[-100:]) == {"champion"}  # rolled back: champion only, no more errors

    clock.now += 2
    other.refresh()
    assert other.canary is not None and other.canary.status == "rolled_back"
    assert {other.decide(request_key=None).primary_alias for _ in range(50)} == {"champion"}

    # A new policy resets the canary; a stale event for the old policy version is not written.
    state.set_policy(model=MODEL, policy=policy, reason="canary v5")
    assert state.canary(MODEL) is None
    assert (
        state.record_canary(
            model=MODEL,
            policy_version=1,
            action="canary_step",
            alias="challenger",
            from_percent=20,
            to_percent=40,
            status="stepping",
            steps=1,
            reason="x",
            evidence={},
        )
        is None
    )


# ---------------------------------------------------------------- shadow


def test_shadow_never_changes_the_answer_and_logs_comparisons(tmp_path: Path) -> None:
    log = ShadowLog(home=tmp_path, model=MODEL)

    async def champion() -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return {"predictions": [1.0, 2.0]}

    async def broken() -> dict[str, Any]:
        raise ValueError("shadow blew up")

    async def slow_other() -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"predictions": [1.0, 2.5]}

    async def failing_primary() -> dict[str, Any]:
        raise KeyError("primary down")

    async def scenario() -> None:
        tasks: set[asyncio.Task[Any]] = set()
        for _ in range(5):
            answer = await run_shadow(
                primary=champion(),
                shadow=broken,
                log_to=log,
                shadow_alias="challenger",
                tasks=tasks,
            )
            assert answer == {"predictions": [1.0, 2.0]}
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await run_shadow(
            primary=champion(), shadow=slow_other, log_to=log, shadow_alias="shadow", tasks=tasks
        )
        assert answer == {"predictions": [1.0, 2.0]}
        assert loop.time() - started < 0.15  # the caller does not wait for the shadow
        with pytest.raises(KeyError):
            await run_shadow(primary=failing_primary(), shadow=slow_other, log_to=log, tasks=tasks)
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    records = log.records()
    assert len(records) == 7
    assert sum(r["shadow_error"] == "ValueError: shadow blew up" for r in records) == 5
    diffs = [r for r in records if r["max_abs_diff"] is not None]
    assert (
        len(diffs) == 1
        and diffs[0]["max_abs_diff"] == pytest.approx(0.5)
        and diffs[0]["agree"] is False
    )
    assert sum(1 for r in records if r["primary_error"]) == 1
    stats = shadow_stats(home=tmp_path, model=MODEL)
    assert (stats.records, stats.shadow_errors, stats.primary_errors, stats.compared) == (
        7,
        5,
        1,
        1,
    )
    assert stats.agree_rate == 0.0 and stats.max_abs_diff == pytest.approx(0.5)


# ---------------------------------------------------------------- API keys


def test_keys_are_stored_hashed_and_scoped(tmp_path: Path) -> None:
    infer_key, infer_rec = create_key(home=tmp_path, scope="infer", label="app")
    admin_key, _ = create_key(home=tmp_path, scope="admin")
    stored = (tmp_path / "api_keys.json").read_text()
    assert infer_key not in stored and admin_key not in stored and infer_rec.sha256 in stored
    assert oct((tmp_path / "api_keys.json").stat().st_mode & 0o777) == "0o600"
    assert [r.scope for r in list_keys(home=tmp_path)] == ["infer", "admin"]

    keys = ApiKeys.load(home=tmp_path, environ={})
    assert keys.enabled
    keys.check({"Authorization": f"Bearer {infer_key}"}, scope="infer")
    keys.check({"X-API-Key": admin_key}, scope="infer")  # admin works for inference
    keys.check({"authorization": f"bearer {admin_key}"}, scope="admin")
    with pytest.raises(AuthError) as err:
        keys.check({"x-api-key": infer_key}, scope="admin")
    assert err.value.status_code == 403 and "admin" in err.value.message
    with pytest.raises(AuthError) as err:
        keys.check({}, scope="infer")
    assert err.value.status_code == 401 and err.value.headers() == {"WWW-Authenticate": "Bearer"}
    with pytest.raises(AuthError, match="not valid") as err:
        keys.check({"x-api-key": infer_key + "x"}, scope="infer")
    assert err.value.status_code == 401
    with pytest.raises(AuthError):
        keys.check({"Authorization": f"Basic {infer_key}"}, scope="infer")

    import pickle

    again = pickle.loads(pickle.dumps(AuthError("no", status_code=403, hint="h")))
    assert again.status_code == 403 and again.hint == "h"


def test_environment_keys_and_open_default(tmp_path: Path) -> None:
    ApiKeys.load(home=tmp_path, environ={}).check({}, scope="admin")  # nothing configured: open
    keys = ApiKeys.load(
        home=tmp_path, environ={"FOUNDRY_API_KEYS": "a1, a2", "FOUNDRY_ADMIN_KEYS": "root"}
    )
    keys.check({"x-api-key": "a2"}, scope="infer")
    keys.check({"x-api-key": "root"}, scope="admin")
    with pytest.raises(AuthError):
        keys.check({"x-api-key": "a1"}, scope="admin")
    check_bind(host="127.0.0.1", keys=ApiKeys())
    check_bind(host="0.0.0.0", keys=keys)
    with pytest.raises(ConfigurationError, match="without API keys"):
        check_bind(host="0.0.0.0", keys=ApiKeys())
    (tmp_path / "api_keys.json").write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="not an API key file"):
        ApiKeys.load(home=tmp_path, environ={})


def test_policy_round_trips_through_json() -> None:
    for policy in (
        AB_90_10,
        policy_from_flags(canary="shadow"),
        policy_from_flags(shadow="challenger"),
    ):
        assert parse_spec(json.loads(policy.model_dump_json()), TrafficPolicy, path="x") == policy


def test_read_only_view_reads_but_refuses_writes(state: TrafficStateStore) -> None:
    state.set_policy(model=MODEL, policy=AB_90_10, reason="10 % to v4")
    view = TrafficStateStore.reader(home=state.folder.parent)
    assert view.active(MODEL).policy == AB_90_10 and view.events(MODEL)[-1].reason == "10 % to v4"
    with pytest.raises(RegistryError, match="read-only"):
        view.set_policy(model=MODEL, policy=TrafficPolicy(), reason="x")
    assert view.version(MODEL) == 1
