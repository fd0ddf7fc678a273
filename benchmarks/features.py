"""Benchmark: point-in-time join and online lookups of the feature layer.

    join_speedup_vs_merge_asof   wall(pandas merge_asof baseline) / wall(our point-in-time join),
                                 the store-sales training set at scale medium (same inputs, same run)
    online_p50_ms_1_entity       online lookup latency, one entity, embedded SQLite store
    online_p99_ms_1_entity
    online_p50_ms_100_entities   one lookup of 100 entities
    online_p99_ms_100_entities
    (and the same for Redis when a redis-server binary is installed)

The baseline is what a careful pandas user writes: sort both sides, then
``pd.merge_asof(left_on=as_of, right_on=available_at, by=entity)``. It does
not handle late rows whose event time precedes a newer row's (ours does) and
it returns rows in time order (ours keeps the label order). Both are timed as
the median of interleaved repeats; the outputs are checked equal on these
inputs, where every feature row arrives in event order.

Usage:
    python benchmarks/features.py            # scale medium
    python benchmarks/features.py --quick    # scale small, fewer repeats
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from raycore.data.world import WorldConfig, generate_world
from raycore.features import (
    AS_OF,
    SqliteOnlineStore,
    get_feature_view,
    materialize_online,
    open_online_store,
)
from raycore.features.pit import point_in_time_join
from raycore.features.views.store_sales import STORE_WEEKLY_STATS

STORE_SALES_LAGS = get_feature_view("store_sales_lags")


def baseline(labels: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    left = labels.sort_values(AS_OF, kind="stable")
    right = table.sort_values("available_at", kind="stable")
    return pd.merge_asof(left, right, left_on=AS_OF, right_on="available_at", by="store_id")


def ours(labels: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    return point_in_time_join(
        labels, table, entity=["store_id"], as_of=AS_OF, event_time="origin_week",
        available_time="available_at", columns=[c for c in table.columns if c not in ("store_id", "available_at")],
    )


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def lookups(store, keys: list[int], batch: int, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    lat = []
    name = STORE_WEEKLY_STATS.store_name
    for _ in range(n):
        chosen = [(int(k),) for k in rng.choice(keys, batch, replace=False)]
        t = time.perf_counter()
        got = store.read(name, chosen)
        lat.append((time.perf_counter() - t) * 1000)
        assert all(g is not None for g in got)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale = "small" if args.quick else "medium"
    repeats = 3 if args.quick else 7
    n_lookups = 500 if args.quick else 3000

    sales = generate_world(WorldConfig(scale=scale)).tables["store_sales_weekly"]  # type: ignore[arg-type]
    table = STORE_WEEKLY_STATS.materialize(sales)
    assert STORE_SALES_LAGS.label_rows is not None
    labels = STORE_SALES_LAGS.label_rows(sales)

    mine, base = ours(labels, table), baseline(labels, table)
    check = mine.merge(base[["store_id", "week_start", AS_OF, "rev_mean_13"]], on=["store_id", "week_start", AS_OF],
                       suffixes=("", "_base"), validate="one_to_one")
    np.testing.assert_allclose(check["rev_mean_13"], check["rev_mean_13_base"], equal_nan=True)

    walls_ours, walls_base = [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both
        walls_ours.append(timed(lambda: ours(labels, table), 1))
        walls_base.append(timed(lambda: baseline(labels, table), 1))
    t_ours, t_base = statistics.median(walls_ours), statistics.median(walls_base)

    metrics: dict[str, float] = {
        "join_speedup_vs_merge_asof": round(t_base / t_ours, 3),
        "join_rows_per_s": round(len(labels) / t_ours, 1),
        "merge_asof_rows_per_s": round(len(labels) / t_base, 1),
        "join_wall_s": round(t_ours, 4),
        "merge_asof_wall_s": round(t_base, 4),
    }
    keys = sorted(int(k) for k in table["store_id"].unique())
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"": SqliteOnlineStore(Path(tmp) / "online.db")}
        redis = start_redis()
        if redis is not None:
            stores["redis_"] = open_online_store(uri=redis[1], home=Path(tmp))
        try:
            for prefix, store in stores.items():
                materialize_online(STORE_WEEKLY_STATS, table, store=store)
                for batch, label in ((1, "1_entity"), (100, "100_entities")):
                    p50, p99 = lookups(store, keys, batch, n_lookups)
                    metrics[f"{prefix}online_p50_ms_{label}"] = round(p50, 4)
                    metrics[f"{prefix}online_p99_ms_{label}"] = round(p99, 4)
                store.close()
        finally:
            if redis is not None:
                redis[0].terminate()

    rows = [(k, f"{v:,.4g}") for k, v in metrics.items()]
    report(
        "features",
        params={"scale": scale, "label_rows": len(labels), "feature_rows": len(table), "entities": len(keys),
                "repeats": repeats, "lookups": n_lookups},
        metrics=metrics,
        rows=rows,
    )


if __name__ == "__main__":
    main()
