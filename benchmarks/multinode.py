"""Benchmark: the foundry on a two-node Ray cluster on one machine, and what a node failure costs.

    job_wall_1_node_s          `ray job submit` of train_jobs/train.py (1 Ray Train worker) on the head alone
    job_wall_2_nodes_s         the same job with 2 workers, one per node (placement checked by node id)
    job_speedup_2_vs_1         job_wall_1_node_s / job_wall_2_nodes_s
    serve_recovery_s           from the second node's death (SIGKILL of its processes) until the
                               last failed request: requests succeed from then on (0 if none failed)
    serve_replicas_back_after_rejoin_s
                               from a replacement node_b starting until Serve runs 2 replicas again
    serve_failed_requests      requests that failed (error status or no answer in 5 s) after the kill
    node_death_detected_s      from the kill until the GCS lists the node dead
    job_wall_after_loss_s      the 1-worker job again, on the head node that is left (must succeed)
    job_speedup_2_vs_1_after_loss  job_wall_after_loss_s / job_wall_2_nodes_s: the 1-node job once
                               the cluster is warm (the first job also pays the first working_dir
                               upload and runtime-env setup on the head)
    serve_max_ms_after_kill    the slowest request sent around or after the kill (a stall shows here)

The cluster (``raycore.runtime.local_cluster``): ``ray start --head`` with 1 CPU
and the custom resource ``node_a``, a second ``ray start`` with 1 CPU and
``node_b``; token authentication on with a token generated for the cluster; its
own ports, session folder and FOUNDRY_HOME, so other Ray instances on the box are
untouched. The nodes run the project from this checkout (``PYTHONPATH``), as the
nodes of a real cluster have it installed. Jobs go through ``ray job submit
--working-dir .``; Serve through ``serve deploy`` of a config like
serve_apps/foundry.yaml with 2 ingress replicas and at most one per node
(``max_replicas_per_node: 1``; the replica nodes are checked). While node_b is
gone the head's replica serves alone (the second cannot be placed); when a
replacement node_b joins, Serve places it there. The proxy runs on the head
only: two nodes on one machine cannot both bind the HTTP port. Replicas reserve
no CPU so the last job fits next to them on the 1-CPU head.

Both nodes share the machine's 2 cores: 2 workers on 2 nodes are 2 processes
on 2 cores, 1 worker on 1 node is 1 process. The data world is generated before
any timing (the first job would otherwise pay for it). Every job trains and
registers the model (the conformal calibration fits twice per job).

Usage:
    python benchmarks/multinode.py            # mdl-001, ~5 min on 2 shared cores
    python benchmarks/multinode.py --quick    # shorter load phases
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raycore.catalog import load_catalog  # noqa: E402
from raycore.runtime.local_cluster import JobRun, LocalCluster, free_port  # noqa: E402
from raycore.settings import FoundrySettings  # noqa: E402

TRAIN_WORKER = "RayTrainWorker"
APP = "foundry"
REPLICA_PREFIX = f"ServeReplica:{APP}:FoundryServer"
REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Shot:
    """One request of the load loop: when it was sent and answered, and whether it succeeded."""

    sent: float
    done: float
    ok: bool
    status: str


class Load:
    """``clients`` threads, each sending requests one after another; every request is recorded
    (no retries: a failure counts)."""

    def __init__(self, url: str, body: dict[str, Any], *, clients: int) -> None:
        self.url, self.body = url, body
        self.shots: list[Shot] = []  # list.append is atomic: the threads share it
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.post(self.url, json=self.body)
                    ok, status = r.status_code == 200, str(r.status_code)
                except httpx.HTTPError as exc:
                    ok, status = False, type(exc).__name__
                self.shots.append(Shot(sent, time.monotonic(), ok, status))
                if not ok:
                    time.sleep(0.05)  # a failing endpoint answers at once: do not spin


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else 0.0


def train_entrypoint(model: str, workers: int) -> list[str]:
    return ["python", "train_jobs/train.py", "--model", model, "--workers", str(workers)]


def run_job(cluster: LocalCluster, *, model: str, workers: int, home: Path, label: str) -> JobRun:
    run = cluster.submit_job(
        train_entrypoint(model, workers),
        working_dir=ROOT,
        env_vars={"FOUNDRY_HOME": str(home)},
        excludes=[".git", "benchmarks/results"],
    )
    if not run.succeeded:
        raise SystemExit(
            f"{label}: job {run.submission_id} ended {run.status} (exit {run.returncode}):\n{run.output[-4000:]}"
        )
    print(f"{label}: {run.seconds:.1f}s ({run.submission_id})", flush=True)
    return run


def worker_nodes(cluster: LocalCluster, run: JobRun) -> list[list[str]]:
    """The node names of the job's Ray Train workers, per Ray Train run (one placement group each).

    A foundry training job fits twice (the conformal calibration fit, then the final one).
    """
    groups: dict[str, list[str]] = {}
    for row in cluster.actors(class_name=TRAIN_WORKER):
        if row.get("job_id") == run.job_id:
            name = str(cluster.node_name(row["node_id"]))
            groups.setdefault(str(row.get("placement_group_id")), []).append(name)
    return sorted(sorted(nodes) for nodes in groups.values())


def replica_nodes(cluster: LocalCluster) -> list[str]:
    """The node names of the app's live ingress replicas."""
    rows = [r for r in cluster.actors(prefix=REPLICA_PREFIX) if r.get("state") == "ALIVE"]
    return sorted(str(cluster.node_name(r["node_id"])) for r in rows)


