"""The model spec: one catalog entry, as declared in YAML.

Example:
    >>> from raycore.specs import GateSpec
    >>> GateSpec(metric="mape", op="<=", threshold=0.15).passes(0.11)
    True
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from raycore.specs.base import FrozenSpec
from raycore.specs.conformal import ConformalSpec
from raycore.specs.monitoring import DriftConfig
from raycore.specs.serving import ServingSpec
from raycore.specs.threshold import ThresholdSpec

__all__ = [
    "AlgorithmSpec",
    "DataSourceSpec",
    "EvaluationSpec",
    "GateCondition",
    "GateSpec",
    "HoldoutSpec",
    "ModelSpec",
    "MonitoringSpec",
    "OracleSpec",
    "ResourcesSpec",
    "RetrainSpec",
    "SloSpec",
    "Task",
]

Task = Literal[
    "regression",
    "binary",
    "multiclass",
    "text_classification",
    "anomaly",
    "clustering",
    "forecasting",
    "ranking",
    "quantile_regression",
    "count_regression",
    "uplift",
    "causal_regression",
    "decision",
]

ParamValue = bool | int | float | str | list[int] | list[float] | list[str] | None


class DataSourceSpec(FrozenSpec):
    """Where a model's rows come from: a data-world table or a file path."""

    table: str | None = Field(default=None, description="Name of a data-world table.")
    path: str | None = Field(
        default=None, description="A parquet/CSV file or folder, local path or filesystem URI."
    )
    format: Literal["parquet", "csv"] = Field(default="parquet", description="File format of path.")

    @model_validator(mode="after")
    def _exactly_one(self) -> DataSourceSpec:
        if (self.table is None) == (self.path is None):
            raise ValueError(
                "give exactly one of 'table' (a data-world table) or 'path' (a file), "
                f"got table={self.table!r}, path={self.path!r}"
            )
        return self


class HoldoutSpec(FrozenSpec):
    """How the evaluation holdout is cut: by time (the default) or at random."""

    kind: Literal["time", "random"] = Field(default="time", description="Split by time or randomly.")
    time_column: str | None = Field(default=None, description="Column ordering rows in time.")
    last_periods: int | None = Field(
        default=None, ge=1, description="Holdout = the last N distinct time values."
    )
    fraction: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Holdout share of rows (random) or of time."
    )

    @model_validator(mode="after")
    def _consistent(self) -> HoldoutSpec:
        if self.kind == "time" and not self.time_column:
            raise ValueError("a time holdout needs 'time_column'")
        if (self.last_periods is None) == (self.fraction is None):
            raise ValueError(
                "give exactly one of 'last_periods' or 'fraction', "
                f"got last_periods={self.last_periods!r}, fraction={self.fraction!r}"
            )
        return self


class AlgorithmSpec(FrozenSpec):
    """The learning algorithm and its default parameters."""

    family: Literal["lightgbm", "xgboost", "sklearn", "torch"] = Field(
        description="Library that fits the model."
    )
    objective: str = Field(description="Objective or estimator name within the family.")
    num_boost_round: int = Field(default=200, ge=1, le=100_000, description="Boosting rounds.")
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Library parameters passed through unchanged."
    )


class ResourcesSpec(FrozenSpec):
    """Compute for one training run (maps onto Ray Train's ScalingConfig)."""

    num_workers: int = Field(default=1, ge=1, le=1024, description="Ray Train workers.")
    cpus_per_worker: float = Field(default=1.0, gt=0, description="CPUs reserved per worker.")
    use_gpu: bool = Field(default=False, description="Reserve one GPU per worker.")


class GateCondition(FrozenSpec):
    """One metric condition of a gate."""

    metric: str = Field(description="Metric name, e.g. mape, roc_auc, r2.")
    op: Literal["<=", ">="] = Field(description="'<=' for errors, '>=' for scores.")
    threshold: float = Field(description="The gate value.")

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"threshold must be a finite number, got {value!r}")
        return value

    def passes(self, value: float) -> bool:
        """Whether a metric value passes this gate (NaN never passes)."""
        if not math.isfinite(value):
            return False
        return value <= self.threshold if self.op == "<=" else value >= self.threshold

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


