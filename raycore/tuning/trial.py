"""One Ray Tune trial: ``fit_prepared`` (the ``foundry train`` fit) on the inner train rows, scored on validation.

The trial is a thin Ray Train *driver*: it calls
``raycore.training.pipeline.fit_prepared`` with the sampled params, which
writes the training parquet and runs the family's Ray Train trainer exactly as
``foundry train`` does. Two fit options make it a tuning run:

- ``valid_path`` + ``valid_metric``: rank 0 scores the validation file after
  every ``report_every`` rounds (epochs) and adds the metric to its report;
- ``callbacks=[TuneReportCallback()]``: Ray Train forwards those reports to
  Tune, where ASHA compares trials at each rung and may stop this one.

When the Ray Train run returns, the bundle is scored on the validation split
with the spec's evaluator (``evaluate_bundle``) and reported once more with
``final=1`` and a Tune checkpoint holding the saved bundle, so the driver can
register the best trial's model without retraining. Families without
intermediate reports (sklearn, custom evaluators) report only this final result.
The holdout is never seen here: ``TrialContext.prepared`` is the validation split.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raycore.settings import FoundrySettings
from raycore.training.pipeline import PreparedData, evaluate_bundle, fit_prepared
from raycore.tuning.config import BOOSTERS, ROUNDS_KEY, SweepConfig
from raycore.tuning.space import decode_config, split_rounds

__all__ = ["BUNDLE_DIR", "FINAL_KEY", "TrialContext", "run_trial", "train_run_name"]

FINAL_KEY = "final"
BUNDLE_DIR = "bundle"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep shares (shipped once through the object store by ``tune.with_parameters``)."""

    prepared: PreparedData
    settings: FoundrySettings
    config: SweepConfig
    sweep_name: str
    sweep_dir: Path
    time_attr: str
    valid_path: Path | None = None
    max_failures: int = 1

    @property
    def intermediate(self) -> bool:
        """Whether the Ray Train run reports the validation metric while it trains."""
        return self.valid_path is not None


def train_run_name(sweep_name: str, trial_id: str) -> str:
    """The Ray Train run of a trial: stable across restarts, so a resumed trial continues its checkpoint."""
    return f"{sweep_name}-{trial_id}"


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Tune function trainable: fit one configuration, report validation metrics, checkpoint the bundle."""
    import ray.tune

    trial_id = ray.tune.get_context().get_trial_id()
    sweep = context.config
    params, rounds = split_rounds(decode_config(config, sweep.space))
    fit_options: dict[str, Any] = {
        "checkpoint_every": sweep.report_every,
        "max_failures": context.max_failures,
    }
    if context.intermediate:
        from ray.tune.integration.ray_train import TuneReportCallback

        fit_options.update(
            valid_path=context.valid_path,
            valid_metric=sweep.metric,
            callbacks=[TuneReportCallback()],
        )
    started = time.perf_counter()
    run_dir = context.sweep_dir / "trials" / trial_id
    fitted = fit_prepared(
        context.prepared,
        settings=context.settings,
        params=params,
        num_boost_round=rounds,
        run_name=train_run_name(context.sweep_name, trial_id),
        run_dir=run_dir,
        **fit_options,
    )
    # The training file is rewritten by a restarted trial; keep the sweep folder small.
    (run_dir / "train.parquet").unlink(missing_ok=True)
    result = evaluate_bundle(context.prepared, fitted.bundle)
    metrics: dict[str, Any] = {
        sweep.metric: float(result.metrics[sweep.metric]),
        FINAL_KEY: 1,
        "fit_seconds": fitted.fit_seconds,
        "trial_seconds": time.perf_counter() - started,
        **{f"valid_{k}": float(v) for k, v in result.metrics.items()},
        **{f"valid_oracle_{k}": float(v) for k, v in result.oracle.items()},
    }
    if context.prepared.spec.algorithm.family in BOOSTERS:
        metrics[ROUNDS_KEY] = fitted.num_boost_round
    if context.time_attr != "training_iteration":
        metrics[context.time_attr] = _iterations(context, fitted.num_boost_round, params)
    with tempfile.TemporaryDirectory() as folder:
        fitted.bundle.save(Path(folder) / BUNDLE_DIR)
        ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint.from_directory(folder))


def _iterations(context: TrialContext, rounds: int, params: dict[str, Any]) -> int:
    """Iterations the finished fit ran: boosting rounds, or torch epochs."""
    if context.time_attr == "epoch":
        from raycore.training.pipeline import algorithm_params
        from raycore.training.ray_torch import MLPParams

        merged = algorithm_params(context.prepared.spec, params)
        return MLPParams(**{k: v for k, v in merged.items() if k != "objective"}).epochs
    return int(rounds)
