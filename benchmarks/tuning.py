"""Benchmark: the same sweep with ASHA early stopping vs without (FIFO), one model, one run.

    iterations_ratio       boosting rounds trained under ASHA / under FIFO (summed over trials)
    trial_seconds_ratio    trial seconds (Tune's time_total_s, summed) under ASHA / under FIFO
    wall_seconds_ratio     wall time of the whole sweep under ASHA / under FIFO
    best_score_shortfall   how much worse ASHA's best validation score is than FIFO's, relative
                           (negative: ASHA found a better one)
    goal_holds             iterations_ratio <= 0.5 and best_score_shortfall <= 0.01

Both arms run ``raycore.tuning.tune_model`` (the code path of ``foundry tune``) on the
same prepared data, with the model's sweep from ``tune_configs/`` except for the
scheduler: the same number of trials, the same search space and the same seeded
*random* search, so both arms train exactly the same configurations (Optuna would
steer each arm by its own results). Trials run one at a time (``max_concurrent: 1``)
and without a time budget. Scores are on the validation split (the holdout is
left for the gate); the best trial of each arm is also scored on the holdout and
logged (not registered). State goes to ``--home`` (default: a fresh temporary
FOUNDRY_HOME, so the data world is generated first, outside the timings).

Usage:
    python benchmarks/tuning.py                       # mdl-005, its trial count from tune_configs
    python benchmarks/tuning.py --trials 8 --seed 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report


def run_arm(
    spec: Any, settings: Any, config: Any, scheduler: dict[str, Any], name: str
) -> dict[str, Any]:
    from raycore.tuning import SweepConfig, tune_model

    data = config.model_dump()
    data["scheduler"] = scheduler
    arm = SweepConfig.model_validate(data)
    started = time.perf_counter()
    outcome = tune_model(spec, settings=settings, config=arm, register=False, name=name)
    wall = time.perf_counter() - started
    finished = [t for t in outcome.trials if t.status == "TERMINATED"]
    return {
        "outcome": outcome,
        "wall_s": wall,
        "iterations": sum(t.iterations for t in outcome.trials),
        "trial_seconds": sum(t.seconds for t in outcome.trials),
        "best": outcome.best.value if outcome.best else float("nan"),
        "holdout": outcome.holdout_metric,
        "finished": len(finished),
        "early_stopped": sum(t.status == "EARLY_STOPPED" for t in outcome.trials),
        "errors": sum(t.status == "ERROR" for t in outcome.trials),
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
            for t in sorted(outcome.trials, key=lambda t: str(sorted(t.params.items())))
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="mdl-005")
    parser.add_argument(
        "--trials", type=int, default=None, help="Trials per arm (default: the model's YAML)."
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the random search (same for both arms)."
    )
    parser.add_argument(
        "--home", default=None, help="FOUNDRY_HOME (default: $FOUNDRY_HOME or a temporary one)."
    )
    args = parser.parse_args()
    home = (
        args.home
        or os.environ.get("FOUNDRY_HOME")
        or tempfile.mkdtemp(prefix="foundry-bench-tuning-")
    )
    os.environ["FOUNDRY_HOME"] = home
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    from raycore.catalog import load_catalog
    from raycore.runtime import connect_ray
    from raycore.settings import FoundrySettings
    from raycore.training.pipeline import prepare_training
    from raycore.tuning import load_sweep_config
    from raycore.tuning.space import full_length

    settings = FoundrySettings.load()
    spec = load_catalog().get(args.model)
    config = load_sweep_config(spec, num_samples=args.trials)
    config = config.model_copy(
        update={
            "search": config.search.model_copy(update={"kind": "random", "seed": args.seed}),
            "max_concurrent": 1,
            "time_budget_s": None,
        }
    )
    asha = config.scheduler.model_dump() if config.scheduler.kind == "asha" else {"kind": "asha"}
    t0 = time.perf_counter()
    prepare_training(
        spec, settings=settings
    )  # generates and ingests the data world once, outside the timings
    connect_ray(settings)
    setup_s = time.perf_counter() - t0

    stamp = time.strftime("%Y%m%d-%H%M%S")
    arms = {
        "asha": run_arm(spec, settings, config, asha, f"bench-asha-{spec.name}-{stamp}"),
        "fifo": run_arm(
            spec, settings, config, {"kind": "fifo"}, f"bench-fifo-{spec.name}-{stamp}"
        ),
    }
    a, f = arms["asha"], arms["fifo"]
    sign = 1.0 if config.mode == "max" else -1.0
    shortfall = sign * (f["best"] - a["best"]) / abs(f["best"])
    metrics = {
        "iterations_asha": a["iterations"],
        "iterations_fifo": f["iterations"],
        "iterations_ratio": round(a["iterations"] / f["iterations"], 4),
        "trial_seconds_asha": round(a["trial_seconds"], 1),
        "trial_seconds_fifo": round(f["trial_seconds"], 1),
        "trial_seconds_ratio": round(a["trial_seconds"] / f["trial_seconds"], 4),
        "wall_seconds_asha": round(a["wall_s"], 1),
        "wall_seconds_fifo": round(f["wall_s"], 1),
        "wall_seconds_ratio": round(a["wall_s"] / f["wall_s"], 4),
        f"best_valid_{config.metric}_asha": round(a["best"], 5),
        f"best_valid_{config.metric}_fifo": round(f["best"], 5),
        "best_score_shortfall": round(shortfall, 5),
        f"holdout_{config.metric}_of_best_asha": round(a["holdout"] or float("nan"), 5),
        f"holdout_{config.metric}_of_best_fifo": round(f["holdout"] or float("nan"), 5),
        "trials_early_stopped_asha": a["early_stopped"],
        "trials_finished_asha": a["finished"],
        "trials_finished_fifo": f["finished"],
        "trial_errors": a["errors"] + f["errors"],
        "goal_holds": bool(a["iterations"] <= 0.5 * f["iterations"] and shortfall <= 0.01),
        "goal_holds_in_seconds": bool(
            a["trial_seconds"] <= 0.5 * f["trial_seconds"] and shortfall <= 0.01
        ),
        "setup_s": round(setup_s, 1),
    }
    report(
        "tuning",
        params={
            "model": spec.id,
            "metric": config.metric,
            "mode": config.mode,
            "trials_per_arm": config.num_samples,
            "search": f"random, seed {args.seed} (same configurations in both arms)",
            "asha": asha,
            "report_every": config.report_every,
            "max_rounds": full_length(spec, config),
            "space": {k: v.model_dump() for k, v in config.space.items()},
            "trials_asha": a["trials"],
            "trials_fifo": f["trials"],
        },
        metrics=metrics,
        rows=[(k, str(v)) for k, v in metrics.items()],
    )


if __name__ == "__main__":
    main()