class GateSpec(GateCondition):
    """The quality gate a model must pass to become a registered candidate.

    ``metric``/``op``/``threshold`` is the primary condition (the model's
    headline metric); every condition in ``also`` must hold as well.
    """

    also: list[GateCondition] = Field(default_factory=list, description="Further conditions, all required.")

    @property
    def conditions(self) -> list[GateCondition]:
        return [GateCondition(metric=self.metric, op=self.op, threshold=self.threshold), *self.also]

    def passes_all(self, values: dict[str, float]) -> bool:
        """Whether every condition holds for ``values`` (a missing metric fails)."""
        return all(c.passes(values.get(c.metric, float("nan"))) for c in self.conditions)

    def describe(self) -> str:
        return " and ".join(GateCondition.describe(c) for c in self.conditions)


class EvaluationSpec(FrozenSpec):
    """How the holdout is scored: an evaluator by name (default ``holdout``) and its parameters."""

    evaluator: str = Field(default="holdout", description="Registered evaluator name.")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="Evaluator parameters.")


class GuardSpec(FrozenSpec):
    """A metric a challenger must not make worse (beyond ``tolerance``) to be promoted."""

    metric: str = Field(description="Metric name reported by the model's evaluator.")
    op: Literal["<=", ">="] = Field(description="'<=' if lower is better, '>=' if higher is better.")
    tolerance: float = Field(
        default=0.0, ge=0, description="Allowed relative worsening (0.01 = 1% of the champion's value)."
    )


class PromotionSpec(FrozenSpec):
    """The champion/challenger gate: when a candidate may replace the champion.

    Both are scored on the same fresh holdout. The candidate must beat the
    champion on the gate metric by more than ``margin`` (relative to the
    champion's value) and be no worse on any guard. The gate's ``also``
    conditions are guards too, unless ``guards`` lists them differently.
    """

    margin: float = Field(
        default=0.0, ge=0, lt=1, description="Required relative improvement of the gate metric."
    )
    guards: list[GuardSpec] = Field(default_factory=list, description="Metrics that must not get worse.")


class SloSpec(FrozenSpec):
    """Serving latency objective for one row through HTTP."""

    p95_ms: float = Field(gt=0, description="95th percentile latency objective in ms.")


class RetrainSpec(FrozenSpec):
    """Retraining cadence, whether automation is allowed, and the safeguards around it.

    Every safeguard that blocks a retrain is recorded (audit log) with its reason.
    """

    cadence: Literal["daily", "weekly", "monthly", "quarterly"] = Field(
        description="Scheduled retrain cadence."
    )
    auto: bool = Field(
        default=False,
        description="Feature flag: automatic retraining (off by default; manual always allowed).",
    )
    cooldown_days: float = Field(
        default=7.0,
        ge=0,
        le=365,
        description="No automatic retrain within this long after the last one started.",
    )
    demo_cooldown_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="The cooldown in demo mode (seconds instead of days).",
    )
    min_new_labels: int = Field(
        default=100,
        ge=0,
        description="Labelled rows that must have arrived since the last training.",
    )
    min_severity: Literal["MEDIUM", "HIGH", "CRITICAL"] = Field(
        default="HIGH", description="Drift/performance findings below this severity do not retrain."
    )
    deploy_as: Literal["shadow", "canary"] = Field(
        default="shadow", description="How a validated retrain meets live traffic before promotion."
    )
    min_live_comparisons: int = Field(
        default=200,
        ge=1,
        description="Labelled live answers of both versions needed before promoting.",
    )
    live_tolerance: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="The new version may be this much worse live (relative) and still win.",
    )
    rollback_window_hours: float = Field(
        default=24.0,
        ge=0,
        le=24 * 90,
        description="How long a promoted retrain is watched after promotion.",
    )
    rollback_metric_drop: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Roll back when the live metric drops more than this (relative).",
    )


