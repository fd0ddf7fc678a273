"""Benchmark: the latency a served explanation adds, in one run.

    explain_overhead_ratio   p50 latency of a served single-row prediction WITH top-5 explanations
                             (exact TreeSHAP) / p50 WITHOUT, same app, same rows, interleaved

The model is churn_risk (mdl-005, binary LightGBM on 41 model features, online
feature lookup for three tables), fitted natively with its conformal
calibrator, registered in a temporary FOUNDRY_HOME and served through the real
app on loopback. Requests alternate with/without explanation so load changes
hit both equally; the client sends one request at a time (latency, not
throughput). In-process figures (``bundle.predict`` vs ``explain_rows`` on the
same assembled row) are reported next to the served ones.

Usage:
    python benchmarks/explain.py            # 400 requests each
    python benchmarks/explain.py --quick    # 100 each
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import pandas as pd

from benchmarks._report import report


def _serve(home: Path) -> tuple[str, list[dict[str, object]], object]:
    from raycore.catalog import load_catalog
    from raycore.serving.runner import start_serving
    from raycore.settings import FoundrySettings
    from tests.integration.native_models import register_native

    spec = load_catalog().get("mdl-005")
    settings = FoundrySettings(
        home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}", serve_port=18411
    )
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.03, "seed": 7}
    _, bundle, prepared = register_native(
        spec, settings=settings, params=params, rounds=300, calibrate=True
    )
    holdout = prepared.holdout_rows.head(200)
    rows = [
        {"customer_id": int(r.customer_id), "as_of": str(pd.Timestamp(r.as_of).date())}
        for r in holdout.itertuples()
    ]
    endpoint = start_serving(settings=settings, models=[spec.name])
    return f"{endpoint}/v1/models/{spec.name}/predict", rows, bundle


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="Requests per arm.")
    parser.add_argument("--quick", action="store_true", help="100 requests per arm.")
    args = parser.parse_args()
    n = 100 if args.quick else args.requests
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        url, rows, bundle = _serve(Path(tmp))
        plain: list[float] = []
        explained: list[float] = []
        with httpx.Client(timeout=30) as client:
            for i in range(20):  # warm up both paths
                client.post(url, json={"inputs": rows[i % len(rows)], "parameters": {"explain": 5}})
                client.post(url, json={"inputs": rows[i % len(rows)]})
            for i in range(n):
                body = {"inputs": rows[i % len(rows)]}
                order = [(plain, body), (explained, {**body, "parameters": {"explain": 5}})]
                if i % 2:
                    order.reverse()
                for sink, payload in order:
                    started = time.perf_counter()
                    answer = client.post(url, json=payload)
                    sink.append((time.perf_counter() - started) * 1000.0)
                    answer.raise_for_status()
        from raycore.explain.contributions import explain_rows
        from raycore.features.assembly import assemble_online
        from raycore.settings import FoundrySettings

        online = FoundrySettings(home=Path(tmp)).online_store()
        try:
            raw = assemble_online(bundle.view, pd.DataFrame([rows[0]]), online=online)  # type: ignore[attr-defined]
        finally:
            online.close()
        t_pred = _timeit(lambda: bundle.predict(raw))  # type: ignore[attr-defined]
        t_expl = _timeit(lambda: explain_rows(bundle, raw).records(5))  # type: ignore[arg-type]
        from raycore.serving.runner import stop_serving

        stop_serving()
    p50_plain, p50_expl = statistics.median(plain), statistics.median(explained)
    metrics = {
        "explain_overhead_ratio": round(p50_expl / p50_plain, 3),
        "p50_ms_without": round(p50_plain, 2),
        "p50_ms_with": round(p50_expl, 2),
        "p99_ms_without": round(float(np.percentile(plain, 99)), 2),
        "p99_ms_with": round(float(np.percentile(explained, 99)), 2),
        "inprocess_predict_ms": round(t_pred, 3),
        "inprocess_explain_ms": round(t_expl, 3),
    }
    report(
        "explain",
        params={
            "model": "mdl-005 churn_risk (lightgbm, 300 rounds)",
            "requests_per_arm": n,
            "top_k": 5,
        },
        metrics=metrics,
        rows=[(k, str(v)) for k, v in metrics.items()],
    )


def _timeit(fn: object, repeats: int = 50) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


if __name__ == "__main__":
    main()
