"""The portfolio dashboard: one self-contained HTML page a person opens.

Per catalog model, grouped by roadmap wave: gate and the champion's holdout
metric (pass/fail), its live metric on labelled answers, the champion and
challenger versions, drift state from the latest monitoring check, the last
retrain, and two small plots — the gate metric of every registered version
against the gate line, and the last portfolio run's holdout actual-vs-predicted.

Every figure comes from the foundry's own state: the MLflow registry, the
prediction log joined with late labels, ``$FOUNDRY_HOME/monitoring``,
``$FOUNDRY_HOME/retraining`` and ``$FOUNDRY_HOME/reports/portfolio``. Missing
state shows as "-", never as a made-up number.

Example:
    >>> rows = collect_status(settings=settings, catalog=load_catalog())   # doctest: +SKIP
    >>> Path("status.html").write_text(render_status_page(rows))            # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec

__all__ = ["ModelStatus", "collect_status", "render_status_page"]

WAVES = {
    "prod": "In production",
    "1": "Wave 1",
    "2": "Wave 2",
    "3": "Wave 3",
    "4": "Wave 4",
    "extra": "Extra",
}


@dataclass
class ModelStatus:
    """What the dashboard shows for one model."""

    spec: ModelSpec
    champion: str | None = None
    challenger: str | None = None
    metric: float | None = None
    passes: bool | None = None
    live_metric: float | None = None
    live_n: int = 0
    drift: str = "-"
    drifted_features: list[str] = field(default_factory=list)
    retrain: str = "-"
    history: list[tuple[str, float]] = field(default_factory=list)  # (version, gate metric)
    plot: dict[str, list[Any]] = field(default_factory=dict)


def _portfolio_plots(home: Path) -> dict[str, dict[str, list[Any]]]:
    path = home / "reports" / "portfolio" / "portfolio.json"
    try:
        rows = json.loads(path.read_text())["rows"]
    except (FileNotFoundError, ValueError, KeyError):
        return {}
    return {r["name"]: r.get("plot") or {} for r in rows}


def _drift(home: Path, model: str) -> tuple[str, list[str]]:
    path = home / "monitoring" / model / "latest.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return "-", []
    return str(data.get("severity", "-")), [str(f) for f in data.get("drifted_features", [])]


def _retrain(home: Path, model: str) -> str:
    from raycore.retraining.state import RetrainStateStore

    try:
        state = RetrainStateStore(home=home).get(model)
    except Exception:  # an unreadable state file is reported by `foundry retrain --status`
        return "state unreadable"
    if state.last_started_at is None:
        return "-"
    last = state.last_result.get("stage", state.stage) if state.last_result else state.stage
    return f"{state.last_started_at[:16].replace('T', ' ')}: {last}" + (
        f" (now {state.stage})" if state.stage != "idle" else ""
    )


def collect_status(*, settings: FoundrySettings, catalog: Any) -> list[ModelStatus]:
    """Read every model's state; nothing is trained or changed."""
    from raycore.retraining.evidence import live_metric

    home = settings.home
    plots = _portfolio_plots(home)
    store = None
    if not settings.tracking_uri.startswith("sqlite:") or (home / "mlflow.db").exists():
        from raycore.registry.store import ModelStore

        store = ModelStore(settings)
    out = []
    for spec in catalog:
        row = ModelStatus(spec=spec, plot=plots.get(spec.name, {}))
        versions = store.versions(spec.name) if store is not None else []
        for v in versions:
            if "metric_value" in v.tags:
                row.history.append((v.version, float(v.tags["metric_value"])))
            if "champion" in v.aliases:
                row.champion = v.version
                row.metric = float(v.tags["metric_value"]) if "metric_value" in v.tags else None
            if "challenger" in v.aliases:
                row.challenger = v.version
        if row.metric is not None:
            row.passes = spec.gate.passes(row.metric)
        if row.champion is not None:
            live = live_metric(spec, home=home, version=row.champion)
            row.live_n = live.n
            row.live_metric = live.value if live.n and math.isfinite(live.value) else None
        row.drift, row.drifted_features = _drift(home, spec.name)
        row.retrain = _retrain(home, spec.name)
        out.append(row)
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _history_svg(row: ModelStatus, width: int = 220, height: int = 90) -> str:
    points = row.history
    if not points:
        return f"<svg width='{width}' height='{height}'><text x='6' y='20' font-size='11'>no version yet</text></svg>"
    values = [v for _, v in points] + [row.spec.gate.threshold]
    lo, hi = min(values), max(values)
    span = (hi - lo) or abs(hi) or 1.0
    pad = 12

    def y(v: float) -> float:
        return height - pad - (v - lo) / span * (height - 2 * pad)

    def x(i: int) -> float:
        return pad + (i / max(1, len(points) - 1)) * (width - 2 * pad)

    gate_y = y(row.spec.gate.threshold)
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points)
    )
    dots = "".join(
        f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='3' fill='{'#2a7' if row.spec.gate.passes(v) else '#c33'}'>"
        f"<title>v{ver}: {v:.4g}</title></circle>"
        for i, (ver, v) in enumerate(points)
    )
    return (
        f"<svg width='{width}' height='{height}' style='border:1px solid #eee'>"
        f"<line x1='{pad}' x2='{width - pad}' y1='{gate_y:.1f}' y2='{gate_y:.1f}' stroke='#999' stroke-dasharray='4 3'/>"
        f"<text x='{pad}' y='{max(10.0, gate_y - 3):.1f}' font-size='9' fill='#777'>gate {row.spec.gate.describe()}</text>"
        f"<path d='{path}' fill='none' stroke='#36c'/>{dots}</svg>"
    )


