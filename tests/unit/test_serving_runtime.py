"""The serving runtime without Ray: specs and topology, batching, the endpoint, hot reload, overload.

A real (tiny) LightGBM bundle over the request-only ``delivery_leg_eta`` view
answers every request; ``VersionedSource`` is a real ``ModelSource`` (our
protocol) holding two versions of it, whose alias a test moves.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from raycore.errors import InputValidationError
from raycore.features import get_feature_view
from raycore.models.lightgbm_model import LightGBMEstimator
from raycore.registry.bundle import BundleMetadata, ModelBundle
from raycore.serving.batching import Overloaded, RowBatcher
from raycore.serving.endpoint import ModelEndpoint
from raycore.serving.hot_reload import ReloadingModel
from raycore.serving.predictor import Predictor, RowRequest
from raycore.serving.schemas import RowSchema
from raycore.serving.topology import AppArgs, plan_topology
from raycore.specs.serving import ServingSpec

VIEW = get_feature_view("delivery_leg_eta")
NAME = "leg_eta"
ROW = {
    "depot_id": 3,
    "leg_start_at": "2026-03-02",
    "leg_distance_km": 12.5,
    "vehicle_type": "van",
    "weather": "dry",
}


def make_bundle(*, seed: int = 0, name: str = NAME) -> ModelBundle:
    """A real LightGBM bundle on the view's features (fitted on random rows: a few ms)."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        rng.normal(size=(400, len(VIEW.feature_names))), columns=list(VIEW.feature_names)
    )
    label = features.iloc[:, -2] * 3 + rng.normal(size=400) + seed * 100
    params = {"objective": "regression", "num_leaves": 7, "verbose": -1, "seed": seed}
    booster = lgb.train(params, lgb.Dataset(features, label=label), num_boost_round=5)
    metadata = BundleMetadata(
        model_id="mdl-999", model_name=name, task="regression", label="minutes", family="lightgbm",
        feature_view=VIEW.name, feature_view_version=VIEW.version, feature_view_digest=VIEW.digest(),
        input_schema=VIEW.input_schema(),
    )  # fmt: skip
    return ModelBundle(estimator=LightGBMEstimator(booster), view=VIEW, metadata=metadata)


class VersionedSource:
    """A ModelSource with several versions of one model and a movable alias."""

    def __init__(self, versions: dict[str, ModelBundle], alias_at: str) -> None:
        self.versions = versions
        self.alias_at: str | None = alias_at
        self.loads: list[str] = []

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.alias_at

    def load(self, name: str, version: str) -> Predictor:
        self.loads.append(version)
        return Predictor(bundle=self.versions[version], version=version)


@pytest.fixture(scope="module")
def bundles() -> dict[str, ModelBundle]:
    return {"1": make_bundle(seed=0), "2": make_bundle(seed=1)}


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    schema = RowSchema.from_input_schema(VIEW.input_schema())
    return schema.validate_rows(rows, locate=lambda i, f: ["rows", i, f], where=["rows"])


# ---------------------------------------------------------------- specs and topology


def test_serving_spec_messages_show_the_bad_values() -> None:
    with pytest.raises(ValidationError, match=r"max_replicas \(1\) must be >= min_replicas \(2\)"):
        ServingSpec(min_replicas=2, max_replicas=1)
    with pytest.raises(
        ValidationError, match=r"max_batch_size \(128\) must be <= max_ongoing_requests \(64\)"
    ):
        ServingSpec(max_batch_size=128)
    with pytest.raises(ValidationError, match=r"target_ongoing_requests \(100\)"):
        ServingSpec(target_ongoing_requests=100, max_ongoing_requests=64)
    with pytest.raises(ValidationError, match="max_replica"):
        ServingSpec.model_validate({"max_replica": 3})


