"""The standard protocols on a real Serve app on loopback: tritonclient, MLflow payloads, OpenAPI, a fuzz.

One mdl-001 model is fitted natively (the recipe of test_registry: no Ray
Train), logged and registered on a real MLflow (SQLite) in a temp
FOUNDRY_HOME, its feature table materialised to the online store, and served
by the real foundry app. Expected values are ``bundle.predict`` on the same
rows, assembled from the same online store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raycore.catalog import load_catalog
from raycore.features import assemble_online, get_feature_view
from raycore.registry.store import ModelStore
from raycore.settings import FoundrySettings
from tests.conftest import free_port
from tests.integration.native_models import register_native, served

pytestmark = pytest.mark.integration

SPEC = load_catalog().get("mdl-001")
NAME = SPEC.name
DTYPES = {f["name"]: f["dtype"] for f in get_feature_view("store_sales_lags").input_schema()}


@pytest.fixture(scope="module")
def foundry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FoundrySettings]:
    """A registered mdl-001 champion and its online features, without Ray Train."""
    home = tmp_path_factory.mktemp("serving-protocols")
    # mlflow.set_tracking_uri (in ModelStore) exports MLFLOW_TRACKING_URI, which FoundrySettings
    # reads: point it at our store, and leave it as we found it for the modules that run after us.
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        settings = FoundrySettings(
            home=home, serve_port=free_port(), mlflow_tracking_uri=uri, online_store_uri=None
        )
        params = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.1, "seed": 7}
        version, _, _ = register_native(SPEC, settings=settings, params=params, rounds=40)
        assert version == "1"
        yield settings


@pytest.fixture(scope="module")
def endpoint(ray_session: None, foundry: FoundrySettings) -> Iterator[str]:
    with served(foundry, [NAME]) as url:
        yield url


@pytest.fixture(scope="module")
def rows(foundry: FoundrySettings) -> list[dict[str, Any]]:
    """Requests as a client sends them: store, target week, promotion flag."""
    store = foundry.online_store()
    try:
        out = []
        for store_id in range(1, 9):
            found = store.read("store_weekly_stats_v1", [(store_id,)])[0]
            assert found is not None
            week = pd.Timestamp(found["origin_week"]) + pd.Timedelta(weeks=1 + store_id % 4)
            out.append(
                {
                    "store_id": store_id,
                    "week_start": week.date().isoformat(),
                    "on_promo": store_id % 2,
                }
            )
        return out
    finally:
        store.close()


@pytest.fixture(scope="module")
def full_row(foundry: FoundrySettings, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A request that carries every input itself (no online lookup), as JSON sends it."""
    store = foundry.online_store()
    try:
        found = store.read("store_weekly_stats_v1", [(rows[0]["store_id"],)])[0]
    finally:
        store.close()
    assert found is not None
    values = {**rows[0], **found}
    return {k: str(pd.Timestamp(v).date()) if DTYPES[k] == "date" else v for k, v in values.items()}


@pytest.fixture(scope="module")
def expected(foundry: FoundrySettings, rows: list[dict[str, Any]]) -> np.ndarray:
    bundle, _ = ModelStore(foundry).load_bundle(NAME, alias="champion")
    store = foundry.online_store()
    try:
        return np.asarray(
            bundle.predict(assemble_online(bundle.view, pd.DataFrame(rows), online=store))
        )
    finally:
        store.close()


def triton_inputs(rows: list[dict[str, Any]], *, binary: bool) -> list[Any]:
    import tritonclient.http as httpclient

    n = len(rows)
    store_id = httpclient.InferInput("store_id", [n], "INT64")
    store_id.set_data_from_numpy(
        np.array([r["store_id"] for r in rows], dtype=np.int64), binary_data=binary
    )
    week = httpclient.InferInput("week_start", [n, 1], "BYTES")
    week.set_data_from_numpy(
        np.array([[r["week_start"]] for r in rows], dtype=object), binary_data=binary
    )
    promo = httpclient.InferInput("on_promo", [n], "INT32")
    promo.set_data_from_numpy(
        np.array([r["on_promo"] for r in rows], dtype=np.int32), binary_data=binary
    )
    return [store_id, week, promo]


