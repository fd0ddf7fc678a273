"""Benchmark: our Serve app vs a plain FastAPI+uvicorn app vs raw in-process predict, one run.

    single_row_throughput_vs_fastapi   requests/s of our app / of plain FastAPI serving the same bundle,
                                       32 concurrent clients, one row per request
    single_row_p99_ms                  p99 latency of our app in that run
    batch_rows_per_s_vs_raw            rows/s through our app with 1,000-row requests / raw in-process
                                       ``bundle.predict`` rows/s on 1,000-row frames

The model: LightGBM, 200 trees, 63 leaves, trained here on synthetic rows of the
catalog's request-only ``credit_application_risk`` feature view (11 raw inputs ->
18 model features). A served model must be a bundle whose feature view the
replicas can load by name, and no catalog view has 50 plain numeric inputs with a
cheap transform (``media_mix_weekly``'s transform costs ~80 ms a call). The model
is registered in a temporary FOUNDRY_HOME's MLflow and served through the real
app (validation, batching, metrics and the prediction log on).

The baseline ("fastapi") is a plain FastAPI app under uvicorn (one worker)
whose route does ``bundle.predict(pd.DataFrame(rows))`` on the parsed JSON: the
same model and feature transform, no validation, batching, metrics or log. A
second baseline route ("fastapi_booster") skips the feature transform too
(JSON -> numpy -> ``booster.predict``): what a minimal server costs.

Each server runs in its own process (each Serve attempt in its own local Ray, so
the RAY_SERVE_* switches apply); the load generator (aiohttp) runs in another.

Usage:
    python benchmarks/serving.py               # ours, HAProxy, the extra hop (< 5 min)
    python benchmarks/serving.py --attempts ingress multiplexed_hop ingress_no_batching  # any of ATTEMPTS
    python benchmarks/serving.py --quick       # the default topology only, shorter loads
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import Request  # module level: the baseline's routes resolve their annotations here

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NAME = "bench_credit_risk"
VIEW = "credit_application_risk"

# name -> (environment, AppArgs overrides, ServingSpec overrides)
ATTEMPTS: dict[str, tuple[dict[str, str], dict[str, Any], dict[str, Any]]] = {
    "ingress": ({}, {}, {}),
    "ingress_throughput_opt": ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, {}, {}),
    "ingress_haproxy": ({"RAY_SERVE_ENABLE_HA_PROXY": "1"}, {}, {}),
    # FOUNDRY_SERVE_INGRESS=direct: the ingress replica answers on the port itself (no proxy hop).
    "ingress_direct": ({"FOUNDRY_SERVE_INGRESS": "direct"}, {}, {}),
    "ingress_haproxy_throughput_opt": (
        {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, {}, {},
    ),
    "deployment_hop": ({}, {"placement": "deployment"}, {"replica_cpus": 0.5}),
    "multiplexed_hop": ({}, {}, {"multiplexed": True}),
    "ingress_no_batching": ({}, {}, {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}),
    "ingress_predict_thread": ({}, {"predict_in_thread": True}, {}),
}  # fmt: skip
QUICK = ["ingress"]
DEFAULT = [
    "ingress",
    "ingress_direct",
    "ingress_haproxy",
    "deployment_hop",
    "multiplexed_hop",
    "ingress_predict_thread",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the model


def synthetic_rows(n: int, *, seed: int) -> list[dict[str, Any]]:
    """Rows valid for the view's input schema (random values within declared bounds)."""
    import numpy as np

    from raycore.features import get_feature_view

    rng = np.random.default_rng(seed)
    schema = get_feature_view(VIEW).input_schema()
    choices = {
        "loan_purpose": ["car", "home", "debt", "education", "other"],
        "home_ownership": ["own", "rent", "mortgage"],
    }
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for f in schema:
            lo, hi = f.get("ge"), f.get("le")
            if f["dtype"] == "int":
                low = int(lo if lo is not None else 0)
                row[f["name"]] = (
                    i + 1
                    if f["source"] == "entity"
                    else int(rng.integers(low, int(hi if hi is not None else low + 10) + 1))
                )
            elif f["dtype"] == "str":
                row[f["name"]] = str(rng.choice(choices.get(f["name"], ["a", "b"])))
            else:
                row[f["name"]] = round(
                    float(rng.uniform(lo or 0.0, hi if hi is not None else 100.0)), 3
                )
        rows.append(row)
    return rows


