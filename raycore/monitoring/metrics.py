"""The model-lifecycle metrics, exported by Ray to Prometheus (with Ray's ``ray_`` prefix).

Names and tags are a contract with ``cluster/grafana/foundry-dashboard.json``:

    foundry_drift_severity          gauge    model             0 NONE, 1 MEDIUM, 2 HIGH, 3 CRITICAL
    foundry_retrains_total          counter  model, outcome    a retrain job ended (deployed, promoted,
                                                               refused, failed, ...)
    foundry_alias_changes_total     counter  model, alias      an alias was set or removed

Ray exports metrics from processes connected to a Ray cluster: the retrain
controller actor (its checks, jobs, promotions and rollbacks) and any process
that has called ``ray.init``. Elsewhere — a CLI command without Ray — these
calls do nothing; the audit log and the monitoring files hold the same facts.

Example:
    >>> record_drift_severity(model="churn_risk", severity="HIGH")   # no-op without Ray
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["SEVERITY_LEVEL", "record_alias_change", "record_drift_severity", "record_retrain"]

SEVERITY_LEVEL = {"NONE": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}
_METRICS: dict[str, Any] = {}


def _connected() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _metric(name: str) -> Any:
    if name not in _METRICS:
        from ray.util.metrics import Counter, Gauge

        if name == "foundry_drift_severity":
            _METRICS[name] = Gauge(
                name,
                description="Severity of the latest drift check: 0 NONE, 1 MEDIUM, 2 HIGH, 3 CRITICAL.",
                tag_keys=("model",),
            )
        elif name == "foundry_retrains_total":
            _METRICS[name] = Counter(
                name, description="Retrain jobs ended, by outcome.", tag_keys=("model", "outcome")
            )
        else:
            _METRICS[name] = Counter(
                name, description="Alias changes in the registry.", tag_keys=("model", "alias")
            )
    return _METRICS[name]


def record_drift_severity(*, model: str, severity: str) -> None:
    """Set the model's drift severity gauge (when this process is connected to Ray)."""
    if _connected():
        _metric("foundry_drift_severity").set(SEVERITY_LEVEL.get(severity, 0), tags={"model": model})


def record_retrain(*, model: str, outcome: str) -> None:
    """Count one finished retrain job of ``model`` with its outcome."""
    if _connected():
        _metric("foundry_retrains_total").inc(1, tags={"model": model, "outcome": outcome})


def record_alias_change(*, model: str, alias: str) -> None:
    """Count one alias change (set or removed)."""
    if _connected():
        _metric("foundry_alias_changes_total").inc(1, tags={"model": model, "alias": alias})
