"""The serving topology on a real Serve app on loopback: hot + multiplexed models, hot reload under
load, overload answers, the prediction log, and a replica killed under load.

mdl-001 is fitted natively twice (v1, v2) on a real MLflow (SQLite) in a temp
FOUNDRY_HOME. ``sales_forecasting`` is served hot (in the ingress); the same
v1 registered as ``sales_tail`` is served from the multiplexed deployment with
a deliberately tiny queue (one request predicted at a time, two waiting), so
overload is easy to reach. All load is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import lightgbm as lgb
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.registry.store import ModelStore
from raycore.serving.prediction_log import read_prediction_log
from raycore.settings import FoundrySettings
from raycore.specs.serving import ServingSpec
from raycore.training.pipeline import (
    FittedModel,
    evaluate_bundle,
    log_candidate,
    make_bundle,
    materialize_tables,
    prepare_training,
    write_training_table,
)
from raycore.training.ray_train_job import LABEL_COLUMN
from tests.conftest import free_port

pytestmark = pytest.mark.integration

SPEC = load_catalog().get("mdl-001")
HOT = SPEC.name
TAIL = "sales_tail"
APP = "foundry-topology"


@pytest.fixture(scope="module")
def foundry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FoundrySettings]:
    """v1 and v2 of mdl-001, also registered as ``sales_tail`` (champion at v1 for both), and the online features."""
    home = tmp_path_factory.mktemp("serving-topology")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        settings = FoundrySettings(
            home=home, serve_port=free_port(), mlflow_tracking_uri=uri, online_store_uri=None
        )
        prepared = prepare_training(SPEC, settings=settings)
        path = settings.home / "train.parquet"
        write_training_table(prepared, path)
        table = pd.read_parquet(path)
        label = table.pop(LABEL_COLUMN)
        store = ModelStore(settings)
        for version, rounds in (("1", 40), ("2", 60)):
            params = {
                "objective": "regression",
                "num_leaves": 15,
                "learning_rate": 0.1,
                "seed": 7,
                "verbose": -1,
            }
            booster = lgb.train(params, lgb.Dataset(table, label=label), num_boost_round=rounds)
            bundle = make_bundle(prepared, LightGBMEstimator(booster, task=SPEC.task), [])
            fitted = FittedModel(bundle, params, rounds, 0.0, f"topology-v{version}")
            logged = log_candidate(store, prepared, fitted, evaluate_bundle(prepared, bundle))
            assert (
                store.register(name=HOT, model_uri=logged.model_uri, run_id=logged.run_id, tags={})
                == version
            )
            assert (
                store.register(name=TAIL, model_uri=logged.model_uri, run_id=logged.run_id, tags={})
                == version
            )
            if version == "1":
                store.set_alias(name=TAIL, alias="champion", version="1", reason="test")
                store.set_alias(name=HOT, alias="champion", version="1", reason="test")
        online = settings.online_store()
        try:
            materialize_tables(prepared.view, prepared.built, store=online)
        finally:
            online.close()
        yield settings


@pytest.fixture(scope="module")
def endpoint(ray_session: None, foundry: FoundrySettings) -> Iterator[str]:
    from ray import serve

    from raycore.serving.app import AppArgs, build_app
    from raycore.serving.runner import wait_ready

    serve.shutdown()
    serve.start(http_options={"host": "127.0.0.1", "port": foundry.serve_port})
    args = AppArgs(
        models=[HOT, TAIL],
        tracking_uri=foundry.tracking_uri,
        home=str(foundry.home),
        serving={
            HOT: ServingSpec(multiplexed=False),
            TAIL: ServingSpec(max_batch_size=1, batch_wait_timeout_s=0, max_queued_requests=2),
        },
        replica_cpus=0.25,
        reload_poll_s=0.5,
        prediction_log_flush_s=0.5,
    )
    serve.run(build_app(args), name=APP, route_prefix="/")
    wait_ready(foundry.endpoint)
    yield foundry.endpoint
    serve.delete(APP)
    serve.shutdown()


@pytest.fixture(scope="module")
def row(foundry: FoundrySettings) -> dict[str, Any]:
    store = foundry.online_store()
    try:
        found = store.read("store_weekly_stats_v1", [(3,)])[0]
    finally:
        store.close()
    assert found is not None
    week = pd.Timestamp(found["origin_week"]) + pd.Timedelta(weeks=2)
    return {"store_id": 3, "week_start": week.date().isoformat(), "on_promo": 1}


async def _load(
    url: str, body: dict[str, Any], *, clients: int, seconds: float, retry_503: bool = False
) -> list[tuple[int, str | None]]:
    """``clients`` concurrent loops posting ``body`` for ``seconds``; (status, version) of each final answer."""
    seen: list[tuple[int, str | None]] = []
    deadline = time.monotonic() + seconds

    async def loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            for _ in range(20 if retry_503 else 1):
                try:
                    r = await client.post(url, json=body)
                    status, version = r.status_code, r.headers.get("x-model-version")
                except httpx.HTTPError:
                    status, version = 599, None
                if not (retry_503 and status in (503, 599)):
                    break
                await asyncio.sleep(0.05)
            seen.append((status, version))

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(loop(client) for _ in range(clients)))
    return seen


def test_hot_and_multiplexed_models_answer_and_are_listed(
    endpoint: str, row: dict[str, Any]
) -> None:
    for name in (HOT, TAIL):
        r = httpx.post(f"{endpoint}/v1/models/{name}/predict", json={"inputs": row}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["x-model-version"] == "1" and r.json()["model_version"] == "1"
        meta = httpx.get(f"{endpoint}/v2/models/{name}", timeout=30)
        assert meta.status_code == 200 and meta.json()["versions"] == ["1"]
    hot = httpx.post(f"{endpoint}/v1/models/{HOT}/predict", json={"inputs": row}, timeout=30).json()
    tail = httpx.post(
        f"{endpoint}/v1/models/{TAIL}/predict", json={"inputs": row}, timeout=30
    ).json()
    assert hot["predictions"] == pytest.approx(tail["predictions"], rel=1e-12)  # same v1, two hosts
    listed = {
        m["name"]: m["hosting"]
        for m in httpx.get(f"{endpoint}/v1/models", timeout=30).json()["models"]
    }
    assert listed == {HOT: "dedicated", TAIL: "multiplexed"}
    missing = httpx.post(f"{endpoint}/v1/models/nope/predict", json={"inputs": row}, timeout=30)
    assert missing.status_code == 404 and HOT in missing.json()["hint"]


def test_overload_is_503_with_retry_after(endpoint: str, row: dict[str, Any]) -> None:
    body = {"inputs": [row] * 2000}
    seen = asyncio.run(_load(f"{endpoint}/v1/models/{TAIL}/predict", body, clients=16, seconds=1.5))
    statuses = {s for s, _ in seen}
    assert 503 in statuses and 200 in statuses and statuses <= {200, 503}, statuses
    r = None
    for _ in range(3):  # one refused answer, to read its headers

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(
                    *(
                        client.post(f"{endpoint}/v1/models/{TAIL}/predict", json=body)
                        for _ in range(16)
                    )
                )

        refused = [x for x in asyncio.run(burst()) if x.status_code == 503]
        if refused:
            r = refused[0]
            break
    assert r is not None
    assert (
        r.headers["retry-after"] == "1"
        and r.headers["x-model-version"] == "1"
        and "max_queued_requests" in r.text
    )


def test_champion_moves_under_load_with_no_failed_request(
    endpoint: str, foundry: FoundrySettings, row: dict[str, Any]
) -> None:
    store = ModelStore(foundry)
    url = f"{endpoint}/v1/models/{HOT}/predict"

    async def run() -> list[tuple[int, str | None]]:
        load = asyncio.create_task(_load(url, {"inputs": row}, clients=8, seconds=6))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(
            store.set_alias, name=HOT, alias="champion", version="2", reason="test: move"
        )
        return await load

    seen = asyncio.run(run())
    assert len(seen) > 50 and all(status == 200 for status, _ in seen), {s for s, _ in seen}
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2", versions[-5:]
    # the admin route forces a check now (the tail's alias moves, no poll wait)
    store.set_alias(name=TAIL, alias="champion", version="2", reason="test: move the tail")
    reload = httpx.post(f"{endpoint}/admin/models/{TAIL}/reload", timeout=60)
    assert reload.status_code == 200 and reload.json()["version"] == "2", reload.text


def test_prediction_log_has_the_served_rows(endpoint: str, foundry: FoundrySettings) -> None:
    deadline = time.monotonic() + 15
    logged = read_prediction_log(home=foundry.home, model=HOT)
    while time.monotonic() < deadline and set(logged.get("version", [])) != {"1", "2"}:
        time.sleep(0.5)
        logged = read_prediction_log(home=foundry.home, model=HOT)
    assert set(logged["version"]) == {"1", "2"}
    assert {
        "request_id",
        "ts",
        "model",
        "alias",
        "route",
        "latency_ms",
        "in_store_id",
        "in_on_promo",
        "out_prediction",
    } <= set(logged.columns)
    assert (logged["in_store_id"] == 3).all() and logged["out_prediction"].notna().all()
    assert str(logged["ts"].dt.tz) == "UTC" and (logged["alias"] == "champion").all()
    later = read_prediction_log(home=foundry.home, model=HOT, since=logged["ts"].iloc[-1])
    assert 1 <= len(later) < len(logged)


def _tail_replicas() -> list[str]:
    import ray

    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "MultiplexedModels" in a["name"]
    )


def test_a_killed_replica_is_replaced_and_retrying_clients_do_not_fail(
    endpoint: str, row: dict[str, Any]
) -> None:
    import ray

    url = f"{endpoint}/v1/models/{TAIL}/predict"
    seen: list[int] = []

    async def client(client: httpx.AsyncClient, stop: float) -> None:
        while time.monotonic() < stop:
            status = 0
            for _ in range(
                60
            ):  # retry 503 (overload, replica gone) honouring Retry-After, capped at 0.5 s
                try:
                    r = await client.post(url, json={"inputs": row})
                    status = r.status_code
                except httpx.HTTPError:
                    status = 599
                if status not in (503, 599):
                    break
                await asyncio.sleep(
                    0.5 if status == 599 else min(float(r.headers.get("retry-after", 1)), 0.5)
                )
            seen.append(status)

    async def run() -> None:
        stop = time.monotonic() + 9
        async with httpx.AsyncClient(timeout=30) as http:
            load = asyncio.gather(*(client(http, stop) for _ in range(3)))
            await asyncio.sleep(2)
            (victim,) = before
            await asyncio.to_thread(
                ray.kill, ray.get_actor(victim, namespace="serve"), no_restart=True
            )
            await load

    before = _tail_replicas()
    assert len(before) == 1, before
    asyncio.run(run())
    after = _tail_replicas()
    assert after and after != before, (before, after)
    failed = sum(1 for s in seen if s != 200)
    # A loaded 2-core box answers a few dozen requests in the 9 s; at least 10 must span the kill.
    assert len(seen) >= 10 and failed / len(seen) < 0.01, (failed, len(seen), sorted(set(seen)))
    r = httpx.post(url, json={"inputs": row}, timeout=60)
    assert r.status_code == 200 and r.headers["x-model-version"] == "2"


def test_request_metrics_reach_prometheus(endpoint: str) -> None:
    import ray

    port = ray._private.worker.global_worker.node.metrics_export_port
    want = [
        "ray_foundry_requests_total",
        "ray_foundry_request_latency_ms",
        "ray_foundry_batch_size",
    ]
    text = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        if all(name in text for name in want):
            break
        time.sleep(1)
    lines = [line for line in text.splitlines() if line.startswith("ray_foundry_requests_total{")]
    assert lines, [line for line in text.splitlines() if "foundry" in line][:5]
    ok = [
        line
        for line in lines
        if f'model="{HOT}"' in line and 'route="simple"' in line and 'status="200"' in line
    ]
    assert ok and any('version="2"' in line for line in ok), ok
    assert any('status="503"' in line for line in lines)
    assert all(name in text for name in want)