def test_tritonclient_health_metadata_and_infer(
    endpoint: str, rows: list[dict[str, Any]], expected: np.ndarray
) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(url=endpoint.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(NAME) and client.is_model_ready(NAME, model_version="1")
        assert not client.is_model_ready(NAME, model_version="2")
        assert client.get_server_metadata()["name"] == "data-foundry"
        meta = client.get_model_metadata(NAME)
        assert meta["name"] == NAME and meta["versions"] == ["1"]
        inputs = {i["name"]: i for i in meta["inputs"]}
        assert (
            inputs["store_id"]["datatype"] == "INT64"
            and inputs["week_start"]["datatype"] == "BYTES"
        )
        assert meta["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]

        # a batch with binary tensors both ways (tritonclient's defaults)
        batch = client.infer(NAME, triton_inputs(rows, binary=True), request_id="batch-1")
        np.testing.assert_allclose(batch.as_numpy("predictions"), expected, rtol=1e-12)
        answer = batch.get_response()
        assert answer["model_version"] == "1" and answer["id"] == "batch-1"
        # one row, JSON tensors, JSON output, the versioned route
        one = client.infer(
            NAME,
            triton_inputs(rows[:1], binary=False),
            model_version="1",
            outputs=[httpclient.InferRequestedOutput("predictions", binary_data=False)],
        )
        np.testing.assert_allclose(one.as_numpy("predictions"), expected[:1], rtol=1e-12)
        assert one.get_response()["outputs"][0]["data"] == pytest.approx(
            expected[:1].tolist(), rel=1e-12
        )

        bad = triton_inputs(rows[:1], binary=False)
        bad[2].set_data_from_numpy(np.array([7], dtype=np.int32), binary_data=False)
        with pytest.raises(InferenceServerException, match="on_promo") as info:
            client.infer(NAME, bad)
        assert info.value.status() == "400"
        with pytest.raises(InferenceServerException) as missing:
            client.infer("nope", triton_inputs(rows[:1], binary=True))
        assert missing.value.status() == "404"
    finally:
        client.close()


def test_oip_json_over_plain_http_names_the_version(
    endpoint: str, rows: list[dict[str, Any]], expected: np.ndarray
) -> None:
    body = {
        "inputs": [
            {
                "name": "store_id",
                "shape": [2],
                "datatype": "INT64",
                "data": [r["store_id"] for r in rows[:2]],
            },
            {
                "name": "week_start",
                "shape": [2],
                "datatype": "BYTES",
                "data": [r["week_start"] for r in rows[:2]],
            },
            {
                "name": "on_promo",
                "shape": [2, 1],
                "datatype": "INT64",
                "data": [[r["on_promo"]] for r in rows[:2]],
            },
        ]
    }
    r = httpx.post(f"{endpoint}/v2/models/{NAME}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-model-version"] == "1" and r.json()["model_version"] == "1"
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], expected[:2], rtol=1e-12)
    body["inputs"].pop(2)
    refused = httpx.post(f"{endpoint}/v2/models/{NAME}/infer", json=body, timeout=30)
    assert refused.status_code == 400 and "on_promo" in refused.json()["error"]
    assert refused.headers["x-model-version"] == "1"


