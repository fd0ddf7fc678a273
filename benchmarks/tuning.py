"""Benchmark: the same trials with ASHA early stopping vs without (FIFO), one model, one run.

For each search seed, two sweeps of the model run one after the other through
``raycore.tuning.tune_model`` (the code path of ``foundry tune``), with the model's
sweep from ``tune_configs/`` except for the scheduler (ASHA vs FIFO) and the search:

    same trials      both arms use Tune's seeded *random* search (BasicVariantGenerator,
                     random_state = the seed), so both sample exactly the same list of
                     configurations (Optuna would steer each arm by its own results). The
                     script checks it: the sorted sampled configurations of the two arms
                     must be equal, else it stops with an error.
    compute          boosting rounds trained, summed over the trials (trial-iterations);
                     trial seconds (Tune's time_total_s) are reported too, but they include
                     the fixed start-up of a Ray Train run per trial, which no scheduler saves
    best score       the best validation score among trials that trained to the end
                     (the holdout is left for the gate; each arm's best is scored on it too)

    asha_compute_fraction   rounds(ASHA) / rounds(FIFO)                       goal <= 0.5
    asha_best_score_gap     (best FIFO - best ASHA) / |best FIFO|, sign-adjusted so that
                            positive = ASHA worse                             goal <= 0.01

With several seeds (``--seeds 0,1,2``) both keys are the worst seed's, with the mean
and each seed's value next to them. Both arms run ``--concurrency`` trials at once
(default 2, one per core of this box: a trial's Ray Train worker reserves one CPU),
without a time budget.
The load average of the box is recorded before and after (the box may be shared).
State goes to ``--home`` (default: a fresh temporary FOUNDRY_HOME; the data world is
generated first, outside the timings).

Run time: about 7.5 minutes with the defaults on a 2-core box, longer than the 5 minutes
benchmarks aim for. Each trial is a whole Ray Train run (the ``foundry train`` fit), and
on 2 cores a run costs ~12 s to start and ~11 s from its last report until it returns,
whatever the rounds; 32 trials, two at a time. ``--quick`` takes about 2 minutes.

Usage:
    python benchmarks/tuning.py                    # mdl-005, its 16 trials from tune_configs, seed 0
    python benchmarks/tuning.py --seeds 0,1,2      # three seeds (about three times longer)
    python benchmarks/tuning.py --quick            # 4 trials, seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine

COMPUTE_GOAL = 0.5
GAP_GOAL = 0.01
QUICK_TRIALS = 4


def _config_key(params: dict[str, Any]) -> str:
    return json.dumps(
        {k: round(v, 8) if isinstance(v, float) else v for k, v in sorted(params.items())}
    )


def run_arm(
    spec: Any, settings: Any, config: Any, scheduler: dict[str, Any], name: str
) -> dict[str, Any]:
    """One sweep with ``scheduler``; its compute, best score and trials."""
    from raycore.tuning import SweepConfig, tune_model

    data = config.model_dump()
    data["scheduler"] = scheduler
    arm = SweepConfig.model_validate(data)
    started = time.perf_counter()
    outcome = tune_model(spec, settings=settings, config=arm, register=False, name=name)
    wall = time.perf_counter() - started
    if outcome.interrupted:
        raise SystemExit(f"sweep {name} was interrupted; rerun the benchmark")
    trials = sorted(outcome.trials, key=lambda t: _config_key(t.params))
    return {
        "wall_s": wall,
        "iterations": sum(t.iterations for t in trials),
        "trial_seconds": sum(t.seconds for t in trials),
        "best": outcome.best.value if outcome.best else float("nan"),
        "holdout": outcome.holdout_metric,
        "finished": sum(t.status == "TERMINATED" for t in trials),
        "early_stopped": sum(t.status == "EARLY_STOPPED" for t in trials),
        "errors": sum(t.status == "ERROR" for t in trials),
        "configs": [_config_key(t.params) for t in trials],
        "trials": [
            {
                "params": {
                    k: round(v, 5) if isinstance(v, float) else v for k, v in t.params.items()
                },
                "iterations": t.iterations,
                "value": None if t.value is None else round(t.value, 5),
                "status": t.status,
                "seconds": round(t.seconds, 2),
            }
            for t in trials
        ],
    }


def run_seed(spec: Any, settings: Any, config: Any, seed: int) -> dict[str, Any]:
    """Both arms for one search seed, and their ratios."""
    seeded = config.model_copy(
        update={"search": config.search.model_copy(update={"kind": "random", "seed": seed})}
    )
    asha = config.scheduler.model_dump() if config.scheduler.kind == "asha" else {"kind": "asha"}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    a = run_arm(spec, settings, seeded, asha, f"bench-asha-s{seed}-{spec.name}-{stamp}")
    f = run_arm(spec, settings, seeded, {"kind": "fifo"}, f"bench-fifo-s{seed}-{spec.name}-{stamp}")
    if a["configs"] != f["configs"]:
        raise SystemExit(f"seed {seed}: the two arms sampled different configurations")
    sign = 1.0 if config.mode == "max" else -1.0
    return {
        "seed": seed,
        "asha": a,
        "fifo": f,
        "compute_fraction": a["iterations"] / f["iterations"],
        "seconds_fraction": a["trial_seconds"] / f["trial_seconds"],
        "wall_fraction": a["wall_s"] / f["wall_s"],
        "gap": sign * (f["best"] - a["best"]) / abs(f["best"]),
    }


def summarise(runs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Worst seed (the goal keys), mean, and every seed's figures."""
    fractions = [r["compute_fraction"] for r in runs]
    gaps = [r["gap"] for r in runs]
    out: dict[str, Any] = {
        "asha_compute_fraction": round(max(fractions), 4),
        "asha_best_score_gap": round(max(gaps), 5),
        "asha_compute_fraction_mean": round(sum(fractions) / len(runs), 4),
        "asha_best_score_gap_mean": round(sum(gaps) / len(runs), 5),
        "asha_seconds_fraction_mean": round(
            sum(r["seconds_fraction"] for r in runs) / len(runs), 4
        ),
        "asha_wall_fraction_mean": round(sum(r["wall_fraction"] for r in runs) / len(runs), 4),
        "seeds_meeting_goal": sum(
            r["compute_fraction"] <= COMPUTE_GOAL and r["gap"] <= GAP_GOAL for r in runs
        ),
        "seeds": len(runs),
    }
    for r in runs:
        a, f, s = r["asha"], r["fifo"], f"seed{r['seed']}_"
        out.update(
            {
                f"{s}compute_fraction": round(r["compute_fraction"], 4),
                f"{s}best_score_gap": round(r["gap"], 5),
                f"{s}seconds_fraction": round(r["seconds_fraction"], 4),
                f"{s}iterations_asha": a["iterations"],
                f"{s}iterations_fifo": f["iterations"],
                f"{s}trial_seconds_asha": round(a["trial_seconds"], 1),
                f"{s}trial_seconds_fifo": round(f["trial_seconds"], 1),
                f"{s}wall_seconds_asha": round(a["wall_s"], 1),
                f"{s}wall_seconds_fifo": round(f["wall_s"], 1),
                f"{s}best_valid_{metric}_asha": round(a["best"], 5),
                f"{s}best_valid_{metric}_fifo": round(f["best"], 5),
                f"{s}holdout_{metric}_of_best_asha": round(a["holdout"] or float("nan"), 5),
                f"{s}holdout_{metric}_of_best_fifo": round(f["holdout"] or float("nan"), 5),
                f"{s}trials_early_stopped_asha": a["early_stopped"],
                f"{s}trials_finished_asha": a["finished"],
                f"{s}trial_errors": a["errors"] + f["errors"],
            }
        )
    out["goal_holds"] = bool(
        out["asha_compute_fraction"] <= COMPUTE_GOAL and out["asha_best_score_gap"] <= GAP_GOAL
    )
    return out