def train_and_register(home: Path, *, rows: int) -> dict[str, Any]:
    """Fit LightGBM (200 trees, 63 leaves) on synthetic rows; log and register it as champion."""
    import lightgbm as lgb
    import mlflow
    import numpy as np
    import pandas as pd

    from raycore.features import get_feature_view
    from raycore.models.lightgbm_model import LightGBMEstimator
    from raycore.registry.bundle import BundleMetadata, ModelBundle
    from raycore.registry.pyfunc import BUNDLE_ARTIFACT, BundlePythonModel
    from raycore.registry.store import ModelStore
    from raycore.settings import FoundrySettings

    view = get_feature_view(VIEW)
    raw = pd.DataFrame(synthetic_rows(rows, seed=0))
    features = view.compute(raw)
    rng = np.random.default_rng(1)
    numeric = features.select_dtypes("number").to_numpy(dtype="float64")
    label = (numeric @ rng.normal(size=numeric.shape[1]) > 0).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 63,
        "learning_rate": 0.05,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 2,
    }
    booster = lgb.train(params, lgb.Dataset(features, label=label), num_boost_round=200)
    assert booster.num_trees() == 200
    metadata = BundleMetadata(
        model_id="mdl-900", model_name=NAME, task="binary", label="default", family="lightgbm",
        feature_view=view.name, feature_view_version=view.version, feature_view_digest=view.digest(),
        input_schema=view.input_schema(),
    )  # fmt: skip
    bundle = ModelBundle(
        estimator=LightGBMEstimator(booster, task="binary"), view=view, metadata=metadata
    )
    uri = f"sqlite:///{home / 'mlflow.db'}"
    settings = FoundrySettings(home=home, mlflow_tracking_uri=uri, online_store_uri=None)
    store = ModelStore(settings)
    with mlflow.start_run(
        experiment_id=store.experiment_id(NAME), run_name="serving-benchmark"
    ) as run:
        with tempfile.TemporaryDirectory() as tmp:
            folder = bundle.save(Path(tmp) / BUNDLE_ARTIFACT)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=BundlePythonModel(), artifacts={BUNDLE_ARTIFACT: str(folder)},
                pip_requirements=["lightgbm", "pandas<3"],
            )  # fmt: skip
    version = store.register(name=NAME, model_uri=info.model_uri, run_id=run.info.run_id, tags={})
    store.set_alias(name=NAME, alias="champion", version=version, reason="serving benchmark")
    bundle.save(home / "bundle")  # what the FastAPI baseline loads
    return {"tracking_uri": uri, "version": version, "features": len(view.feature_names)}


def measure_raw(home: Path, rows: list[dict[str, Any]], *, seconds: float) -> dict[str, float]:
    """In-process rows/s of ``bundle.predict`` and of ``booster.predict`` on 1,000-row frames; one-row ms."""
    import pandas as pd

    from raycore.registry.bundle import ModelBundle

    bundle = ModelBundle.load(home / "bundle")
    frame = pd.DataFrame(rows[:1000])
    features = bundle.view.compute(frame).to_numpy(dtype="float64")
    booster = bundle.estimator.booster  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for key, fn in (
        ("raw_bundle_rows_per_s", lambda: bundle.predict(frame)),
        ("raw_booster_rows_per_s", lambda: booster.predict(features, num_threads=1)),
    ):
        fn()
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            fn()
            n += 1
        out[key] = n * len(frame) / (time.perf_counter() - started)
    one = pd.DataFrame(rows[:1])
    started = time.perf_counter()
    for _ in range(50):
        bundle.predict(one)
    out["raw_bundle_one_row_ms"] = (time.perf_counter() - started) / 50 * 1000
    return out