def serve_config(*, home: Path, model_name: str, port: int) -> dict[str, Any]:
    """serve_apps/foundry.yaml for this cluster: 2 ingress replicas, one per node, the proxy on the head."""
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": port},
        "applications": [
            {
                "name": APP,
                "route_prefix": "/",
                "import_path": "serve_apps.foundry_app:app_builder",
                "args": {
                    "models": [model_name],
                    "alias": "champion",
                    "tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
                    "home": str(home),
                    "placement": "ingress",
                    "num_replicas": 2,
                    "replica_cpus": 0,
                    "prediction_log": False,
                },
                # Serve's default SPREAD is best effort (a first run put both replicas on
                # node_b): at most one replica per node makes "one on each" a guarantee.
                "deployments": [{"name": "FoundryServer", "max_replicas_per_node": 1}],
            }
        ],
    }


def wait_for(what: str, check: Any, *, timeout_s: float, every_s: float = 0.25) -> float:
    """Poll ``check()`` until it is true; return the seconds it took."""
    started = time.monotonic()
    last: object = None
    while time.monotonic() - started < timeout_s:
        try:
            if check():
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(every_s)
    raise SystemExit(f"{what}: not reached in {timeout_s:.0f}s (last error: {last!r})")


def request_body(settings: FoundrySettings) -> dict[str, Any]:
    """One mdl-001 request: a store the online store knows, two weeks after its last week."""
    import pandas as pd

    store = settings.online_store()
    try:
        found = store.read("store_weekly_stats_v1", [(3,)])[0]
    finally:
        store.close()
    if found is None:
        raise SystemExit(
            "the online store has no features for store 3: did the training job materialise them?"
        )
    week = pd.Timestamp(found["origin_week"]) + pd.Timedelta(weeks=2)
    return {"inputs": {"store_id": 3, "week_start": week.date().isoformat(), "on_promo": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter load phases")
    parser.add_argument(
        "--model", default="mdl-001", help="catalog model (its serving inputs must be mdl-001's)"
    )
    parser.add_argument(
        "--clients", type=int, default=4, help="concurrent request loops during the failure"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the cluster folder (logs) afterwards"
    )
    args = parser.parse_args()
    if args.clients < 1:
        parser.error(f"--clients must be >= 1, got {args.clients}")
    before_s, after_s = (2.0, 3.0) if args.quick else (4.0, 6.0)

    spec = load_catalog().get(args.model)
    root = Path(tempfile.mkdtemp(prefix="fmn-", dir="/tmp"))
    home = root / "home"
    settings = FoundrySettings(home=home)
    started = time.monotonic()
    from raycore.training.pipeline import prepare_training

    prepare_training(spec, settings=settings)  # generate the data world before any timing
    print(f"data world ready in {time.monotonic() - started:.1f}s under {home}", flush=True)

    env = {"FOUNDRY_HOME": str(home), "PYTHONPATH": str(ROOT)}
    cluster = LocalCluster(root=root / "c", env=env)
    metrics: dict[str, float] = {}
    try:
        t = time.monotonic()
        cluster.start_head(num_cpus=1, resources={"node_a": 1})
        print(f"head up in {time.monotonic() - t:.1f}s", flush=True)
        one = run_job(cluster, model=args.model, workers=1, home=home, label="1 node, 1 worker")
        placed_one = worker_nodes(cluster, one)

        t = time.monotonic()
        cluster.add_node("node_b", num_cpus=1, resources={"node_b": 1})
        metrics["node_join_s"] = time.monotonic() - t
        two = run_job(cluster, model=args.model, workers=2, home=home, label="2 nodes, 2 workers")
        placed_two = worker_nodes(cluster, two)
        if not placed_two or any(nodes != ["node_a", "node_b"] for nodes in placed_two):
            raise SystemExit(f"the 2-worker job did not span both nodes: workers on {placed_two}")

        port = free_port()
        cluster.serve_deploy(serve_config(home=home, model_name=spec.name, port=port))
        deploy_s = wait_for(
            "2 replicas on 2 nodes",
            lambda: replica_nodes(cluster) == ["node_a", "node_b"],
            timeout_s=240,
        )
        url = f"http://127.0.0.1:{port}/v1/models/{spec.name}/predict"
        body = request_body(settings)
        wait_for(
            "first answer",
            lambda: httpx.post(url, json=body, timeout=10).status_code == 200,
            timeout_s=60,
        )
        print(f"serving on both nodes after {deploy_s:.1f}s", flush=True)

        with Load(url, body, clients=args.clients) as load:
            time.sleep(before_s)
            killed_at = time.monotonic()
            pids = cluster.kill_node("node_b")
            cluster.wait_node_dead("node_b")
            dead_s = time.monotonic() - killed_at
            wait_for(
                "the lost replica gone", lambda: replica_nodes(cluster) == ["node_a"], timeout_s=240
            )
            time.sleep(after_s)
        shots = load.shots
        before = [s for s in shots if s.sent < killed_at]
        after = [s for s in shots if s.done >= killed_at]
        failed = [s for s in after if not s.ok]
        tail = [s for s in after if s.sent >= max((f.done for f in failed), default=killed_at)]
        if len(tail) < 3 or not all(s.ok for s in tail):
            raise SystemExit("serving did not recover: requests still fail at the end of the load")
        print(
            f"node_b killed ({len(pids)} processes); {len(failed)} of {len(after)} requests failed",
            flush=True,
        )

        after_loss = run_job(
            cluster, model=args.model, workers=1, home=home, label="after losing node_b"
        )
        placed_after = worker_nodes(cluster, after_loss)
        if not placed_after or any(set(nodes) != {"node_a"} for nodes in placed_after):
            raise SystemExit(f"the job after the loss ran on {placed_after}, not on the head alone")
        ok_after_job = httpx.post(url, json=body, timeout=10).status_code == 200

        # A replacement machine joins: Serve places the missing replica on it.
        rejoined_at = time.monotonic()
        cluster.add_node("node_b", num_cpus=1, resources={"node_b": 1})
        wait_for(
            "2 replicas again",
            lambda: replica_nodes(cluster) == ["node_a", "node_b"],
            timeout_s=240,
        )
        back_s = time.monotonic() - rejoined_at

        metrics.update(
            job_wall_1_node_s=round(one.seconds, 2),
            job_wall_2_nodes_s=round(two.seconds, 2),
            job_speedup_2_vs_1=round(one.seconds / two.seconds, 3),
            serve_recovery_s=round(max((f.done for f in failed), default=killed_at) - killed_at, 2),
            serve_replicas_back_after_rejoin_s=round(back_s, 2),
            serve_failed_requests=len(failed),
            serve_requests_after_kill=len(after),
            serve_requests_before_kill=len(before),
            serve_ok_after_last_job=float(ok_after_job),
            node_death_detected_s=round(dead_s, 2),
            job_wall_after_loss_s=round(after_loss.seconds, 2),
            serve_deploy_s=round(deploy_s, 2),
            job_speedup_2_vs_1_after_loss=round(after_loss.seconds / two.seconds, 3),
            serve_p50_ms_before_kill=round(
                _percentile([s.done - s.sent for s in before], 50) * 1000, 1
            ),
            serve_max_ms_after_kill=round(
                max((s.done - s.sent for s in after), default=0.0) * 1000, 1
            ),
        )
        metrics["node_join_s"] = round(metrics["node_join_s"], 2)
        statuses = sorted({s.status for s in failed})
    finally:
        cluster.shutdown()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _report import report

    rows = [
        (
            "1 node, 1 worker: job wall",
            f"{metrics['job_wall_1_node_s']:.1f} s  (workers on {placed_one})",
        ),
        (
            "2 nodes, 2 workers: job wall",
            f"{metrics['job_wall_2_nodes_s']:.1f} s  (workers on {placed_two})",
        ),
        ("speed-up 2 nodes vs 1", f"{metrics['job_speedup_2_vs_1']:.2f}x"),
        ("node death seen by the GCS", f"{metrics['node_death_detected_s']:.1f} s after the kill"),
        ("serve: last failed request", f"{metrics['serve_recovery_s']:.1f} s after the kill"),
        (
            "serve: 2nd replica back",
            f"{metrics['serve_replicas_back_after_rejoin_s']:.1f} s after node_b rejoins",
        ),
        ("serve: failed / sent after kill", f"{len(failed)} / {len(after)}  {statuses}"),
        (
            "serve: p50 before / slowest after kill",
            f"{metrics['serve_p50_ms_before_kill']:.0f} ms / {metrics['serve_max_ms_after_kill']:.0f} ms",
        ),
        ("job after the loss (head only)", f"{metrics['job_wall_after_loss_s']:.1f} s"),
    ]
    params = {
        "model": args.model,
        "quick": args.quick,
        "nodes": {"node_a": {"CPU": 1, "head": True}, "node_b": {"CPU": 1}},
        "workers": {"1_node": 1, "2_nodes": 2, "after_loss": 1},
        "serve": {
            "replicas": 2,
            "max_replicas_per_node": 1,
            "replica_cpus": 0,
            "proxy_location": "HeadOnly",
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "clients": args.clients,
        },
        "load_s": {"before_kill": before_s, "after_back": after_s},
        "auth": "token",
        "failed_statuses": statuses,
    }
    report("multinode", params=params, metrics=metrics, rows=rows)


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    main()