def emit(*, params: dict[str, Any], metrics: dict[str, Any], box: dict[str, Any]) -> None:
    """The benchmark convention: a rich table, the results JSON, the same JSON as the last line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="benchmark: tuning (ASHA vs FIFO, same trials)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, str(value))
    Console().print(table)
    out = {"benchmark": "tuning", "machine": box, "params": params, "metrics": metrics}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="mdl-005")
    parser.add_argument(
        "--trials", type=int, default=None, help="Trials per arm (default: the model's YAML)."
    )
    parser.add_argument(
        "--seeds", default="0", help="Comma-separated seeds of the random search, e.g. 0,1,2."
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="Trials running at once in each arm (default 2)."
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRIALS} trials, one seed.")
    parser.add_argument(
        "--home", default=None, help="FOUNDRY_HOME (default: $FOUNDRY_HOME or a temporary one)."
    )
    args = parser.parse_args()
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    if args.quick:
        seeds, trials = seeds[:1], args.trials or QUICK_TRIALS
    else:
        trials = args.trials
    home = (
        args.home
        or os.environ.get("FOUNDRY_HOME")
        or tempfile.mkdtemp(prefix="foundry-bench-tuning-")
    )
    os.environ["FOUNDRY_HOME"] = home
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    load_before = os.getloadavg()

    from raycore.catalog import load_catalog
    from raycore.runtime import connect_ray
    from raycore.settings import FoundrySettings
    from raycore.training.pipeline import prepare_training
    from raycore.tuning import load_sweep_config
    from raycore.tuning.space import full_length

    settings = FoundrySettings.load()
    spec = load_catalog().get(args.model)
    config = load_sweep_config(spec, num_samples=trials)
    config = config.model_copy(update={"max_concurrent": args.concurrency, "time_budget_s": None})
    t0 = time.perf_counter()
    prepare_training(spec, settings=settings)  # generates the data world once, outside the timings
    connect_ray(settings)
    setup_s = time.perf_counter() - t0

    started = time.perf_counter()
    runs = [run_seed(spec, settings, config, seed) for seed in seeds]
    metrics = summarise(runs, config.metric)
    metrics.update(setup_s=round(setup_s, 1), sweeps_wall_s=round(time.perf_counter() - started, 1))
    params = {
        "model": spec.id,
        "metric": config.metric,
        "mode": config.mode,
        "trials_per_arm": config.num_samples,
        "concurrency": config.max_concurrent,
        "seeds": seeds,
        "quick": args.quick,
        "search": "random with the same seed in both arms; sampled configurations checked equal",
        "compute": "boosting rounds summed over trials",
        "asha": config.scheduler.model_dump(),
        "report_every": config.report_every,
        "max_rounds": full_length(spec, config),
        "space": {k: v.model_dump() for k, v in config.space.items()},
        "trials": {
            f"seed{r['seed']}": {"asha": r["asha"]["trials"], "fifo": r["fifo"]["trials"]}
            for r in runs
        },
    }
    box = {
        **machine(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    emit(params=params, metrics=metrics, box=box)


if __name__ == "__main__":
    main()