def test_defaults_fit_the_whole_catalog_on_two_cores() -> None:
    from raycore.catalog import load_catalog

    catalog = load_catalog()
    args = AppArgs(models=[s.name for s in catalog], tracking_uri="sqlite:///x.db")
    plan = plan_topology(args)
    assert len(plan.specs) == len(catalog) >= 30
    assert plan.local == ["sales_forecasting"] and not plan.dedicated  # the production model is hot
    # CPUs reserved at the autoscaling floor: ingress + the long tail's replicas.
    floor = args.replica_cpus + args.multiplex.min_replicas * args.multiplex.replica_cpus
    assert floor <= 1.0
    ceiling = args.replica_cpus + args.multiplex.max_replicas * args.multiplex.replica_cpus
    assert ceiling <= 2.0
    from raycore.serving.deployments import MODELS_PER_REPLICA

    assert args.multiplex.max_replicas * MODELS_PER_REPLICA >= len(plan.multiplexed)


def test_topology_placement_and_overrides() -> None:
    hot, tail = ServingSpec(multiplexed=False), ServingSpec()
    args = AppArgs(
        models=["a", "b"],
        tracking_uri="sqlite:///x.db",
        serving={"a": hot, "b": tail},
        placement="deployment",
    )
    plan = plan_topology(args)
    assert (plan.local, plan.dedicated, plan.multiplexed) == ([], ["a"], ["b"])
    assert plan.specs["a"].autoscaling_config() == {
        "min_replicas": 1, "initial_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 16.0,
    }  # fmt: skip
    with pytest.raises(ValidationError, match="not served: c"):
        AppArgs(models=["a"], tracking_uri="sqlite:///x.db", serving={"c": hot})
    with pytest.raises(ValidationError, match="listed twice: a"):
        AppArgs(models=["a", "a"], tracking_uri="sqlite:///x.db")


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize("in_thread", [False, True])
def test_batcher_predicts_concurrent_requests_together_and_splits_answers(
    bundles: dict[str, ModelBundle], in_thread: bool
) -> None:
    predictor = Predictor(bundle=bundles["1"], version="1")
    sizes: list[int] = []
    rows = [{**ROW, "leg_distance_km": float(i + 1)} for i in range(12)]
    want = predictor.bundle.predict(frame(rows))

    async def main() -> list[Any]:
        batcher = RowBatcher(
            max_batch_size=8,
            batch_wait_timeout_s=0.01,
            max_queued_requests=100,
            on_batch=lambda p, n: sizes.append(n),
            in_thread=in_thread,
        )
        items = [RowRequest(frame([r]), lambda i, f: ["x"]) for r in rows[:10]] + [
            RowRequest(frame(rows[10:]), lambda i, f: ["x"])
        ]
        out = await asyncio.gather(*(batcher.submit(predictor, item) for item in items))
        await batcher.close()
        return out

    out = asyncio.run(main())
    got = np.concatenate([p.values for p in out])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert (
        sum(sizes) == 11 and max(sizes) == 8 and len(sizes) == 2
    )  # 11 requests in 2 predict calls


def test_one_bad_request_does_not_fail_its_batch(bundles: dict[str, ModelBundle]) -> None:
    predictor = Predictor(bundle=bundles["1"], version="1")
    bad = {**ROW, "leg_distance_km": 0.0}  # schema-valid, but the view refuses to score it

    async def main() -> list[Any]:
        batcher = RowBatcher(max_batch_size=4, batch_wait_timeout_s=0.01, max_queued_requests=10)
        good = RowRequest(frame([ROW]), lambda i, f: ["good", i])
        odd = RowRequest(frame([bad]), lambda i, f: ["odd", i])
        out = await asyncio.gather(
            batcher.submit(predictor, good),
            batcher.submit(predictor, odd),
            batcher.submit(predictor, good),
            return_exceptions=True,
        )
        await batcher.close()
        return out

    first, second, third = asyncio.run(main())
    want = float(predictor.bundle.predict(frame([ROW]))[0])
    assert first.values[0] == pytest.approx(want, rel=1e-12) and third.values[0] == pytest.approx(
        want, rel=1e-12
    )
    assert (
        isinstance(second, InputValidationError)
        and "odd.0: leg_distance_km must be positive" in second.message
    )


