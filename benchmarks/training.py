"""Benchmark: LightGBM through our Ray paths vs native ``lgb.train``, same threads.

Our two paths, both ``raycore.training.backends.fit_estimator``:
- ``ray_train``: a Ray Train ``LightGBMTrainer`` run per fit (single ``foundry train``,
  ``ray job submit``, Tune trials);
- ``warm``: inside ``warm_training()`` (``foundry train --all``): the same shards,
  params and checkpoints on warm worker actors kept between fits.

    slowdown_vs_native     wall(warm path) / wall(native lgb.train), 2M x 50 rows, binary, same threads
    fixed_overhead_s       wall(warm path) - wall(native) on a 1,000-row dataset, workers warm
    auc_delta              abs(AUC warm - AUC native) on the same held-out rows
    *_ray_train            the same figures for one Ray Train run per fit
    warm_pool_start_s      the first fit of a batch, which starts the warm workers

Both sides start from the same parquet file and end with a booster in the
caller's hands: native reads the file and calls ``lgb.train`` with
``num_threads`` = the CPUs our path reserves; ours calls
``raycore.training.backends.fit_estimator`` (Ray Train ``LightGBMTrainer``,
workers reading their own shard, checkpoint from rank 0). The Ray cluster is
started once before timing (a foundry keeps it up between jobs); its start-up
is reported separately as ``ray_init_s``. Runs are interleaved.

Usage:
    python benchmarks/training.py            # 2M rows
    python benchmarks/training.py --quick    # 200k rows
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from raycore.specs import ResourcesSpec
from raycore.training.ray_lightgbm import LABEL_COLUMN

N_FEATURES = 50
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 63,
    "min_data_in_leaf": 50,
    "seed": 7,
    "verbose": -1,
    "deterministic": True,
}


def make_data(n: int, seed: int) -> pd.DataFrame:
    """Binary labels from a known logit with interactions, 50 float32 features."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    w = np.linspace(1.0, 0.02, N_FEATURES)
    logit = x @ w * 0.4 + 0.8 * x[:, 0] * x[:, 1] - 0.6 * np.abs(x[:, 2]) + 0.5 * (x[:, 3] > 0.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype("float32")
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(N_FEATURES)])
    frame[LABEL_COLUMN] = y
    return frame


def native(path: Path, threads: int, rounds: int) -> tuple[float, lgb.Booster]:
    started = time.perf_counter()
    frame = pq.read_table(path).to_pandas()
    y = frame.pop(LABEL_COLUMN)
    booster = lgb.train(
        {**PARAMS, "num_threads": threads}, lgb.Dataset(frame, label=y), num_boost_round=rounds
    )
    return time.perf_counter() - started, booster


def ours(
    path: Path, workers: int, threads: int, rounds: int, storage: Path, tag: str
) -> tuple[float, object]:
    """One fit through fit_estimator; inside warm_training() it runs on the warm pool."""
    from raycore.training.backends import fit_estimator

    started = time.perf_counter()
    est = fit_estimator(
        family="lightgbm",
        task="binary",
        objective="binary",
        params=dict(PARAMS),
        num_boost_round=rounds,
        train_path=path,
        resources=ResourcesSpec(num_workers=workers, cpus_per_worker=threads // workers),
        storage_path=storage,
        run_name=f"bench-{tag}-{time.time_ns()}",
    )
    return time.perf_counter() - started, est


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 2_000_000)
    repeats = args.repeats or 2
    threads = 2

    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=threads, include_dashboard=True, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        big, tiny = tmpdir / "big.parquet", tmpdir / "tiny.parquet"
        make_data(rows, seed=1).to_parquet(big, index=False)
        make_data(1_000, seed=2).to_parquet(tiny, index=False)
        hold = make_data(200_000, seed=3)
        y_hold = hold.pop(LABEL_COLUMN).to_numpy()

        from raycore.training.warm_pool import warm_training

        tiny_native, tiny_ours, tiny_warm = [], [], []
        with warm_training():
            warm_start = ours(tiny, 1, threads, 20, tmpdir / "ray", "warmup")[0]
            for _ in range(3):
                tiny_native.append(native(tiny, threads, 20)[0])
                tiny_warm.append(ours(tiny, 1, threads, 20, tmpdir / "ray", "tiny-warm")[0])
        for _ in range(3):
            tiny_ours.append(ours(tiny, 1, threads, 20, tmpdir / "ray", "tiny")[0])

        configs = {"1x2": (1, threads), "2x1": (2, threads)}
        keys = [*configs, *(f"warm-{k}" for k in configs)]
        walls: dict[str, list[float]] = {"native": [], **{k: [] for k in keys}}
        aucs: dict[str, float] = {}
        for _ in range(repeats):
            wall, booster = native(big, threads, args.rounds)
            walls["native"].append(wall)
            aucs["native"] = float(
                roc_auc_score(y_hold, booster.predict(hold, num_threads=threads))
            )
            for key, (workers, thr) in configs.items():
                wall, est = ours(big, workers, thr, args.rounds, tmpdir / "ray", key)
                walls[key].append(wall)
                aucs[key] = float(roc_auc_score(y_hold, est.predict(hold)))  # type: ignore[attr-defined]
                with warm_training():  # warm the workers on the tiny file, then time the big fit
                    ours(tiny, workers, thr, 5, tmpdir / "ray", f"warmup-{key}")
                    wall, est = ours(big, workers, thr, args.rounds, tmpdir / "ray", f"warm-{key}")
                walls[f"warm-{key}"].append(wall)
                aucs[f"warm-{key}"] = float(roc_auc_score(y_hold, est.predict(hold)))  # type: ignore[attr-defined]
    ray.shutdown()

    med = {k: statistics.median(v) for k, v in walls.items()}
    native_tiny = statistics.median(tiny_native)
    best = min(keys, key=lambda k: med[k])
    metrics = {
        "slowdown_vs_native": round(med["warm-1x2"] / med["native"], 3),
        "slowdown_vs_native_2_workers": round(med["warm-2x1"] / med["native"], 3),
        "fixed_overhead_s": round(statistics.median(tiny_warm) - native_tiny, 2),
        "auc_delta": round(abs(aucs["warm-1x2"] - aucs["native"]), 5),
        "auc_delta_2_workers": round(abs(aucs["warm-2x1"] - aucs["native"]), 5),
        "slowdown_vs_native_ray_train": round(med["1x2"] / med["native"], 3),
        "slowdown_vs_native_2_workers_ray_train": round(med["2x1"] / med["native"], 3),
        "fixed_overhead_s_ray_train": round(statistics.median(tiny_ours) - native_tiny, 2),
        "auc_delta_ray_train": round(abs(aucs["1x2"] - aucs["native"]), 5),
        "native_wall_s": round(med["native"], 2),
        **{f"wall_s_{k}": round(med[k], 2) for k in keys},
        "tiny_native_s": round(native_tiny, 3),
        "tiny_warm_s": round(statistics.median(tiny_warm), 3),
        "tiny_ray_train_s": round(statistics.median(tiny_ours), 3),
        "warm_pool_start_s": round(warm_start, 2),
        "auc_native": round(aucs["native"], 5),
        "ray_init_s": round(ray_init_s, 2),
    }
    report(
        "training",
        params={
            "rows": rows,
            "features": N_FEATURES,
            "rounds": args.rounds,
            "threads": threads,
            "repeats": repeats,
            "best_config": best,
        },
        metrics=metrics,
        rows=[(k, str(v)) for k, v in metrics.items()],
    )


if __name__ == "__main__":
    main()
