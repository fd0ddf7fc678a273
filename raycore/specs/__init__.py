"""Specs: pydantic models of every YAML the foundry reads.

This package imports no ray, torch or mlflow (a test checks it).
"""

from raycore.specs.base import FrozenSpec
from raycore.specs.conformal import ConformalSpec, DecisionPolicySpec
from raycore.specs.dataset import (
    ColumnSpec,
    DatasetSpec,
    DType,
    ForeignKeySpec,
    GoldJoinSpec,
    GoldSpec,
    QualityGateSpec,
)
from raycore.specs.loader import load_spec, parse_spec, read_yaml_mapping
from raycore.specs.model import (
    AlgorithmSpec,
    DataSourceSpec,
    EvaluationSpec,
    GateCondition,
    GateSpec,
    GuardSpec,
    HoldoutSpec,
    ModelSpec,
    MonitoringSpec,
    OracleSpec,
    PromotionSpec,
    ResourcesSpec,
    RetrainSpec,
    SloSpec,
    Task,
)
from raycore.specs.monitoring import DriftConfig, Severity, SeverityConfig
from raycore.specs.serving import ServingSpec
from raycore.specs.threshold import ThresholdSpec

__all__ = [
    "AlgorithmSpec",
    "ColumnSpec",
    "ConformalSpec",
    "DType",
    "DataSourceSpec",
    "DatasetSpec",
    "DecisionPolicySpec",
    "DriftConfig",
    "EvaluationSpec",
    "ForeignKeySpec",
    "FrozenSpec",
    "GateCondition",
    "GateSpec",
    "GoldJoinSpec",
    "GoldSpec",
    "GuardSpec",
    "HoldoutSpec",
    "ModelSpec",
    "MonitoringSpec",
    "OracleSpec",
    "PromotionSpec",
    "QualityGateSpec",
    "ResourcesSpec",
    "RetrainSpec",
    "ServingSpec",
    "Severity",
    "SeverityConfig",
    "SloSpec",
    "Task",
    "ThresholdSpec",
    "load_spec",
    "parse_spec",
    "read_yaml_mapping",
]