def test_a_full_queue_refuses_at_once_with_retry_after(bundles: dict[str, ModelBundle]) -> None:
    predictor = Predictor(bundle=bundles["1"], version="1")

    async def main() -> list[Any]:
        batcher = RowBatcher(
            max_batch_size=1, batch_wait_timeout_s=0.0, max_queued_requests=3, retry_after_s=2
        )
        item = RowRequest(frame([ROW]), lambda i, f: ["x"])
        out = await asyncio.gather(
            *(batcher.submit(predictor, item) for _ in range(10)), return_exceptions=True
        )
        await batcher.close()
        return out

    out = asyncio.run(main())
    refused = [o for o in out if isinstance(o, Overloaded)]
    assert len(refused) == 7 and all(r.retry_after_s == 2 for r in refused)
    assert "max_queued_requests=3" in refused[0].message
    import pickle

    assert pickle.loads(pickle.dumps(refused[0])).retry_after_s == 2


# ---------------------------------------------------------------- endpoint and hot reload


def endpoint_for(source: VersionedSource, **batcher: Any) -> ModelEndpoint:
    model = ReloadingModel.open(name=NAME, alias="champion", source=source)
    queue = RowBatcher(
        **{
            "max_batch_size": 16,
            "batch_wait_timeout_s": 0.001,
            "max_queued_requests": 1000,
            **batcher,
        }
    )
    return ModelEndpoint(model=model, submit=queue.submit)


def test_endpoint_answers_every_route_with_its_version(bundles: dict[str, ModelBundle]) -> None:
    endpoint = endpoint_for(VersionedSource(bundles, "1"))
    want = bundles["1"].predict(frame([ROW]))

    async def main() -> dict[str, Any]:
        simple = await endpoint.infer(
            "simple", raw=json.dumps({"inputs": ROW, "request_id": "r1"}).encode()
        )
        mlflow = await endpoint.infer(
            "mlflow", raw=json.dumps({"dataframe_records": [ROW, ROW]}).encode()
        )
        oip_body = {
            "inputs": [
                {
                    "name": k,
                    "shape": [1],
                    "datatype": "BYTES"
                    if isinstance(v, str)
                    else "FP64"
                    if isinstance(v, float)
                    else "INT64",
                    "data": [v],
                }
                for k, v in ROW.items()
            ]
        }
        oip = await endpoint.infer("oip", raw=json.dumps(oip_body).encode())
        wrong = await endpoint.infer("oip", raw=json.dumps(oip_body).encode(), version="7")
        bad = await endpoint.infer(
            "simple", raw=json.dumps({"inputs": {**ROW, "weather": 3}}).encode()
        )
        return {"simple": simple, "mlflow": mlflow, "oip": oip, "wrong": wrong, "bad": bad}

    got = asyncio.run(main())
    assert all(a.version == "1" for a in got.values())
    simple = json.loads(got["simple"].content)
    assert got["simple"].status == 200 and simple["request_id"] == "r1"
    assert simple["predictions"] == pytest.approx(want.tolist(), rel=1e-12)
    assert json.loads(got["mlflow"].content)["predictions"] == pytest.approx(
        [want[0], want[0]], rel=1e-12
    )
    assert json.loads(got["oip"].content)["outputs"][0]["data"] == pytest.approx(
        want.tolist(), rel=1e-12
    )
    assert got["wrong"].status == 404 and "serving v1" in json.loads(got["wrong"].content)["error"]
    assert (
        got["bad"].status == 422
        and json.loads(got["bad"].content)["detail"][0]["loc"][-1] == "weather"
    )
    described = json.loads(endpoint.meta("describe").content)
    assert described["version"] == "1" and described["required_inputs"]