class MonitoringSpec(FrozenSpec):
    """Drift and performance thresholds for the monitors."""

    drifted_feature_share: float = Field(
        default=0.3, gt=0, le=1, description="Share of drifted features that raises an alert."
    )
    metric_drop_medium: float = Field(default=0.05, gt=0, lt=1, description="MEDIUM from here.")
    metric_drop_high: float = Field(default=0.10, gt=0, lt=1, description="HIGH from here.")
    metric_drop_critical: float = Field(default=0.20, gt=0, lt=1, description="CRITICAL from here.")
    drift: DriftConfig = Field(
        default_factory=DriftConfig,
        description="Per-feature drift rule (raycore.monitoring.check_drift).",
    )
    check_every_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often the retrain controller checks an automated model's new answers "
        "(demo mode: every tick).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringSpec:
        if not (self.metric_drop_medium < self.metric_drop_high < self.metric_drop_critical):
            raise ValueError(
                "metric drops must rise: medium < high < critical, got "
                f"{self.metric_drop_medium} / {self.metric_drop_high} / {self.metric_drop_critical}"
            )
        return self


class OracleSpec(FrozenSpec):
    """Where the data world keeps the true expected label, to score the oracle."""

    table: str = Field(description="Truth table of the data world.")
    column: str = Field(description="Column holding the true expected label.")
    keys: list[str] = Field(min_length=1, description="Columns joining truth to the label rows.")


class ModelSpec(FrozenSpec):
    """One catalog entry: everything the foundry needs to train, gate and serve a model."""

    id: str = Field(pattern=r"^mdl-\d{3}$", description="Catalog id, e.g. mdl-001.")
    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,62}$",
        description="Registered model name (lower snake case); also the serving route.",
    )
    wave: Literal["prod", "1", "2", "3", "4", "extra"] = Field(description="Roadmap wave.")
    owner: str = Field(min_length=1, description="Team or person answerable for the model.")
    description: str = Field(default="", description="What the model predicts, for whom.")
    task: Task = Field(description="Task type; decides metrics and the estimator adapter.")
    data: DataSourceSpec = Field(description="Where the rows come from.")
    features: list[str] = Field(min_length=1, description="Feature view names, in order.")
    label: str = Field(min_length=1, description="Label column.")
    holdout: HoldoutSpec = Field(description="How the evaluation holdout is cut.")
    oracle: OracleSpec | None = Field(
        default=None, description="True expected label in the data world (oracle metric)."
    )
    algorithm: AlgorithmSpec = Field(description="Algorithm and default parameters.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Compute.")
    group_column: str | None = Field(
        default=None, description="Query/group column of the rows (ranking: one query per group)."
    )
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="Holdout scoring.")
    gate: GateSpec = Field(description="Quality gate for registration.")
    promotion: PromotionSpec = Field(
        default_factory=PromotionSpec, description="Champion/challenger gate for promotion."
    )
    slo: SloSpec = Field(description="Serving latency objective.")
    retrain: RetrainSpec = Field(description="Retrain cadence and automation.")
    monitoring: MonitoringSpec = Field(
        default_factory=MonitoringSpec, description="Monitoring thresholds."
    )
    serving: ServingSpec = Field(
        default_factory=ServingSpec,
        description="Replicas, batching, queue bounds and multiplexing when served.",
    )
    conformal: ConformalSpec | None = Field(
        default=None,
        description="Conformal calibration and automation policy (optional; defaults per task).",
    )
    threshold: ThresholdSpec | None = Field(
        default=None,
        description="Decision threshold and error costs (binary classifiers; default 0.5).",
    )

    @model_validator(mode="after")
    def _threshold_needs_binary(self) -> ModelSpec:
        if self.threshold is not None and self.task != "binary":
            raise ValueError(
                f"threshold: only binary classifiers have a decision threshold, this model's task is '{self.task}'"
            )
        return self

    def summary(self) -> dict[str, Any]:
        """A flat dict for tables and MLflow tags."""
        return {
            "id": self.id,
            "name": self.name,
            "wave": self.wave,
            "task": self.task,
            "algorithm": f"{self.algorithm.family}:{self.algorithm.objective}",
            "gate": self.gate.describe(),
        }
