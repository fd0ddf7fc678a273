"""Train a whole catalog and report it: one row per model, as JSON and as HTML.

``train_portfolio`` trains the given specs one after another on the same Ray
cluster, never stopping at a model that fails (its error is the row's
``error``); ``write_portfolio`` writes ``portfolio.json`` and
``portfolio.html`` (a table plus a small actual-vs-predicted plot per model,
inline SVG, no plotting library needed).

Example:
    >>> rows = [PortfolioRow("mdl-001", "sales_forecasting", "mape", 0.11, 0.085, "mape <= 0.15", True, 30.0)]
    >>> json_path, html_path = write_portfolio(rows, Path("/tmp/report"))   # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from raycore.errors import GateFailedError, RaycoreError
from raycore.specs import ModelSpec

__all__ = ["PortfolioRow", "render_html", "train_portfolio", "write_portfolio"]

Event = Callable[[str, ModelSpec, "PortfolioRow | None"], None]


@dataclass
class PortfolioRow:
    """The outcome of one model in a portfolio run."""

    model_id: str
    name: str
    metric_name: str
    metric: float | None
    oracle: float | None
    gate: str
    passed: bool
    seconds: float
    oracle_ratio: float | None = None
    version: str | None = None
    run_id: str | None = None
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    plot: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.error and not self.run_id:
            return "error"
        return "pass" if self.passed else "fail"


def train_portfolio(
    specs: Iterable[ModelSpec],
    *,
    train: Callable[[ModelSpec, Callable[[str], None]], Any],
    on_event: Event | None = None,
) -> list[PortfolioRow]:
    """Train every spec with ``train(spec, progress)``; a failure is recorded, never fatal.

    ``on_event(kind, spec, row)`` is called with kind ``start``, ``step:<message>``
    and ``done`` (with the row) for live progress displays.
    """
    from raycore.training.pipeline import oracle_ratio

    emit = on_event or (lambda *_: None)
    rows: list[PortfolioRow] = []
    for spec in specs:
        emit("start", spec, None)
        started = time.perf_counter()
        try:
            out = train(spec, partial(_step, emit, spec))
            row = PortfolioRow(
                model_id=spec.id,
                name=spec.name,
                metric_name=out.metric_name,
                metric=out.metric,
                oracle=out.oracle_metric,
                gate=out.gate,
                passed=out.passed,
                seconds=out.seconds,
                oracle_ratio=oracle_ratio(spec.gate.op, out.metric, out.oracle_metric),
                version=out.version,
                run_id=out.run_id,
                metrics=dict(out.extra),
                notes=out.notes,
                plot=out.plot,
            )
        except GateFailedError as exc:
            row = PortfolioRow(
                model_id=spec.id,
                name=spec.name,
                metric_name=spec.gate.metric,
                metric=exc.value,
                oracle=None,
                gate=spec.gate.describe(),
                passed=False,
                seconds=time.perf_counter() - started,
                run_id=exc.run_id,
                error=exc.message,
            )
        except RaycoreError as exc:
            row = _error_row(
                spec, f"{exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""), started
            )
        except Exception as exc:  # one broken model must not stop the portfolio
            row = _error_row(spec, f"{type(exc).__name__}: {exc}", started)
        rows.append(row)
        emit("done", spec, row)
    return rows


def _step(emit: Event, spec: ModelSpec, message: str) -> None:
    emit(f"step:{message}", spec, None)


def _error_row(spec: ModelSpec, message: str, started: float) -> PortfolioRow:
    return PortfolioRow(
        model_id=spec.id,
        name=spec.name,
        metric_name=spec.gate.metric,
        metric=None,
        oracle=None,
        gate=spec.gate.describe(),
        passed=False,
        seconds=time.perf_counter() - started,
        error=message,
    )


def write_portfolio(rows: list[PortfolioRow], folder: Path) -> tuple[Path, Path]:
    """Write ``portfolio.json`` and ``portfolio.html`` into ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "models": len(rows),
        "passed": sum(r.passed for r in rows),
        "total_seconds": round(sum(r.seconds for r in rows), 1),
        "rows": [{**asdict(r), "status": r.status} for r in rows],
    }
    json_path = folder / "portfolio.json"
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default))
    html_path = folder / "portfolio.html"
    html_path.write_text(render_html(rows))
    return json_path, html_path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def render_html(rows: list[PortfolioRow]) -> str:
    """A self-contained HTML report: summary table and one small plot per model."""
    passed = sum(r.passed for r in rows)
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Data Foundry portfolio</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}"
        ".pass{color:#080}.fail{color:#b00}.error{color:#b60}.card{display:inline-block;margin:8px;"
        "vertical-align:top;font-size:12px}</style></head><body>",
        f"<h1>Portfolio: {passed} of {len(rows)} models pass their gate</h1>",
        "<table><tr><th>id</th><th>model</th><th>metric</th><th>value</th><th>oracle</th>"
        "<th>ratio to oracle</th><th>gate</th><th>result</th><th>seconds</th></tr>",
    ]
    for r in rows:
        body.append(
            f"<tr><td>{r.model_id}</td><td>{html.escape(r.name)}</td><td>{r.metric_name}</td>"
            f"<td>{_fmt(r.metric)}</td><td>{_fmt(r.oracle)}</td><td>{_fmt(r.oracle_ratio, 3)}</td>"
            f"<td>{html.escape(r.gate)}</td><td class='{r.status}'>{r.status}</td><td>{r.seconds:.1f}</td></tr>"
        )
    body.append("</table><h2>Holdout: actual vs predicted</h2>")
    for r in rows:
        caption = html.escape(r.error or r.notes or "")
        body.append(
            f"<div class='card'><b>{r.model_id} {html.escape(r.name)}</b><br>{_svg(r.plot)}"
            f"<div style='width:240px'>{caption[:300]}</div></div>"
        )
    body.append("</body></html>")
    return "\n".join(body)


def _svg(plot: dict[str, list[Any]], size: int = 240) -> str:
    """Scatter of actual (x) vs predicted (y) with the identity line; a bar chart of counts for classes."""
    actual, pred = plot.get("actual", []), plot.get("predicted", [])
    if not actual or len(actual) != len(pred):
        return f"<svg width='{size}' height='{size}'><text x='10' y='20'>no plot</text></svg>"
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in [*actual, *pred])
    if not numeric:
        hits = sum(str(a) == str(p) for a, p in zip(actual, pred, strict=True))
        share = hits / len(actual)
        return (
            f"<svg width='{size}' height='40'><rect x='0' y='10' width='{size * share:.0f}' height='20' fill='#4a4'/>"
            f"<text x='4' y='25'>{share:.0%} of {len(actual)} sampled rows correct</text></svg>"
        )
    values = [float(v) for v in [*actual, *pred] if math.isfinite(float(v))]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    pad = 10

    def pos(v: float) -> float:
        return pad + (float(v) - lo) / span * (size - 2 * pad)

    dots = "".join(
        f"<circle cx='{pos(a):.1f}' cy='{size - pos(p):.1f}' r='1.6' fill='#36c' fill-opacity='0.5'/>"
        for a, p in zip(actual, pred, strict=True)
        if math.isfinite(float(a)) and math.isfinite(float(p))
    )
    line = f"<line x1='{pad}' y1='{size - pad}' x2='{size - pad}' y2='{pad}' stroke='#999'/>"
    return f"<svg width='{size}' height='{size}' style='border:1px solid #eee'>{line}{dots}</svg>"