def test_hot_reload_swaps_versions_under_load_without_a_failed_request(
    bundles: dict[str, ModelBundle],
) -> None:
    source = VersionedSource(bundles, "1")
    endpoint = endpoint_for(source)
    expected = {v: float(b.predict(frame([ROW]))[0]) for v, b in bundles.items()}
    raw = json.dumps({"inputs": ROW}).encode()

    async def client(stop: asyncio.Event, seen: list[tuple[int, str | None, float]]) -> None:
        while not stop.is_set():
            answer = await endpoint.infer("simple", raw=raw)
            body = json.loads(answer.content)
            seen.append(
                (
                    answer.status,
                    answer.version,
                    body["predictions"][0] if answer.status == 200 else float("nan"),
                )
            )

    async def main() -> tuple[list[tuple[int, str | None, float]], dict[str, Any], dict[str, Any]]:
        endpoint.model.start(poll_s=0.02)
        stop = asyncio.Event()
        seen: list[tuple[int, str | None, float]] = []
        clients = [asyncio.create_task(client(stop, seen)) for _ in range(8)]
        await asyncio.sleep(0.1)
        source.alias_at = "2"  # the registry moves champion
        for _ in range(200):
            await asyncio.sleep(0.01)
            if endpoint.version == "2":
                break
        await asyncio.sleep(0.1)
        source.alias_at = None  # an alias deleted by mistake keeps the model serving
        missing = await endpoint.model.refresh()
        source.alias_at = "2"
        forced = json.loads((await endpoint.reload(force=True)).content)
        stop.set()
        await asyncio.gather(*clients)
        await endpoint.model.stop()
        return seen, missing, forced

    seen, missing, forced = asyncio.run(main())
    assert seen and all(status == 200 for status, _, _ in seen)
    versions = [v for _, v, _ in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)  # once switched, never back
    for _, version, value in seen:  # every answer was computed by the version it names
        assert value == pytest.approx(expected[str(version)], rel=1e-12)
    assert missing["changed"] is False and "not set" in missing["error"]
    assert forced["version"] == "2" and source.loads.count("2") == 2


def test_endpoint_turns_overload_into_503_with_retry_after(bundles: dict[str, ModelBundle]) -> None:
    endpoint = endpoint_for(VersionedSource(bundles, "1"), max_batch_size=1, max_queued_requests=1)
    raw = json.dumps({"inputs": ROW}).encode()

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                endpoint.infer("mlflow", raw=json.dumps({"dataframe_records": [ROW]}).encode())
                for _ in range(6)
            ),
            endpoint.infer("simple", raw=raw),
        )

    answers = asyncio.run(main())
    refused = [a for a in answers if a.status == 503]
    assert refused and all(a.headers["retry-after"] == "1" and a.version == "1" for a in refused)
    assert any(a.status == 200 for a in answers)
    assert json.loads(refused[0].content)["error_code"] == "INTERNAL_ERROR"


def test_direct_ingress_pins_the_replica_to_the_serve_port_and_refuses_a_ray_started_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from raycore.errors import ConfigurationError
    from raycore.runtime.ray_runtime import check_direct_ingress, direct_ingress_env
    from raycore.settings import FoundrySettings

    settings = FoundrySettings.load(
        home="/tmp/unused-home", serve_port=8123, serve_ingress="direct"
    )
    env = direct_ingress_env(settings)
    assert env == {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "8123",
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": "8124",  # exclusive: the one port 8123
    }
    for key in env:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigurationError, match="already running in this process without it"):
        check_direct_ingress(settings)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    check_direct_ingress(settings)  # what connect_ray set before starting the local Ray
    monkeypatch.setenv("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "8000")
    with pytest.raises(ConfigurationError):  # started for another port
        check_direct_ingress(settings)
    cluster = FoundrySettings.load(
        home="/tmp/unused-home", ray_address="ray://head:10001", serve_ingress="direct"
    )
    with pytest.raises(ConfigurationError, match="RAY_ADDRESS=ray://head:10001"):
        check_direct_ingress(cluster)
    check_direct_ingress(FoundrySettings.load(home="/tmp/unused-home"))  # proxy: nothing to check
    with pytest.raises(ConfigurationError, match="serve_ingress"):
        FoundrySettings.load(home="/tmp/unused-home", serve_ingress="haproxy")
