"""Data-quality reports and the quality gate.

One refine run writes one JSON report under ``<lake>/reports/silver/<run_id>.json``
with, per table and per batch, row counts and the pass rate of every declared
rule. A batch whose pass rate (rows passing every rule / rows) is below the
dataset's ``quality_gate.min_pass_rate`` is not promoted to gold;
:class:`QualityGateError` names the failing rules and their pass rates.

Example:
    >>> b = BatchQuality("b1", rows=100, silver_rows=90, quarantined_rows=10,
    ...                  failures={"range:revenue": 10}, min_pass_rate=0.95)
    >>> b.promoted, b.pass_rate
    (False, 0.9)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from raycore.data.lake import Lake
from raycore.data.layers.rules import Rule
from raycore.errors import DataError

__all__ = ["BatchQuality", "QualityGateError", "QualityReport", "TableQuality", "write_report"]


def _rate(passed: int, total: int) -> float:
    return 1.0 if total == 0 else round(passed / total, 6)


@dataclass(frozen=True)
class BatchQuality:
    """Counts of one refined bronze batch."""

    batch_id: str
    rows: int
    silver_rows: int
    quarantined_rows: int
    failures: dict[str, int]
    min_pass_rate: float
    engine: str = "pandas"

    @property
    def pass_rate(self) -> float:
        return _rate(self.silver_rows, self.rows)

    @property
    def promoted(self) -> bool:
        """Whether the batch passed its quality gate (and may reach gold)."""
        return self.pass_rate >= self.min_pass_rate

    def rule_pass_rate(self, rule: str) -> float:
        return _rate(self.rows - self.failures.get(rule, 0), self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "rows": self.rows,
            "silver_rows": self.silver_rows,
            "quarantined_rows": self.quarantined_rows,
            "pass_rate": self.pass_rate,
            "promoted": self.promoted,
            "engine": self.engine,
            "failures": dict(self.failures),
        }


@dataclass(frozen=True)
class TableQuality:
    """Quality of one dataset in one refine run: per rule and per table."""

    dataset: str
    rules: tuple[Rule, ...]
    batches: tuple[BatchQuality, ...] = ()
    min_pass_rate: float = 0.95
    ignored_columns: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

    @property
    def silver_rows(self) -> int:
        return sum(b.silver_rows for b in self.batches)

    @property
    def quarantined_rows(self) -> int:
        return sum(b.quarantined_rows for b in self.batches)

    @property
    def pass_rate(self) -> float:
        return _rate(self.silver_rows, self.rows)

    @property
    def passed(self) -> bool:
        """Whether every batch of this run passed the gate."""
        return all(b.promoted for b in self.batches)

    def failed(self, rule: str) -> int:
        return sum(b.failures.get(rule, 0) for b in self.batches)

    def rule_pass_rates(self) -> dict[str, float]:
        return {r.name: _rate(self.rows - self.failed(r.name), self.rows) for r in self.rules}

    def failing_rules(self) -> dict[str, float]:
        """Rules with at least one failure, and their pass rates."""
        return {name: rate for name, rate in self.rule_pass_rates().items() if self.failed(name)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "silver_rows": self.silver_rows,
            "quarantined_rows": self.quarantined_rows,
            "pass_rate": self.pass_rate,
            "min_pass_rate": self.min_pass_rate,
            "passed_gate": self.passed,
            "ignored_columns": list(self.ignored_columns),
            "rules": [
                {
                    "rule": r.name,
                    "check": r.check,
                    "column": r.column,
                    "checked": self.rows,
                    "failed": self.failed(r.name),
                    "pass_rate": _rate(self.rows - self.failed(r.name), self.rows),
                }
                for r in self.rules
            ],
            "batches": [b.to_dict() for b in self.batches],
        }


@dataclass(frozen=True)
class QualityReport:
    """The report of one refine run."""

    run_id: str
    engine: str
    started_at: str
    finished_at: str
    tables: dict[str, TableQuality] = field(default_factory=dict)
    path: str = ""

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "layer": "silver",
            "engine": self.engine,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "passed": self.passed,
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
        }

    def gate_error(self) -> QualityGateError | None:
        """The error to raise when a batch missed its gate, naming rules and pass rates."""
        failed = [t for t in self.tables.values() if not t.passed]
        if not failed:
            return None
        lines = []
        for t in failed:
            rules = ", ".join(f"{rule} {rate:.1%}" for rule, rate in sorted(t.failing_rules().items(), key=lambda x: x[1]))
            lines.append(
                f"'{t.dataset}' pass rate {t.pass_rate:.1%} < min {t.min_pass_rate:.1%} (failing rules: {rules})"
            )
        return QualityGateError(
            "quality gate failed, batch not promoted to gold: " + "; ".join(lines),
            report_path=self.path,
            datasets=[t.dataset for t in failed],
            hint=f"silver and quarantine were written; read the report {self.path} and the quarantine "
            "(raycore.data.layers.quarantine) to fix the source, then ingest a corrected batch",
        )


class QualityGateError(DataError):
    """A refined batch missed its quality gate; it stays out of gold (nothing is lost)."""

    def __init__(
        self,
        message: str,
        *,
        report_path: str = "",
        datasets: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        self.report_path = report_path
        self.datasets = list(datasets or [])
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"report_path": self.report_path, "datasets": self.datasets, "hint": self.hint}


def write_report(lake: Lake, report: QualityReport) -> str:
    """Write the report JSON; return its full path."""
    return lake.write_bytes(f"reports/silver/{report.run_id}.json", json.dumps(report.to_dict(), indent=1).encode())
