"""Specs: pydantic models of every YAML the foundry reads.

This package imports no ray, torch or mlflow (a test checks it).
"""

from raycore.specs.base import FrozenSpec
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

__all__ = [
    "AlgorithmSpec",
    "ColumnSpec",
    "DType",
    "DataSourceSpec",
    "DatasetSpec",
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
    "SloSpec",
    "Task",
    "load_spec",
    "parse_spec",
    "read_yaml_mapping",
]