def render_status_page(
    rows: list[ModelStatus], *, title: str = "Data Foundry — portfolio status"
) -> str:
    """A self-contained page (inline CSS and SVG, no scripts, no network)."""
    from raycore.training.portfolio import _svg

    trained = sum(r.champion is not None for r in rows)
    passing = sum(bool(r.passes) for r in rows)
    drifting = sum(r.drift in ("HIGH", "CRITICAL") for r in rows)
    head = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}"
        ".kpi{display:inline-block;margin-right:28px;font-size:14px}.kpi b{font-size:22px;display:block}"
        ".cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:6px;padding:10px;"
        "width:470px;font-size:12px}.card h3{font-size:14px;margin:0 0 6px}.pass{color:#1a7f37}.fail{color:#c33}"
        ".none{color:#888}.sev-HIGH,.sev-CRITICAL{color:#c33;font-weight:bold}.sev-MEDIUM{color:#b60}"
        "table{border-collapse:collapse}td{padding:1px 8px 1px 0;vertical-align:top}.plots{display:flex;gap:8px}"
        "</style></head><body>"
    )
    body = [
        head,
        f"<h1>{html.escape(title)}</h1>",
        f"<div class='kpi'><b>{len(rows)}</b>models in the catalog</div>",
        f"<div class='kpi'><b>{trained}</b>with a champion</div>",
        f"<div class='kpi'><b>{passing}</b>champions passing their gate</div>",
        f"<div class='kpi'><b>{drifting}</b>with HIGH/CRITICAL drift</div>",
        f"<p class='none'>generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}</p>",
    ]
    for wave, label in WAVES.items():
        group = [r for r in rows if r.spec.wave == wave]
        if not group:
            continue
        body.append(f"<h2>{label} ({len(group)})</h2><div class='cards'>")
        for r in group:
            verdict = (
                "<span class='none'>untrained</span>"
                if r.passes is None
                else (
                    "<span class='pass'>passes</span>"
                    if r.passes
                    else "<span class='fail'>fails</span>"
                )
            )
            live = (
                f"{_fmt(r.live_metric)} (n={r.live_n})"
                if r.live_n
                else "<span class='none'>no labelled answers</span>"
            )
            drift = html.escape(r.drift) + (
                f" — {html.escape(', '.join(r.drifted_features[:4]))}" if r.drifted_features else ""
            )
            body.append(
                f"<div class='card'><h3>{r.spec.id} {html.escape(r.spec.name)}</h3><table>"
                f"<tr><td>task</td><td>{r.spec.task} · {r.spec.algorithm.family}</td></tr>"
                f"<tr><td>gate</td><td>{html.escape(r.spec.gate.describe())}: {_fmt(r.metric)} {verdict}</td></tr>"
                f"<tr><td>champion</td><td>{'v' + r.champion if r.champion else '-'}"
                f"{' · challenger v' + r.challenger if r.challenger else ''}</td></tr>"
                f"<tr><td>live {r.spec.gate.metric}</td><td>{live}</td></tr>"
                f"<tr><td>drift</td><td class='sev-{html.escape(r.drift)}'>{drift}</td></tr>"
                f"<tr><td>last retrain</td><td>{html.escape(r.retrain)}</td></tr></table>"
                f"<div class='plots'>{_history_svg(r)}{_svg(r.plot, size=150) if r.plot else ''}</div></div>"
            )
        body.append("</div>")
    body.append("</body></html>")
    return "\n".join(body)
