"""Drift injection: from a start date on, the simulated business changes in a declared way.

A ``DriftSpec`` names a start date, a kind, a magnitude and the tables (and
optionally columns) it affects. Generators that own a driftable table apply it to
rows whose event time is >= ``start``; rows before the start are bit-identical to
the world generated without drift (every random draw of a driftable table is
made in time order from its own stream). What was changed is recorded in the
truth table ``drift_truth`` and in a ``drifted`` column of the affected truth table.

Kinds and what ``magnitude`` (m, 0 < m <= 1) means for each driftable table:

    covariate     the inputs move, the generating function stays:
                  orders.amount                         x (1 + m)
                  product_prices_daily.list_price/price  x (1 + m)   (demand follows its elasticity)
                  credit_applications.annual_income      x exp(-m),  debt_to_income x (1 + m)
                  infra_metrics.value                    baseline x (1 + m) (not an anomaly)
    concept       the generating function moves, the inputs stay:
                  customer_closures.closed_at  churn logit + 2m at quarter snapshots
                  product_demand_weekly.units elasticity x (1 + m)
                  credit_outcomes.defaulted_12m default logit + 2m
    new_category  a share m of new rows carries a category never seen before:
                  orders.channel "marketplace", products.category "smart_home",
                  credit_applications.loan_purpose "bnpl_refinance"

Example:
    >>> spec = DriftSpec(start=date(2025, 1, 6), kind="covariate", magnitude=0.3, tables=("orders",))
    >>> spec.affects("orders", "amount")
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from raycore.data.world.config import World

__all__ = ["DRIFTABLE", "NEW_CATEGORY", "DriftKind", "DriftSpec", "active", "record_drift"]

DriftKind = Literal["covariate", "concept", "new_category"]

# table -> kind -> columns that kind changes; the only places drift can be injected.
DRIFTABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "orders": {"covariate": ("amount",), "new_category": ("channel",)},
    "customer_closures": {"concept": ("closed_at",)},
    "product_prices_daily": {"covariate": ("list_price", "price")},
    "product_demand_weekly": {"concept": ("units",)},
    "products": {"new_category": ("category",)},
    "credit_applications": {
        "covariate": ("annual_income", "debt_to_income"),
        "new_category": ("loan_purpose",),
    },
    "credit_outcomes": {"concept": ("defaulted_12m",)},
    "infra_metrics": {"covariate": ("value",)},
}

# The category value a new_category drift introduces, per (table, column).
NEW_CATEGORY: dict[tuple[str, str], str] = {
    ("orders", "channel"): "marketplace",
    ("products", "category"): "smart_home",
    ("credit_applications", "loan_purpose"): "bnpl_refinance",
}


@dataclass(frozen=True)
class DriftSpec:
    """A change of the simulated business from ``start`` on (see the module docstring for each kind)."""

    start: date
    kind: DriftKind
    magnitude: float
    tables: tuple[str, ...]
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("covariate", "concept", "new_category"):
            raise ValueError(f"kind must be covariate, concept or new_category, got {self.kind!r}")
        if not 0.0 < self.magnitude <= 1.0:
            raise ValueError(f"magnitude ({self.magnitude}) must be in (0, 1]")
        if not self.tables:
            raise ValueError("tables must name at least one driftable table")
        for table in self.tables:
            kinds = DRIFTABLE.get(table, {})
            if self.kind not in kinds:
                supported = sorted(t for t, k in DRIFTABLE.items() if self.kind in k)
                raise ValueError(
                    f"table {table!r} does not support {self.kind} drift; tables that do: {supported}"
                )
        allowed = {c for t in self.tables for c in DRIFTABLE[t][self.kind]}
        unknown = sorted(set(self.columns) - allowed)
        if unknown:
            raise ValueError(
                f"columns {unknown} are not driftable by {self.kind} in {self.tables}; allowed: {sorted(allowed)}"
            )

    @property
    def start_ts(self) -> np.datetime64:
        return np.datetime64(pd.Timestamp(self.start).to_datetime64(), "ns")

    def affects(self, table: str, column: str | None = None) -> bool:
        """Whether this spec changes ``table`` (and ``column``, when given)."""
        if table not in self.tables:
            return False
        if column is None:
            return True
        cols = self.columns or DRIFTABLE[table][self.kind]
        return column in cols and column in DRIFTABLE[table][self.kind]

    def after(self, times: np.ndarray | pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Boolean mask of event times at or after ``start``."""
        return np.asarray(pd.to_datetime(times).to_numpy(dtype="datetime64[ns]") >= self.start_ts)


def active(drift: DriftSpec | None, table: str, column: str | None = None) -> DriftSpec | None:
    """``drift`` if it changes ``table`` (and ``column``), else None: lets a generator write ``if d := active(...)``."""
    return drift if drift is not None and drift.affects(table, column) else None


def record_drift(
    world: World, spec: DriftSpec, *, table: str, column: str, rows_affected: int
) -> None:
    """Append what was changed to ``world.truth['drift_truth']``."""
    row = pd.DataFrame(
        {
            "table_name": [table],
            "column_name": [column],
            "kind": [spec.kind],
            "start": [pd.Timestamp(spec.start)],
            "magnitude": [float(spec.magnitude)],
            "rows_affected": np.array([rows_affected], dtype="int64"),
        }
    )
    previous = world.truth.get("drift_truth")
    world.truth["drift_truth"] = (
        row if previous is None else pd.concat([previous, row], ignore_index=True)
    )