def test_mlflow_scoring_payloads(
    endpoint: str, rows: list[dict[str, Any]], expected: np.ndarray
) -> None:
    from mlflow.deployments import PredictionsResponse
    from mlflow.models import convert_input_example_to_serving_input
    from mlflow.utils.proto_json_utils import dump_input_data

    url = f"{endpoint}/v1/models/{NAME}/invocations"
    frame = pd.DataFrame(rows)
    payloads = {
        "split (mlflow)": (convert_input_example_to_serving_input(frame), expected),
        "split (client)": (dump_input_data(frame), expected),
        "split (pandas), one row": (
            json.dumps({"dataframe_split": frame.head(1).to_dict(orient="split")}),
            expected[:1],
        ),
        "records": (json.dumps({"dataframe_records": frame.to_dict(orient="records")}), expected),
        "records, one row": (
            json.dumps({"dataframe_records": frame.head(1).to_dict(orient="records")}),
            expected[:1],
        ),
        "inputs (columns)": (json.dumps({"inputs": frame.to_dict(orient="list")}), expected),
    }
    for label, (payload, want) in payloads.items():
        assert payload is not None
        r = httpx.post(
            url, content=payload, headers={"content-type": "application/json"}, timeout=30
        )
        assert r.status_code == 200, (label, r.text)
        assert r.headers["x-model-version"] == "1", label
        response = PredictionsResponse.from_json(r.text)  # MLflow's own client-side parser
        np.testing.assert_allclose(
            response.get_predictions(predictions_format="ndarray"), want, rtol=1e-12
        )
        assert response["model_version"] == "1"

    bad = frame.head(2).drop(columns=["on_promo"]).to_dict(orient="split")
    r = httpx.post(url, json={"dataframe_split": bad}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
    assert "on_promo" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_records": [{**rows[0], "store_id": "three"}]}, timeout=30)
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == [
        "body",
        "dataframe_records",
        0,
        "store_id",
    ]
    assert (
        httpx.post(
            f"{endpoint}/v1/models/nope/invocations", json={"inputs": rows}, timeout=30
        ).status_code
        == 404
    )


def test_every_model_route_names_the_version(endpoint: str, rows: list[dict[str, Any]]) -> None:
    for method, path, body in [
        ("GET", f"/v1/models/{NAME}", None),
        ("GET", f"/v2/models/{NAME}", None),
        ("GET", f"/v2/models/{NAME}/ready", None),
        ("POST", f"/v1/models/{NAME}/predict", {"inputs": rows[0]}),
        ("POST", f"/v1/models/{NAME}/predict", {"inputs": {**rows[0], "on_promo": "x"}}),
        ("POST", f"/v1/models/{NAME}/invocations", {"inputs": rows}),
    ]:
        r = httpx.request(method, f"{endpoint}{path}", json=body, timeout=30)
        assert r.headers.get("x-model-version") == "1", (method, path, r.status_code)


def test_openapi_page_renders_with_every_route(endpoint: str) -> None:
    spec = httpx.get(f"{endpoint}/openapi.json", timeout=10)
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for route in (
        "/v1/models/{name}/predict",
        "/v1/models/{name}/invocations",
        "/v2/models/{name}/infer",
        "/v2/models/{name}",
        "/v2/health/ready",
    ):
        assert route in paths
    body = paths["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body["$ref"].rsplit("/", 1)[-1] in spec.json()["components"]["schemas"]
    docs = httpx.get(f"{endpoint}/docs", timeout=10)
    assert docs.status_code == 200 and "swagger-ui" in docs.text and "/openapi.json" in docs.text


# ---------------------------------------------------------------- fuzz

POST_ROUTES = [
    f"/v1/models/{NAME}/predict",
    f"/v1/models/{NAME}/invocations",
    f"/v2/models/{NAME}/infer",
    f"/v2/models/{NAME}/versions/1/infer",
]
NAMES = [
    "store_id",
    "week_start",
    "on_promo",
    "origin_week",
    "rev_lag_1",
    "rev_mean_13",
    "promo_weeks_13",
    "fit_log_base",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 10**18, 10**30])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, -1e308, 5e-324, 1e-300])
    | st.text(max_size=12)
    | st.dates(min_value=pd.Timestamp("1000-01-01").date()).map(lambda d: d.isoformat())
    | st.sampled_from(
        [*NAMES, "INT64", "BYTES", "FP64", "BOOL", "BF16", "predictions", "probabilities"]
    )
)
KEYS = st.sampled_from(
    [
        *NAMES,
        "inputs",
        "name",
        "shape",
        "datatype",
        "data",
        "parameters",
        "outputs",
        "id",
        "dataframe_split",
        "dataframe_records",
        "columns",
        "index",
        "instances",
        "params",
        "binary_data_size",
        "binary_data_output",
        "binary_data",
        "class_count",
        "request_id",
        "x",
    ]
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=24,
)


