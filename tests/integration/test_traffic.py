"""Traffic policies on a real Ray Serve app: shadow, canary rollback, CLI set/show, API keys.

The app is small on purpose: three real model deployments (a constant
answer per alias; the challenger raises, as a broken model version would)
behind an ingress deployment that consults the traffic policy exactly as a
serving replica does (``ModelTraffic``: refresh, decide, call, record). The
policy lives in a real FOUNDRY_HOME with a real MLflow registry, so
``foundry traffic set`` changes what the running app does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from raycore.cli.main import app as cli
from raycore.settings import FoundrySettings
from tests.conftest import free_port

pytestmark = pytest.mark.integration

MODEL = "sales_forecasting"  # mdl-001's registered name
INFER_KEY = "test-infer-key"


def _register(settings: FoundrySettings, *, aliases: dict[str, int]) -> None:
    """Register versions of MODEL (a small real artifact each) and point aliases at them."""
    import mlflow

    from raycore.registry.store import ModelStore

    store = ModelStore(settings)
    versions = []
    for i in range(max(aliases.values())):
        with mlflow.start_run(experiment_id=store.experiment_id(MODEL)) as run:
            mlflow.log_dict({"version": i + 1}, "model/info.json")
        versions.append(
            store.register(
                name=MODEL,
                model_uri=f"runs:/{run.info.run_id}/model",
                run_id=run.info.run_id,
                tags={},
            )
        )
    for alias, version in aliases.items():
        store.set_alias(
            name=MODEL, alias=alias, version=str(version), reason="test setup", actor="test"
        )


def _deployments(home: str, port: int) -> str:
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Constant:
        def __init__(self, value: float | None) -> None:
            self.value = value

        async def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
            if self.value is None:
                raise RuntimeError("this model version is broken")
            return {"predictions": [self.value] * len(rows)}

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Ingress:
        def __init__(self, home: str, champion: Any, challenger: Any, shadow: Any) -> None:
            from raycore.registry.store import ModelStore
            from raycore.registry.traffic_state import TrafficStateStore
            from raycore.serving.auth import ApiKeys
            from raycore.serving.traffic import ModelTraffic, ShadowLog

            settings = FoundrySettings(
                home=Path(home), mlflow_tracking_uri=f"sqlite:///{home}/mlflow.db"
            )
            state = TrafficStateStore.open(ModelStore(settings))
            self.handles = {"champion": champion, "challenger": challenger, "shadow": shadow}
            self.keys = ApiKeys.from_values(infer=[INFER_KEY])
            self.traffic = ModelTraffic(
                model=MODEL,
                state=state,
                shadow_log=ShadowLog(home=Path(home), model=MODEL),
                poll_s=0.1,
            )

        async def __call__(self, request: Request) -> JSONResponse:
            from raycore.serving.auth import AuthError

            try:
                self.keys.check(request.headers, scope="infer")
            except AuthError as exc:
                return JSONResponse(
                    {"error": exc.message}, status_code=exc.status_code, headers=exc.headers()
                )
            rows = (await request.json())["inputs"]
            self.traffic.refresh()
            key = self.traffic.request_key(headers=request.headers, row=rows[0])
            decision = self.traffic.decide(request_key=key)
            meta = {"alias": decision.primary_alias, "policy_version": self.traffic.version}
            try:
                answer = await self.traffic.call(
                    decision, call=lambda alias: self.handles[alias].remote(rows)
                )
            except Exception as exc:
                return JSONResponse({"error": str(exc)[:200], **meta}, status_code=500)
            return JSONResponse({**answer, **meta})

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = Ingress.bind(
        home,
        Constant.bind(1.0),
        Constant.options(name="Broken").bind(None),
        Constant.options(name="Other").bind(2.0),
    )
    serve.run(app, name="traffic", route_prefix="/traffic")
    return f"http://127.0.0.1:{port}/traffic"


@pytest.fixture(scope="module")
def env(
    ray_session: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FoundrySettings, str]]:
    from ray import serve

    home = tmp_path_factory.mktemp("traffic-home")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOUNDRY_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        settings = FoundrySettings(home=home, mlflow_tracking_uri=uri)
        # champion and shadow exist in the registry; challenger does not (the CLI must refuse it).
        _register(settings, aliases={"champion": 1, "shadow": 1})
        serve.shutdown()  # a Serve instance left by another module keeps its own port
        url = _deployments(str(home), free_port())
        yield settings, url
        serve.delete("traffic")
        serve.shutdown()


def _set(settings: FoundrySettings, policy: Any, reason: str) -> int:
    """Write a policy as an operator would (audited), bypassing the registry alias check."""
    from raycore.registry.store import ModelStore
    from raycore.registry.traffic_state import TrafficStateStore

    return (
        TrafficStateStore.open(ModelStore(settings))
        .set_policy(model=MODEL, policy=policy, reason=reason)
        .version
    )


def _post(client: httpx.Client, url: str, *, customer: str = "c0") -> httpx.Response:
    return client.post(
        url, json={"inputs": [{"customer_id": customer, "x": 1}]}, headers={"x-api-key": INFER_KEY}
    )


def _wait_for_version(client: httpx.Client, url: str, version: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = _post(client, url)
        if r.json().get("policy_version") == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"the app never picked up policy version {version}")


def _wait_for_records(
    settings: FoundrySettings, *, shadow_alias: str, n: int
) -> list[dict[str, Any]]:
    from raycore.serving.traffic import ShadowLog

    log = ShadowLog(home=settings.home, model=MODEL)
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [r for r in log.records() if r["shadow_alias"] == shadow_alias]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {n} shadow records of {shadow_alias}, found {len(found)}")


def test_shadow_never_changes_the_callers_answer(env: tuple[FoundrySettings, str]) -> None:
    from raycore.serving.traffic import shadow_stats
    from raycore.specs.traffic import ShadowSpec, TrafficPolicy

    settings, url = env
    with httpx.Client(timeout=30) as client:
        assert client.post(url, json={"inputs": [{"x": 1}]}).status_code == 401
        assert (
            client.post(url, json={"inputs": [{"x": 1}]}, headers={"x-api-key": "nope"}).status_code
            == 401
        )

        version = _set(
            settings,
            TrafficPolicy(kind="shadow", shadow=ShadowSpec(alias="challenger")),
            "shadow v-broken",
        )
        _wait_for_version(client, url, version)
        answers = [_post(client, url, customer=f"c{i}") for i in range(20)]
        assert {r.status_code for r in answers} == {200}
        assert all(
            r.json()["predictions"] == [1.0] and r.json()["alias"] == "champion" for r in answers
        )
        broken = _wait_for_records(settings, shadow_alias="challenger", n=20)
        assert all("this model version is broken" in (r["shadow_error"] or "") for r in broken), (
            broken[:2]
        )
        assert all(r["primary"]["predictions"] == [1.0] for r in broken)

        version = _set(
            settings, TrafficPolicy(kind="shadow", shadow=ShadowSpec(alias="shadow")), "shadow v2"
        )
        _wait_for_version(client, url, version)
        answers = [_post(client, url, customer=f"c{i}") for i in range(10)]
        assert all(r.status_code == 200 and r.json()["predictions"] == [1.0] for r in answers)
        differing = _wait_for_records(settings, shadow_alias="shadow", n=10)
        assert all(
            r["shadow"]["predictions"] == [2.0] and r["max_abs_diff"] == 1.0 for r in differing
        )
    stats = shadow_stats(home=settings.home, model=MODEL)
    assert stats.shadow_errors >= 20 and stats.compared >= 10 and stats.agree_rate == 0.0


def test_canary_with_a_broken_challenger_rolls_back_by_itself(
    env: tuple[FoundrySettings, str],
) -> None:
    from raycore.registry.store import ModelStore
    from raycore.registry.traffic_state import TrafficStateStore
    from raycore.specs.traffic import CanarySpec, TrafficPolicy

    settings, url = env
    canary = CanarySpec(
        alias="challenger",
        start_percent=30,
        step_percent=20,
        step_every_s=None,
        step_every_requests=10,
        min_requests_per_step=10,
        max_error_rate=0.2,
    )
    with httpx.Client(timeout=30) as client:
        version = _set(
            settings, TrafficPolicy(kind="canary", canary=canary), "canary the broken version"
        )
        _wait_for_version(client, url, version)
        statuses = [_post(client, url, customer=f"c{i}").status_code for i in range(120)]
    assert 500 in statuses  # the canary did get traffic
    first_error = statuses.index(500)
    assert (
        statuses[first_error:].count(500) <= 3
    )  # 3 errors in a 10-request window > 20 %: rolled back
    assert set(statuses[-60:]) == {200}
    state = TrafficStateStore.open(ModelStore(settings))
    live = state.canary(MODEL)
    assert live is not None and live.status == "rolled_back" and live.percent == 0
    last = state.events(MODEL)[-1]
    assert last.action == "canary_rollback" and last.actor == "serve:canary"
    assert (
        last.previous == "30%" and last.version == "0%" and last.evidence["challenger_errors"] == 3
    )


def test_cli_set_show_round_trip_changes_the_running_app(env: tuple[FoundrySettings, str]) -> None:
    settings, url = env
    from raycore.registry.store import ModelStore
    from raycore.registry.traffic_state import TrafficStateStore

    state = TrafficStateStore.open(ModelStore(settings))
    unchanged, last_event = state.version(MODEL), state.audit.history(MODEL)[-1].id
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["traffic", "set", "mdl-001", "--canary", "challenger", "--reason", "try"]
    )
    assert refused.exit_code != 0
    assert "no version with alias 'challenger'" in refused.output
    missing_reason = runner.invoke(cli, ["traffic", "set", "mdl-001", "--single"])
    assert missing_reason.exit_code != 0
    assert state.version(MODEL) == unchanged
    assert state.audit.history(MODEL)[-1].id == last_event  # the refused set left no trace

    done = runner.invoke(
        cli,
        [
            "traffic",
            "set",
            MODEL,
            "--ab",
            "champion=50,shadow=50",
            "--sticky",
            "customer_id",
            "--reason",
            "half on v2",
        ],
    )
    assert done.exit_code == 0, done.output
    assert state.version(MODEL) == unchanged + 1
    shown = runner.invoke(cli, ["traffic", "show", "mdl-001", "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"sticky_key": "customer_id"' in shown.output and '"half on v2"' in shown.output
    table = runner.invoke(cli, ["traffic", "show", "mdl-001"])
    assert "ab champion=50, shadow=50 sticky by 'customer_id'" in table.output

    with httpx.Client(timeout=30) as client:
        _wait_for_version(client, url, unchanged + 1)
        first = {
            c: _post(client, url, customer=c).json()["predictions"][0] for c in map(str, range(40))
        }
        again = {
            c: _post(client, url, customer=c).json()["predictions"][0] for c in map(str, range(40))
        }
    assert first == again  # sticky by customer_id through the real app
    assert set(first.values()) == {1.0, 2.0}
