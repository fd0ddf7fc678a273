"""Scripted demonstrations of the foundry on its data world.

run_drift_demo    drift detection and guarded retraining over HTTP (``foundry demo drift``)
"""

from __future__ import annotations

from raycore.demo.drift import DemoPlan, StepOutcome, run_drift_demo

__all__ = ["DemoPlan", "StepOutcome", "run_drift_demo"]