# --------------------------------------------------------------------------- servers (child processes)


def fastapi_server(home: Path, port: int) -> None:
    import numpy as np
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from raycore.registry.bundle import ModelBundle

    bundle = ModelBundle.load(home / "bundle")
    booster = bundle.estimator.booster  # type: ignore[attr-defined]
    names = list(bundle.view.feature_names)
    api = FastAPI()

    @api.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        rows = body["inputs"]
        rows = [rows] if isinstance(rows, dict) else rows
        return JSONResponse(
            {"predictions": np.asarray(bundle.predict(pd.DataFrame(rows))).tolist()}
        )

    @api.post("/predict_features")
    async def predict_features(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        rows = body["inputs"]
        rows = [rows] if isinstance(rows, dict) else rows
        x = np.asarray([[r[n] for n in names] for r in rows], dtype="float64")
        return JSONResponse({"predictions": booster.predict(x, num_threads=1).tolist()})

    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_server(home: Path, port: int, attempt: str, tracking_uri: str) -> None:
    import ray
    from ray import serve

    from raycore.serving.app import AppArgs, build_app
    from raycore.serving.runner import wait_ready
    from raycore.specs.serving import ServingSpec

    _, app_over, spec_over = ATTEMPTS[attempt]
    spec = ServingSpec(**{"multiplexed": False, "max_batch_size": 64, "max_ongoing_requests": 128,
                          "target_ongoing_requests": 64, "max_queued_requests": 1024, "replica_cpus": 0.5, **spec_over})  # fmt: skip
    args = AppArgs(
        models=[NAME], tracking_uri=tracking_uri, home=str(home), serving={NAME: spec},
        replica_cpus=0.5, max_ongoing_requests=512, **app_over,
    )  # fmt: skip
    proxy_port = port
    if os.environ.get("FOUNDRY_SERVE_INGRESS") == "direct":  # what `foundry serve` does with it
        from raycore.runtime.ray_runtime import direct_ingress_env
        from raycore.settings import FoundrySettings

        os.environ.update(direct_ingress_env(FoundrySettings.load(home=str(home), serve_port=port)))
        proxy_port = free_port()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    serve.start(http_options={"host": "127.0.0.1", "port": proxy_port})
    serve.run(build_app(args), name="foundry", route_prefix="/")
    wait_ready(f"http://127.0.0.1:{port}", timeout_s=120)
    print("READY", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    serve.shutdown()
    ray.shutdown()


# --------------------------------------------------------------------------- load generator (child process)


async def _load(
    url: str, bodies: list[bytes], clients: int, seconds: float, warmup: float
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds
    headers = {"content-type": "application/json"}

    async def loop(session: aiohttp.ClientSession, k: int) -> None:
        i = k
        while True:
            sent = time.perf_counter()
            if sent >= stop:
                return
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    await r.read()
                    status = r.status
            except aiohttp.ClientError:
                status = 599
            done = time.perf_counter()
            i += clients
            if sent >= measure_from:
                latencies.append((done - sent) * 1000.0)
                statuses[status] = statuses.get(status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        await asyncio.gather(*(loop(session, k) for k in range(clients)))
    elapsed = max(time.perf_counter() - measure_from, 1e-9)
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            if latencies
            else float("nan")
        )

    ok = statuses.get(200, 0)
    return {"rps": ok / elapsed, "requests": len(latencies), "ok": ok, "statuses": statuses,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}  # fmt: skip


def run_load(
    url: str, body_file: Path, *, clients: int, seconds: float, warmup: float
) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", url, str(body_file), str(clients), str(seconds), str(warmup)],
        capture_output=True, text=True, check=True, timeout=seconds + warmup + 120,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_port(port: int, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port} after {timeout:.0f}s")


def _drain(stream: Any) -> None:
    for _ in stream:  # a child blocked on a full stdout pipe would stall its server
        pass


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="the default topology only, shorter loads"
    )
    parser.add_argument(
        "--attempts",
        nargs="*",
        default=None,
        help=f"Serve attempts to run, the first is ours (of {', '.join(ATTEMPTS)})",
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--seconds", type=float, default=None, help="measured seconds per load (default 5, quick 4)"
    )
    args = parser.parse_args()
    seconds = args.seconds or (4.0 if args.quick else 5.0)
    warmup = 1.0 if args.quick else 1.5
    attempts = args.attempts or (QUICK if args.quick else DEFAULT)
    unknown = [a for a in attempts if a not in ATTEMPTS]
    if unknown:
        raise SystemExit(f"unknown attempt(s) {unknown}; choose from {list(ATTEMPTS)}")

    load_at_start = list(os.getloadavg())
    home = Path(tempfile.mkdtemp(prefix="foundry-bench-serving-"))
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    t0 = time.perf_counter()
    model = train_and_register(home, rows=5_000 if args.quick else 10_000)
    rows = synthetic_rows(1000, seed=2)
    single = home / "single.json"
    single.write_text(json.dumps([json.dumps({"inputs": r}) for r in rows[:256]]))
    batch = home / "batch.json"
    batch.write_text(json.dumps([json.dumps({"inputs": rows})]))
    raw = measure_raw(home, rows, seconds=2.0 if args.quick else 4.0)
    print(f"model ready in {time.perf_counter() - t0:.1f}s; raw {raw}", file=sys.stderr)

    results: dict[str, dict[str, Any]] = {}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--fastapi", str(home), str(port)], stdin=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_port(port, proc, 60)
        base = f"http://127.0.0.1:{port}"
        features = home / "features.json"
        import pandas as pd

        from raycore.registry.bundle import ModelBundle

        bundle = ModelBundle.load(home / "bundle")
        feats = bundle.view.compute(pd.DataFrame(rows[:256]))
        features.write_text(
            json.dumps([json.dumps({"inputs": r}) for r in feats.to_dict("records")])
        )
        results["fastapi"] = run_load(
            f"{base}/predict", single, clients=args.clients, seconds=seconds, warmup=warmup
        )
        results["fastapi_booster"] = run_load(
            f"{base}/predict_features",
            features,
            clients=args.clients,
            seconds=seconds,
            warmup=warmup,
        )
        results["fastapi_batch"] = run_load(
            f"{base}/predict", batch, clients=2, seconds=seconds, warmup=warmup
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    for key in ("fastapi", "fastapi_booster", "fastapi_batch"):
        print(f"{key}: {results[key]}", file=sys.stderr)

    for attempt in attempts:
        env = {**os.environ, **ATTEMPTS[attempt][0]}
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(home), str(port), attempt, model["tracking_uri"]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("READY"):
                    break
            else:
                raise RuntimeError(
                    f"Serve attempt {attempt} did not start: {''.join(lines[-5:])!r}"
                )
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            url = f"http://127.0.0.1:{port}/v1/models/{NAME}/predict"
            results[attempt] = run_load(
                url, single, clients=args.clients, seconds=seconds, warmup=warmup
            )
            results[f"{attempt}_batch"] = run_load(
                url, batch, clients=2, seconds=seconds, warmup=warmup
            )
        except Exception as exc:  # an attempt that cannot run is reported, not fatal
            results[attempt] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            _stop(proc)
        print(
            f"{attempt}: {results[attempt]} / batch {results.get(f'{attempt}_batch')}",
            file=sys.stderr,
        )

    # Raw rows/s again, after the loads: the box is shared, so the ratio uses the mean of both.
    again = measure_raw(home, rows, seconds=2.0 if args.quick else 4.0)
    for key in ("raw_bundle_rows_per_s", "raw_booster_rows_per_s"):
        raw[f"{key}_before"], raw[f"{key}_after"] = raw[key], again[key]
        raw[key] = (raw[key] + again[key]) / 2
    ours = results[attempts[0]]
    ours_batch = results.get(f"{attempts[0]}_batch", {})
    metrics: dict[str, float] = {
        "single_row_throughput_vs_fastapi": ours.get("rps", 0.0) / results["fastapi"]["rps"],
        "single_row_p99_ms": ours.get("p99_ms", float("nan")),
        "batch_rows_per_s_vs_raw": ours_batch.get("rps", 0.0) * 1000 / raw["raw_bundle_rows_per_s"],
        "single_row_throughput_vs_fastapi_booster_only": ours.get("rps", 0.0)
        / results["fastapi_booster"]["rps"],
        "batch_rows_per_s_vs_raw_booster": ours_batch.get("rps", 0.0)
        * 1000
        / raw["raw_booster_rows_per_s"],
        "fastapi_rps": results["fastapi"]["rps"],
        "fastapi_p99_ms": results["fastapi"]["p99_ms"],
        "fastapi_booster_rps": results["fastapi_booster"]["rps"],
        "fastapi_batch_rows_per_s": results["fastapi_batch"]["rps"] * 1000,
        **raw,
    }
    for attempt in attempts:
        r, b = results[attempt], results.get(f"{attempt}_batch", {})
        # The goal ratios for every attempt, not only ours (e.g. direct ingress, an option of the app).
        metrics[f"{attempt}_throughput_vs_fastapi"] = r.get("rps", 0.0) / results["fastapi"]["rps"]
        metrics[f"{attempt}_batch_vs_raw"] = b.get("rps", 0.0) * 1000 / raw["raw_bundle_rows_per_s"]
        metrics[f"{attempt}_rps"] = r.get("rps", float("nan"))
        metrics[f"{attempt}_p50_ms"] = r.get("p50_ms", float("nan"))
        metrics[f"{attempt}_p99_ms"] = r.get("p99_ms", float("nan"))
        metrics[f"{attempt}_batch_rows_per_s"] = b.get("rps", float("nan")) * 1000
        metrics[f"{attempt}_non_200"] = float(r.get("requests", 0) - r.get("ok", 0))
    params = {"loadavg_at_start": load_at_start, "model": f"lightgbm 200 trees x 63 leaves, view {VIEW} ({model['features']} features)",
              "clients": args.clients, "seconds": seconds, "warmup_s": warmup, "batch_rows": 1000,
              "batch_clients": 2, "attempts": attempts, "ours": attempts[0], "quick": args.quick}  # fmt: skip
    report(metrics, params, results)
    shutil.rmtree(home, ignore_errors=True)


def report(metrics: dict[str, float], params: dict[str, Any], results: dict[str, Any]) -> None:
    import ray
    from rich.console import Console
    from rich.table import Table

    table = Table(title="benchmark: serving")
    for col in ("server", "req/s", "p50 ms", "p99 ms", "1,000-row req: rows/s", "non-200"):
        table.add_column(col, justify="right" if col != "server" else "left")
    for key, r in results.items():
        if key.endswith("_batch"):
            continue
        b = results.get(f"{key}_batch", {})
        if "error" in r:
            table.add_row(key, r["error"][:60], "", "", "", "")
            continue
        table.add_row(
            key, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
            f"{b['rps'] * 1000:.0f}" if b.get("rps") else "", str(r["requests"] - r["ok"]),
        )  # fmt: skip
    Console().print(table)
    summary = Table(title="goals")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for key in ("single_row_throughput_vs_fastapi", "single_row_p99_ms", "batch_rows_per_s_vs_raw",
                "single_row_throughput_vs_fastapi_booster_only", "raw_bundle_rows_per_s", "raw_booster_rows_per_s"):  # fmt: skip
        summary.add_row(key, f"{metrics[key]:.3f}")
    Console().print(summary)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
               "loadavg": list(os.getloadavg())}  # fmt: skip
    out = {"benchmark": "serving", "machine": machine, "params": params, "metrics": metrics}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        url, body_file, clients, secs, warm = sys.argv[2:7]
        bodies = [b.encode() for b in json.loads(Path(body_file).read_text())]
        print(json.dumps(asyncio.run(_load(url, bodies, int(clients), float(secs), float(warm)))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--fastapi":
        fastapi_server(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_server(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