def valid_bodies(rows: list[dict[str, Any]], full: dict[str, Any]) -> list[tuple[str, Any]]:
    """Valid bodies for every POST route, what the fuzz mutates: entity rows, and a row with every input."""
    two = rows[:2]

    def oip(batch: list[dict[str, Any]]) -> dict[str, Any]:
        datatypes = {"int": "INT64", "float": "FP64", "date": "BYTES", "str": "BYTES"}
        return {
            "id": "fuzz",
            "inputs": [
                {
                    "name": k,
                    "shape": [len(batch)],
                    "datatype": datatypes[DTYPES[k]],
                    "data": [r[k] for r in batch],
                }
                for k in batch[0]
            ],
            "outputs": [{"name": "predictions", "parameters": {"binary_data": False}}],
        }

    with_nan = oip(two)
    with_nan["inputs"].append(
        {"name": "rev_lag_1", "shape": [2], "datatype": "FP64", "data": [51000.5, float("nan")]}
    )
    return [
        (POST_ROUTES[0], {"inputs": [dict(r) for r in two], "request_id": "fuzz"}),
        (POST_ROUTES[0], {"inputs": full}),
        (POST_ROUTES[1], {"dataframe_split": pd.DataFrame(two).to_dict(orient="split")}),
        (POST_ROUTES[1], {"dataframe_records": [full, rows[2]]}),
        (POST_ROUTES[2], with_nan),
        (POST_ROUTES[2], oip([full])),
        (POST_ROUTES[3], oip(two)),
    ]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(body: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    """A copy of ``body`` with the node at ``path`` deleted, replaced, duplicated or blown up."""
    body = json.loads(json.dumps(body))
    if not path:
        return value if op != "repeat" else [body, body]
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = value
    elif op == "repeat":
        node = parent[key]
        parent[key] = node * 10_001 if isinstance(node, list) else [node] * 3
    elif op == "huge":
        parent[key] = [10**12] if isinstance(parent[key], list) else 10**12
    return body


@st.composite
def malformed_requests(
    draw: st.DrawFn, bodies: list[tuple[str, Any]]
) -> tuple[str, bytes, dict[bytes, bytes]]:
    route, base = draw(st.sampled_from(bodies))
    kind = draw(
        st.sampled_from(["mutated", "mutated", "mutated", "random_json", "bytes", "binary_header"])
    )
    headers: dict[bytes, bytes] = {}
    if kind == "bytes":
        content = draw(st.binary(max_size=300))
    elif kind == "random_json":
        content = json.dumps(draw(JSON)).encode()
    else:
        path = draw(st.sampled_from(_paths(base)))
        op = draw(st.sampled_from(["delete", "replace", "replace", "repeat", "huge"]))
        if op == "delete" and not path:
            op = "replace"
        content = json.dumps(_mutate(base, path, op, draw(JSON))).encode()
        if kind == "binary_header":
            content += draw(st.binary(max_size=64))
            headers[b"Inference-Header-Content-Length"] = draw(
                st.sampled_from(
                    [
                        b"0",
                        b"-1",
                        b"abc",
                        b"\xb2",
                        b"9" * 5000,
                        b"99999999",
                        str(len(content)).encode(),
                    ]
                )
                | st.integers(0, len(content)).map(lambda n: str(n).encode())
            )
    return route, content, headers


def _replicas() -> list[str]:
    """Names of the app's replica actors (a restarted replica comes back under a new name)."""
    import ray

    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "FoundryServer" in a["name"]
    )


def test_fuzzed_bodies_get_4xx_and_never_crash_the_replica(
    endpoint: str, rows: list[dict[str, Any]], full_row: dict[str, Any]
) -> None:
    bodies = valid_bodies(rows, full_row)
    client = httpx.Client(base_url=endpoint, timeout=60)
    replicas_before = _replicas()
    statuses: dict[int, int] = {}

    @settings(
        max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(request=malformed_requests(bodies))
    def fuzz(request: tuple[str, bytes, dict[bytes, bytes]]) -> None:
        route, content, headers = request
        r = client.post(
            route, content=content, headers={b"content-type": b"application/json", **headers}
        )
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code == 200 or 400 <= r.status_code < 500, (
            route,
            content[:300],
            headers,
            r.status_code,
            r.text[:500],
        )

    try:
        for route, body in bodies:  # the bases themselves are valid
            r = client.post(route, content=json.dumps(body))
            assert r.status_code == 200, (route, r.text)
        fuzz()
        assert sum(statuses.values()) >= 150 and not any(code >= 500 for code in statuses)
        for route, body in bodies:  # and still answered after the fuzz
            r = client.post(route, content=json.dumps(body))
            assert r.status_code == 200 and r.headers["x-model-version"] == "1", (route, r.text)
        assert client.get("/v2/health/ready").json() == {"ready": True}
    finally:
        client.close()
    assert replicas_before and _replicas() == replicas_before, "a replica was restarted"
