"""Benchmark: our vectorised drift check against Evidently's DataDriftPreset on the same frames.

    speedup_vs_evidently        wall(Evidently DataDriftPreset, defaults) / wall(check_drift), 100k x 50
    verdict_agreement           share of columns where our verdict equals the truth of the injected shift
    evidently_verdict_agreement Evidently's own (default) agreement with the truth
    agreement_with_evidently    share of columns where our verdict equals Evidently's default verdict
    agreement_with_evidently_same_thresholds
                                the same against Evidently run with our effect sizes and thresholds
    rows_scaling, cols_scaling  wall(check) at 2x rows / 1x rows, 2x columns / 1x columns (linear = 2.0)

The frames: a reference of ``rows`` rows and a current window of the same size,
45 numeric columns (normal, lognormal, uniform, Poisson, exponential, binary)
and 5 categorical ones. The truth follows the definition of drift in
``DriftConfig`` (defaults): a numeric column drifts when its distribution moves
by >= 0.05 reference standard deviations (normalised Wasserstein), a
categorical one at Jensen-Shannon distance >= 0.1, any column when its
missing share moves by >= 5 points. Injected shifts sit clearly on one side:

    none        28 numeric + 2 categorical columns, same distribution        truth: no drift
    harmless    8 numeric mean shifts of 0.01-0.02 sigma, 1 categorical
                tilt of 2 points (JS ~0.02)                                   truth: no drift
    small       5 numeric mean shifts of 0.1 sigma (the case in
                ENVIRONMENT.md that Evidently's default half-misses)         truth: drift
    large       0.3 sigma shift, spread x1.3, binary share 0.30 -> 0.36,
                10% of values turned missing; a new category on 10% of rows,
                a 15-point tilt                                              truth: drift

Our check runs against a ``ReferenceProfile`` built once from the reference
(as at training time; its build time is reported apart). Both Evidently runs
get the full reference frame. Timings of our check are medians of repeats.

Usage:
    python benchmarks/drift.py            # 100k x 50
    python benchmarks/drift.py --quick    # 20k x 50, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine

from raycore.monitoring import (
    DriftConfig,
    build_reference_profile,
    check_drift,
    run_evidently_drift,
)

NAME = "drift"
DISTRIBUTIONS = ("normal", "lognormal", "uniform", "poisson", "exponential")


def _draw(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "normal":
        return rng.normal(10.0, 2.0, n)
    if kind == "lognormal":
        return rng.lognormal(3.0, 0.5, n)
    if kind == "uniform":
        return rng.uniform(0.0, 100.0, n)
    if kind == "poisson":
        return rng.poisson(6.0, n).astype(np.float64)
    if kind == "exponential":
        return rng.exponential(5.0, n)
    if kind == "binary":
        return (rng.random(n) < 0.30).astype(np.float64)
    raise ValueError(kind)


def make_frames(
    rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, bool], dict[str, str]]:
    """Reference and current frames, the truth per column and what was injected."""
    rng = np.random.default_rng(seed)
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    truth: dict[str, bool] = {}
    what: dict[str, str] = {}

    def numeric(name: str, kind: str, shift_sigma: float = 0.0, spread: float = 1.0) -> None:
        r, c = _draw(kind, rng, rows), _draw(kind, rng, rows)
        mu, sd = r.mean(), r.std()
        c = mu + spread * (c - mu) + shift_sigma * sd
        ref[name], cur[name] = r, c
        # normalised W1 of a shift is the shift in sigma; of a spread change s * E|X - mu| / sd
        effect = abs(shift_sigma) + abs(spread - 1.0) * np.mean(np.abs(r - mu)) / sd
        truth[name] = bool(effect >= 0.05)
        what[name] = f"{kind} shift {shift_sigma} sd, spread x{spread}"

    i = 0
    for _ in range(28):
        numeric(f"num_{i:02d}", DISTRIBUTIONS[i % 5])
        i += 1
    for shift in (0.01, 0.02, -0.01, -0.02, 0.015, 0.02, 0.01, -0.015):
        numeric(f"num_{i:02d}", DISTRIBUTIONS[i % 5], shift_sigma=shift)
        i += 1
    for _ in range(5):
        numeric(f"num_{i:02d}", DISTRIBUTIONS[i % 5], shift_sigma=0.1)
        i += 1
    numeric(f"num_{i:02d}", "normal", shift_sigma=0.3)
    i += 1
    numeric(f"num_{i:02d}", "normal", spread=1.3)
    i += 1
    name = f"num_{i:02d}"
    ref[name], cur[name] = _draw("binary", rng, rows), (rng.random(rows) < 0.36).astype(np.float64)
    truth[name], what[name] = True, "binary share 0.30 -> 0.36 (normalised W1 0.13)"
    i += 1
    name = f"num_{i:02d}"
    ref[name], cur[name] = _draw("normal", rng, rows), _draw("normal", rng, rows)
    cur[name][rng.random(rows) < 0.10] = np.nan
    truth[name], what[name] = True, "10% of values missing (reference: none)"

    cats = np.array(["a", "b", "c", "d"])
    base = np.array([0.25, 0.25, 0.25, 0.25])
    for j, (probs, new_share, drift, label) in enumerate(
        [
            (base, 0.0, False, "same"),
            (base, 0.0, False, "same"),
            (np.array([0.27, 0.23, 0.25, 0.25]), 0.0, False, "2-point tilt (JS ~0.02)"),
            (base, 0.10, True, "new category 'e' on 10% of rows (JS ~0.19)"),
            (np.array([0.40, 0.10, 0.25, 0.25]), 0.0, True, "15-point tilt (JS ~0.16)"),
        ]
    ):
        name = f"cat_{j}"
        ref[name] = rng.choice(cats, rows, p=base)
        values = rng.choice(cats, rows, p=probs).astype(object)
        values[rng.random(rows) < new_share] = "e"
        cur[name] = values.astype(str)
        truth[name], what[name] = drift, label
    return pd.DataFrame(ref), pd.DataFrame(cur), truth, what


def _median_wall(fn: Any, repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def _scaling_walls(
    reference: pd.DataFrame, current: pd.DataFrame, categorical: list[str], repeats: int
) -> tuple[float, float, float]:
    """Median walls of the check on all, half the rows and half the columns, timed interleaved."""
    rows = len(reference) // 2
    half_cols = list(reference.columns[::2])
    cases = [
        (reference, current, categorical),
        (reference.iloc[:rows], current.iloc[:rows], categorical),
        (reference[half_cols], current[half_cols], [c for c in categorical if c in half_cols]),
    ]
    profiles = [
        build_reference_profile(features=r, predictions=None, categorical=c) for r, _, c in cases
    ]
    walls: list[list[float]] = [[], [], []]
    for _ in range(repeats):
        for i, (profile, (_, cur, _)) in enumerate(zip(profiles, cases, strict=True)):
            t0 = time.perf_counter()
            check_drift(reference=profile, current=cur)
            walls[i].append(time.perf_counter() - t0)
    full, half_rows, half_cols_wall = (statistics.median(w) for w in walls)
    return full, half_rows, half_cols_wall


def _agreement(a: dict[str, bool], b: dict[str, bool]) -> float:
    return sum(a[c] == b[c] for c in a) / len(a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k rows, fewer repeats")
    parser.add_argument(
        "--rows", type=int, default=None, help="rows per frame (default 100k, quick 20k)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 100_000)
    repeats = 3 if args.quick else 5
    load_before = os.getloadavg()

    reference, current, truth, what = make_frames(rows, args.seed)
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    numeric = [c for c in reference.columns if c not in categorical]
    config = DriftConfig()

    t0 = time.perf_counter()
    profile = build_reference_profile(features=reference, predictions=None, categorical=categorical)
    build_wall = time.perf_counter() - t0
    ours_wall = _median_wall(
        lambda: check_drift(reference=profile, current=current, config=config), repeats
    )
    report = check_drift(reference=profile, current=current, config=config)
    ours = {f.name: f.drifted for f in report.features}

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ev_default = run_evidently_drift(
            reference=reference,
            current=current,
            numeric=numeric,
            categorical=categorical,
            folder=Path(tmp),
            name="default",
        )
        evidently_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev_same = run_evidently_drift(
            reference=reference,
            current=current,
            numeric=numeric,
            categorical=categorical,
            folder=Path(tmp),
            name="same_thresholds",
            config=config,
        )
        evidently_same_wall = time.perf_counter() - t0
    evd = {c: col.drifted for c, col in ev_default.columns.items()}
    evs = {c: col.drifted for c, col in ev_same.columns.items()}

    # Linearity: the check at half the rows and at half the columns (every other column).
    full, half_rows, half_cols = _scaling_walls(reference, current, categorical, 3 * repeats)
    half_cols_names = list(reference.columns[::2])

    columns = list(truth)
    wrong_ours = [c for c in columns if ours[c] != truth[c]]
    wrong_ev = [c for c in columns if evd[c] != truth[c]]
    metrics = {
        "speedup_vs_evidently": round(evidently_wall / ours_wall, 2),
        "verdict_agreement": round(_agreement(truth, ours), 4),
        "evidently_verdict_agreement": round(_agreement(truth, evd), 4),
        "evidently_same_thresholds_verdict_agreement": round(_agreement(truth, evs), 4),
        "agreement_with_evidently": round(_agreement(evd, ours), 4),
        "agreement_with_evidently_same_thresholds": round(_agreement(evs, ours), 4),
        "speedup_incl_profile_build": round(evidently_wall / (ours_wall + build_wall), 2),
        "ours_check_s": round(ours_wall, 4),
        "ours_profile_build_s": round(build_wall, 4),
        "evidently_s": round(evidently_wall, 3),
        "evidently_same_thresholds_s": round(evidently_same_wall, 3),
        "ours_check_s_scaling_run": round(full, 4),
        "ours_check_s_half_rows": round(half_rows, 4),
        "ours_check_s_half_cols": round(half_cols, 4),
        "rows_scaling": round(full / half_rows, 3),
        "cols_scaling": round(full / half_cols, 3),
        "ours_false_alarms": sum(ours[c] and not truth[c] for c in columns),
        "ours_misses": sum(truth[c] and not ours[c] for c in columns),
        "evidently_false_alarms": sum(evd[c] and not truth[c] for c in columns),
        "evidently_misses": sum(truth[c] and not evd[c] for c in columns),
    }
    params = {
        "rows": rows,
        "columns": len(columns),
        "numeric": len(numeric),
        "categorical": len(categorical),
        "drifted_truth": sum(truth.values()),
        "repeats": repeats,
        "seed": args.seed,
        "config": config.model_dump(),
        "ours_wrong": {c: what[c] for c in wrong_ours},
        "evidently_wrong": {c: what[c] for c in wrong_ev},
        "rows_half": rows // 2,
        "cols_half": len(half_cols_names),
    }

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"benchmark: {NAME} ({rows:,} rows x {len(columns)} columns)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, str(value))
    for c in wrong_ours:
        table.add_row(f"ours wrong: {c}", what[c])
    for c in wrong_ev:
        table.add_row(f"evidently wrong: {c}", what[c])
    Console().print(table)
    load = {
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    out = {
        "benchmark": NAME,
        "machine": {**machine(), **load},
        "params": params,
        "metrics": metrics,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
