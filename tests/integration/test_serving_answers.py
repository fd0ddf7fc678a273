"""Served answers that say how sure they are and why, with a threshold operators change live.

One churn_risk (mdl-005, binary LightGBM) model is fitted natively with its
conformal calibrator (``fit_calibrated``, the training path's own calibration),
registered and served on loopback. Requests ask for explanations and a
coverage level on the simple route and through OIP v2 ``parameters``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.feedback import record_labels
from raycore.registry.audit import AuditLog
from raycore.registry.store import ModelStore
from raycore.serving.auth import create_key
from raycore.serving.prediction_log import read_prediction_log
from raycore.settings import FoundrySettings
from raycore.thresholds import ThresholdStore
from raycore.training.pipeline import (
    prepare_training,
)
from tests.conftest import free_port
from tests.integration.native_models import register_native, served

pytestmark = pytest.mark.integration

SPEC = load_catalog().get("mdl-005")
NAME = SPEC.name
KEYS: dict[str, str] = {}  # the app runs with API keys: every request below carries one


@pytest.fixture(scope="module")
def foundry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FoundrySettings]:
    home = tmp_path_factory.mktemp("serving-answers")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        settings = FoundrySettings(
            home=home, serve_port=free_port(), mlflow_tracking_uri=uri, online_store_uri=None
        )
        params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.05, "seed": 7}
        version, bundle, _ = register_native(
            SPEC, settings=settings, params=params, rounds=150, calibrate=True
        )
        assert version == "1" and bundle.calibrator is not None
        KEYS["infer"] = create_key(home=home, scope="infer")[0]
        KEYS["admin"] = create_key(home=home, scope="admin")[0]
        yield settings


@pytest.fixture(scope="module")
def endpoint(ray_session: None, foundry: FoundrySettings) -> Iterator[str]:
    with served(foundry, [NAME]) as url:
        yield url


@pytest.fixture(scope="module")
def rows(foundry: FoundrySettings) -> list[dict[str, Any]]:
    holdout = prepare_training(SPEC, settings=foundry).holdout_rows.head(40)
    return [
        {"customer_id": int(r.customer_id), "as_of": str(pd.Timestamp(r.as_of).date())}
        for r in holdout.itertuples()
    ]


def predict(endpoint: str, rows: list[dict[str, Any]], **parameters: Any) -> httpx.Response:
    body: dict[str, Any] = {"inputs": rows}
    if parameters:
        body["parameters"] = parameters
    return httpx.post(f"{endpoint}/v1/models/{NAME}/predict", json=body, timeout=60, headers=auth())


def auth(scope: str = "infer") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[scope]}"}


def test_decisions_follow_the_live_threshold_on_the_next_request(
    endpoint: str, rows: list[dict[str, Any]], foundry: FoundrySettings
) -> None:
    first = predict(endpoint, rows).json()
    scores = np.asarray(first["predictions"])
    assert first["threshold"] == SPEC.threshold.default == 0.3  # type: ignore[union-attr]
    assert first["decisions"] == (scores >= 0.3).astype(int).tolist()
    cut = float(np.quantile(scores, 0.5))
    ThresholdStore(home=foundry.home).set(
        model=NAME, threshold=cut, reason="halve the alerts", default=0.3
    )
    second = predict(endpoint, rows).json()
    assert second["threshold"] == pytest.approx(cut)
    assert second["decisions"] == (np.asarray(second["predictions"]) >= cut).astype(int).tolist()
    assert [e.action for e in AuditLog(foundry.home / "audit.db").history(NAME)][
        -1
    ] == "threshold_set"
    ThresholdStore(home=foundry.home).rollback(model=NAME, reason="back", default=0.3)
    assert predict(endpoint, rows).json()["threshold"] == 0.3


def test_explanations_and_prediction_sets_on_request(
    endpoint: str, rows: list[dict[str, Any]]
) -> None:
    answer = predict(endpoint, rows, explain=3, level=0.99)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    scores = np.asarray(body["predictions"])
    assert body["level"] == 0.99 and len(body["prediction_sets"]) == len(rows)
    assert all(len(s) >= 1 for s in body["prediction_sets"])  # never empty at 99%
    for p, ex in zip(scores, body["explanations"], strict=True):
        assert len(ex["top"]) == 3 and ex["reason"]
        # margin space: the booster's log-odds is the logit of the served probability
        assert ex["margin"] == pytest.approx(np.log(p / (1 - p)), abs=1e-6)
        sizes = [abs(t["contribution"]) for t in ex["top"]]
        assert sizes == sorted(sizes, reverse=True)
    plain = predict(endpoint, rows).json()
    assert plain["predictions"] == body["predictions"] and "explanations" not in plain


def test_oip_parameters_carry_the_same_extras(endpoint: str, rows: list[dict[str, Any]]) -> None:
    n = 5
    body = {
        "inputs": [
            {
                "name": "customer_id",
                "shape": [n],
                "datatype": "INT64",
                "data": [r["customer_id"] for r in rows[:n]],
            },
            {
                "name": "as_of",
                "shape": [n],
                "datatype": "BYTES",
                "data": [r["as_of"] for r in rows[:n]],
            },
        ],
        "parameters": {"explain": 2, "level": 0.9},
    }
    answer = httpx.post(
        f"{endpoint}/v2/models/{NAME}/infer",
        json=body,
        timeout=60,
        headers={"x-api-key": KEYS["admin"]},
    )
    assert answer.status_code == 200, answer.text
    params = answer.json()["parameters"]
    assert len(params["explanations"]) == n and len(params["explanations"][0]["top"]) == 2
    assert (
        len(params["prediction_sets"]) == n
        and params["level"] == 0.9
        and len(params["decisions"]) == n
    )


def test_mlflow_params_carry_the_same_extras(endpoint: str, rows: list[dict[str, Any]]) -> None:
    n = 4
    split = {"columns": list(rows[0]), "data": [list(r.values()) for r in rows[:n]]}
    url = f"{endpoint}/v1/models/{NAME}/invocations"
    answer = httpx.post(
        url, json={"dataframe_split": split, "params": {"explain": 2, "level": 0.9}}, timeout=60, headers=auth()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == n and body["level"] == 0.9
    assert len(body["prediction_sets"]) == n and len(body["explanations"][0]["top"]) == 2
    plain = httpx.post(url, json={"dataframe_split": split}, timeout=60, headers=auth()).json()
    assert plain["predictions"] == body["predictions"] and "explanations" not in plain
    for params, field in (({"level": 0.42}, "level"), ({"temperature": 1}, "temperature")):
        bad = httpx.post(url, json={"dataframe_split": split, "params": params}, timeout=60, headers=auth())
        # MLflow's scoring protocol answers bad input with 400 BAD_REQUEST, naming the field
        assert bad.status_code == 400 and "BAD_REQUEST" in bad.text and field in bad.text, (params, bad.text)


def test_bad_options_are_4xx_naming_the_field_and_logged_rows_hold_the_assembled_inputs(
    endpoint: str, rows: list[dict[str, Any]], foundry: FoundrySettings
) -> None:
    for params, field in (
        ({"explain": -2}, "explain"),
        ({"level": 0.42}, "level"),
        ({"level": "x"}, "level"),
    ):
        answer = predict(endpoint, rows[:2], **params)
        assert answer.status_code == 422 and field in answer.text, (params, answer.text)
    deadline = time.monotonic() + 30
    logged = pd.DataFrame()
    while time.monotonic() < deadline and logged.empty:
        logged = read_prediction_log(home=foundry.home, model=NAME)
        time.sleep(0.5)
    assert not logged.empty
    # the log holds the rows the model saw (online features included), so monitors can rebuild them
    assert {"in_customer_id", "in_late_13", "in_net_sentiment_ew"} <= set(logged.columns)
    assert Path(foundry.home / "predictions").is_dir()


def test_api_keys_guard_inference_and_admin_routes(
    endpoint: str, rows: list[dict[str, Any]]
) -> None:
    url = f"{endpoint}/v1/models/{NAME}/predict"
    missing = httpx.post(url, json={"inputs": rows[:1]}, timeout=30)
    assert missing.status_code == 401 and missing.headers.get("www-authenticate") == "Bearer"
    wrong = httpx.post(
        url, json={"inputs": rows[:1]}, timeout=30, headers={"x-api-key": "fdk_not-a-key"}
    )
    assert wrong.status_code == 401
    reload_url = f"{endpoint}/admin/models/{NAME}/reload"
    assert httpx.post(reload_url, timeout=30, headers=auth("infer")).status_code == 403
    assert httpx.post(reload_url, timeout=60, headers=auth("admin")).status_code == 200
    assert (
        httpx.get(f"{endpoint}/v2/health/ready", timeout=10).status_code == 200
    )  # probes need no key


def test_shadow_then_sticky_ab_between_champion_and_challenger(
    endpoint: str, rows: list[dict[str, Any]], foundry: FoundrySettings
) -> None:
    from raycore.registry.traffic_state import TrafficStateStore
    from raycore.retraining.evidence import shadow_comparison
    from raycore.serving.traffic import ShadowLog
    from raycore.specs.traffic import AbSpec, ShadowSpec, TrafficPolicy

    other = {
        "objective": "binary",
        "num_leaves": 7,
        "learning_rate": 0.05,
        "seed": 11,
        "feature_fraction": 0.7,
    }
    version, _, _ = register_native(
        SPEC, settings=foundry, params=other, rounds=120, promote=False
    )
    store = ModelStore(foundry)
    assert version == "2" and store.alias_version(NAME, "challenger") == "2"
    assert store.alias_version(NAME, "champion") == "1"
    state = TrafficStateStore.open(store)
    champion_only = predict(endpoint, rows[:10]).json()["predictions"]
    holdout = prepare_training(SPEC, settings=foundry).holdout_rows.head(40)

    state.set_policy(
        model=NAME,
        policy=TrafficPolicy(kind="shadow", shadow=ShadowSpec(alias="challenger")),
        reason="shadow the weak v2",
    )
    time.sleep(1.5)  # replicas re-read the policy at most every second
    outcome = dict(
        zip((r["customer_id"] for r in rows), holdout[SPEC.label].to_numpy(), strict=True)
    )
    for i, row in enumerate(rows[:10]):
        answer = httpx.post(
            f"{endpoint}/v1/models/{NAME}/predict",
            json={"inputs": [row], "request_id": f"r{i}"},
            timeout=60,
            headers=auth(),
        )
        assert answer.status_code == 200 and answer.headers["x-model-version"] == "1"
    assert (
        predict(endpoint, rows[:10]).json()["predictions"] == champion_only
    )  # the caller's answer never changes
    deadline = time.monotonic() + 30
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(records) < 11:
        records = [
            r
            for r in ShadowLog(home=foundry.home, model=NAME).records()
            if r["shadow_error"] is None
        ]
        time.sleep(0.3)
    assert len(records) >= 11
    single = {
        r["request_id"]: r for r in records if r["request_id"] in {f"r{i}" for i in range(10)}
    }
    assert len(single) == 10 and any(
        r["max_abs_diff"] > 0 for r in single.values()
    )  # the shadow is the other model
    record_labels(
        home=foundry.home,
        model=NAME,
        labels=pd.DataFrame(
            {
                "request_id": [f"r{i}" for i in range(10)],
                "label": [int(outcome[r["customer_id"]]) for r in rows[:10]],
            }
        ),
    )
    evidence = shadow_comparison(SPEC, home=foundry.home)
    assert (
        evidence.n == 10
    )  # both versions' answers to the same requests, scored on the late labels

    ab = TrafficPolicy(
        kind="ab", ab=AbSpec(weights={"champion": 50, "challenger": 50}, sticky_key="customer_id")
    )
    state.set_policy(model=NAME, policy=ab, reason="half and half")
    time.sleep(1.5)
    seen = {}
    for row in rows[:30]:
        seen[row["customer_id"]] = predict(endpoint, [row]).headers["x-model-version"]
    assert set(seen.values()) == {"1", "2"}  # both versions answer
    for row in rows[:10]:  # and the same customer always meets the same one
        assert predict(endpoint, [row]).headers["x-model-version"] == seen[row["customer_id"]]
    state.set_policy(model=NAME, policy=TrafficPolicy(), reason="back to the champion")
