"""The pieces of the drift demonstration every step shares: its model, dates, sizes and outcomes.

The demo's model is a copy of the credit risk model (mdl-027) with automatic
retraining on and a calibration metric as its gate: the world's concept shift
moves the default rate, not the ranking of applicants, so ROC AUC (mdl-027's
gate) cannot see it, while the root mean squared error of the predicted
probability (the root Brier score) can. AUC and KS stay in the gate and are
promotion guards.

Example:
    >>> DemoPlan.for_run(quick=True).window_days
    28
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from raycore.errors import RaycoreError

__all__ = [
    "CONCEPT_START",
    "COVARIATE_START",
    "DEMO_MODEL_ID",
    "DEMO_MODEL_NAME",
    "DemoPlan",
    "StepFailed",
    "StepOutcome",
    "approved_rows",
    "calendar_windows",
    "demo_catalog",
]

DEMO_MODEL_ID = "mdl-927"
DEMO_MODEL_NAME = "credit_risk_demo"
SOURCE_MODEL = "mdl-027.yaml"
TRAFFIC_START = date(2025, 1, 6)  # the weeks after the champion's data: live traffic
COVARIATE_START = date(2025, 6, 2)
COVARIATE_MAGNITUDE = 0.5
# Outcomes are observed a year after the application: a concept shift must be old to be in the data.
CONCEPT_START = date(2023, 4, 3)
CONCEPT_MAGNITUDE = 1.0
CONCEPT_TRAFFIC_START = date(2025, 4, 7)
CREDIT_DATASETS = ("regions", "credit_applications", "credit_outcomes")
# Every training label shuffled: what a broken label join (rows matched to the wrong outcomes) does.
DRILL_CORRUPTION = 1.0
WINDOW_GAP_S = 0.2


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of one run (``quick`` is the CI size)."""

    window_days: int
    no_drift_windows: int
    covariate_pre_windows: int
    covariate_post_windows: int
    concept_rows: int
    shadow_rows: int
    rollback_rows: int
    min_live: int
    rounds: int
    job_timeout_s: float

    @classmethod
    def for_run(cls, *, quick: bool) -> DemoPlan:
        if quick:
            return cls(28, 3, 1, 2, 400, 360, 330, 300, 40, 420.0)
        return cls(28, 12, 1, 7, 800, 700, 650, 600, 150, 900.0)


@dataclass
class StepOutcome:
    """One step of the scenario: whether it held, in a sentence, and the figures behind it."""

    step: str
    held: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class StepFailed(RaycoreError):
    """A step of the demonstration did not hold."""


def demo_catalog(folder: Path, plan: DemoPlan) -> Path:
    """Write the demo's copy of mdl-027 (automation on, calibration gate) into ``folder``.

    Example:
        >>> path = demo_catalog(Path("/tmp/demo-catalog"), DemoPlan.for_run(quick=True))  # doctest: +SKIP
        >>> load_catalog(extra_dirs=[path.parent]).get("mdl-927").gate.metric           # doctest: +SKIP
        'rmse'
    """
    from raycore.catalog import packaged_models_dir

    data = yaml.safe_load((packaged_models_dir() / SOURCE_MODEL).read_text())
    data.update(
        id=DEMO_MODEL_ID,
        name=DEMO_MODEL_NAME,
        wave="extra",
        owner="foundry-demo",
        description=(
            "Copy of credit_risk (mdl-027) for `foundry demo drift`: automatic retraining on, "
            "gated on the root Brier score (rmse of the probability) so that a moved default rate shows."
        ),
    )
    data["algorithm"]["num_boost_round"] = plan.rounds
    data["resources"] = {"num_workers": 1, "cpus_per_worker": 1, "use_gpu": False}
    # Better than always answering 0.5 (rmse 0.5), and still a ranker.
    data["gate"] = {
        "metric": "rmse",
        "op": "<=",
        "threshold": 0.47,
        "also": [
            {"metric": "roc_auc", "op": ">=", "threshold": 0.75},
            {"metric": "ks", "op": ">=", "threshold": 0.35},
        ],
    }
    data["promotion"] = {
        "guards": [
            {"metric": "roc_auc", "op": ">=", "tolerance": 0.02},
            {"metric": "ks", "op": ">=", "tolerance": 0.05},
        ]
    }
    data["retrain"] = {
        "cadence": "monthly",
        "auto": True,
        "demo_cooldown_s": 900,
        "min_new_labels": 100,
        "min_severity": "HIGH",
        "deploy_as": "shadow",
        "min_live_comparisons": plan.min_live,
        "live_tolerance": 0.0,
        "rollback_window_hours": 1,
        "rollback_metric_drop": 0.05,
    }
    data["conformal"] = {
        "enabled": False
    }  # one Ray Train fit per retrain; no prediction sets needed
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DEMO_MODEL_ID}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def calendar_windows(start: date, count: int, days: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    first = pd.Timestamp(start)
    return [
        (first + pd.Timedelta(days=i * days), first + pd.Timedelta(days=(i + 1) * days))
        for i in range(count)
    ]


def approved_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The applications the model scores: approved ones (the population it was trained on)."""
    rows = frame[frame["decision"] == "approved"].drop_duplicates("application_id")
    rows = rows.assign(applied_at=pd.to_datetime(rows["applied_at"]))
    return rows.sort_values("applied_at", kind="stable").reset_index(drop=True)
