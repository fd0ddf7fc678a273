"""The drift monitor of one model: a prediction-log window against the champion's reference profile.

A check:

1. reads the window of the prediction log (``since``/``until``) answered by the
   champion version;
2. rebuilds the model features from the logged inputs with the version's own
   feature view (the logged inputs are the assembled raw rows the replica
   predicted from, so this is the same ``compute`` as at request time);
3. runs the fast check (``check_drift``) against the reference profile stored
   with the version at training time (MLflow run artifact ``reference_profile``);
4. with labels that have arrived, measures the live metric and its drop
   against the holdout metric the version was registered with, and the
   realised conformal coverage per level (``raycore.conformal.online``: a
   ``coverage`` block; out of tolerance raises the severity to MEDIUM/HIGH);
   for a binary classifier, before and after labels, a label-free estimate of
   the gate metric against the same estimate on the holdout
   (``raycore.monitoring.estimation``: an ``estimated`` block, reported, not
   graded: it cannot see a concept change);
5. grades the severity (``SeverityConfig`` from the catalog's ``monitoring:``)
   and writes ``drift.json`` (and, when asked, Evidently's HTML + JSON) under
   ``$FOUNDRY_HOME/monitoring/<model>/<check id>/``, updates ``latest.json``,
   appends MEDIUM and worse to ``$FOUNDRY_HOME/monitoring/alerts.jsonl`` and,
   when a webhook is configured, posts the alert there.

Example:
    >>> result = DriftMonitor(settings=settings, spec=spec).check(since="2026-11-20")   # doctest: +SKIP
    >>> result.severity, result.drifted_features                                        # doctest: +SKIP
    ('HIGH', ['tenure_days', 'late_deliveries_90d'])
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import DataError, RaycoreError, RegistryError
from raycore.monitoring.drift import check_drift
from raycore.monitoring.metrics import record_drift_severity
from raycore.monitoring.reference import ReferenceProfile
from raycore.settings import FoundrySettings
from raycore.specs import ModelSpec
from raycore.specs.monitoring import Severity, SeverityConfig

__all__ = ["ALERTS_FILE", "CheckResult", "DriftMonitor"]

log = logging.getLogger(__name__)
ALERTS_FILE = "alerts.jsonl"


@dataclass(frozen=True)
class CheckResult:
    """What one check found (JSON-ready with ``asdict``)."""

    model: str
    check_id: str
    version: str
    rows: int
    since: str | None
    until: str | None
    severity: str
    drifted_features: list[str]
    share_drifted: float
    prediction_drift: bool
    live_n: int = 0
    live_metric: float | None = None
    holdout_metric: float | None = None
    metric_drop: float | None = None
    report_dir: str = ""
    evidently_html: str | None = None
    evidently_drifted: list[str] = field(default_factory=list)
    alerted: bool = False
    estimated: dict[str, Any] | None = None  # label-free estimate of the gate metric (binary models)
    # Online conformal coverage of the window's labelled answers (raycore.conformal.online);
    # None when the version has no calibrator.
    coverage: dict[str, Any] | None = None


def _rel_drop(op: str, holdout: float, live: float) -> float:
    """Relative drop of the live metric against the holdout one (+ is worse)."""
    if abs(holdout) < 1e-12:
        return 0.0
    return (holdout - live) / abs(holdout) if op == ">=" else (live - holdout) / abs(holdout)


class DriftMonitor:
    """Checks windows of one model's live traffic; see the module docstring."""

    def __init__(
        self, *, settings: FoundrySettings, spec: ModelSpec, webhook_url: str | None = None
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.webhook_url = webhook_url
        self.folder = settings.home / "monitoring" / spec.name
        self._profiles: dict[str, ReferenceProfile] = {}
        self._bundles: dict[str, Any] = {}
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from raycore.registry.store import ModelStore

            self._store = ModelStore(self.settings)
        return self._store

    def reference(self, version: str) -> ReferenceProfile:
        """The reference profile logged with ``version`` (cached)."""
        if version not in self._profiles:
            import mlflow

            from raycore.training.candidates import REFERENCE_PROFILE_ARTIFACT

            run_id = self.store.client.get_model_version(self.spec.name, version).run_id
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=REFERENCE_PROFILE_ARTIFACT,
                    tracking_uri=self.store.uri,
                )
            except Exception as exc:  # MLflow raises several types for a missing artifact
                raise RegistryError(
                    f"{self.spec.name} v{version} has no reference profile ({type(exc).__name__})",
                    hint="versions trained before profiles were logged cannot be monitored; retrain the model",
                ) from exc
            self._profiles[version] = ReferenceProfile.load(Path(local))
        return self._profiles[version]

    def _bundle(self, version: str) -> Any:
        if version not in self._bundles:
            self._bundles[version], _ = self.store.load_bundle(self.spec.name, version=version)
        return self._bundles[version]

    def window(
        self, *, version: str, since: Any = None, until: Any = None
    ) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
        """(model features, predictions, raw log rows) of ``version``'s answers in the window."""
        from raycore.serving.prediction_log import read_prediction_log

        rows = read_prediction_log(
            home=self.settings.home, model=self.spec.name, since=since, until=until
        )
        rows = rows[rows["version"].astype(str) == str(version)].reset_index(drop=True)
        inputs = rows[[c for c in rows.columns if c.startswith("in_")]].rename(
            columns=lambda c: c[3:]
        )
        bundle = self._bundle(version)
        if rows.empty:
            return pd.DataFrame(), np.array([]), rows
        try:
            features = bundle.view.compute(bundle.view.coerce_inputs(inputs))
        except (KeyError, ValueError, TypeError, DataError) as exc:
            raise DataError(
                f"the logged inputs of {self.spec.name} v{version} cannot rebuild its features: {exc}",
                hint="the prediction log must hold the assembled raw rows the replica predicted from",
            ) from exc
        return features, rows["out_prediction"].to_numpy(), rows

    def check(
        self, *, since: Any = None, until: Any = None, evidently: bool = False
    ) -> CheckResult:
        """Run one check of the champion's window; write the report files and alert when it matters."""
        version = self.store.alias_version(self.spec.name, "champion")
        if version is None:
            raise RegistryError(
                f"{self.spec.name} has no champion to monitor",
                hint=f"`foundry train {self.spec.id}`",
            )
        profile = self.reference(version)
        features, predictions, rows = self.window(version=version, since=since, until=until)
        if features.empty:
            raise DataError(
                f"no logged answer of {self.spec.name} v{version} in the window",
                hint="widen the window or wait for traffic",
            )
        report = check_drift(
            reference=profile,
            current=features,
            predictions=predictions,
            config=self.spec.monitoring.drift,
        )
        live_n, live_value, holdout, drop = self._performance(version, rows)
        severity = report.severity(
            SeverityConfig.from_monitoring(self.spec.monitoring),
            # a live metric better than the holdout's is no drop (severity takes drops >= 0)
            metric_drop=None if drop is None else max(drop, 0.0),
        )
        estimated = self._estimate(profile, predictions)
        coverage = self._coverage(version, rows, since=since, until=until)
        if coverage is not None and coverage.get("status") == "out_of_tolerance":
            severity = max(severity, Severity(coverage["severity"]))
        check_id = f"{pd.Timestamp.now(tz='UTC').strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder = self.folder / check_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "drift.json").write_text(
            json.dumps(
                {**report.to_dict(), "coverage": coverage, "estimated": estimated},
                indent=1,
                default=str,
            )
        )
        evid_html, evid_cols = None, []
        if evidently:
            from raycore.monitoring.evidently_report import evidently_report_for_profile

            evid = evidently_report_for_profile(
                profile=profile,
                current=features,
                folder=folder,
                name="evidently",
                predictions=predictions,
                config=self.spec.monitoring.drift,
            )
            evid_html, evid_cols = str(evid.html_path), evid.drifted_columns
        result = CheckResult(
            model=self.spec.name,
            check_id=check_id,
            version=version,
            rows=len(features),
            since=None if since is None else str(since),
            until=None if until is None else str(until),
            severity=severity.value,
            drifted_features=report.drifted_features,
            share_drifted=report.share_drifted,
            prediction_drift=report.prediction_drift,
            live_n=live_n,
            live_metric=live_value,
            holdout_metric=holdout,
            metric_drop=drop,
            report_dir=str(folder),
            evidently_html=evid_html,
            evidently_drifted=evid_cols,
            alerted=severity >= Severity.MEDIUM,
            coverage=coverage,
            estimated=estimated,
        )
        record_drift_severity(model=self.spec.name, severity=result.severity)
        (folder / "result.json").write_text(json.dumps(asdict(result), indent=1, default=str))
        (self.folder / "latest.json").write_text(json.dumps(asdict(result), indent=1, default=str))
        if result.alerted:
            self._alert(result)
        return result

    def _estimate(self, profile: ReferenceProfile, predictions: np.ndarray) -> dict[str, Any] | None:
        """Label-free estimate of the gate metric on the window vs the holdout (binary models only)."""
        from raycore.monitoring.estimation import estimate_performance
        from raycore.monitoring.reference import PREDICTION

        if self.spec.task != "binary" or PREDICTION not in profile.sample.columns:
            return None
        threshold = self.spec.threshold.default if self.spec.threshold is not None else 0.5
        try:
            live = np.asarray(predictions, dtype="float64")
            reference = profile.sample[PREDICTION].to_numpy(dtype="float64")
        except (TypeError, ValueError):
            return None
        found = estimate_performance(
            metric=self.spec.gate.metric,
            higher_is_better=self.spec.gate.op in (">=", ">"),
            live_proba=live[np.isfinite(live)],
            reference_proba=reference[np.isfinite(reference)],
            threshold=threshold,
        )
        return None if found is None else found.to_dict()

    def _coverage(
        self, version: str, rows: pd.DataFrame, *, since: Any, until: Any
    ) -> dict[str, Any] | None:
        """Realised conformal coverage per level of the window's labelled answers (None: no calibrator)."""
        from raycore.conformal.online import track_coverage

        bundle = self._bundle(version)
        if bundle.calibrator is None:
            return None
        try:
            return track_coverage(
                settings=self.settings,
                spec=self.spec,
                version=version,
                bundle=bundle,
                since=since,
                until=until,
                log_rows=rows,
            ).to_dict()
        except RaycoreError as exc:  # coverage must not cost the drift check; the block says why
            return {"status": "error", "severity": "NONE", "error": str(exc)}

    def _performance(
        self, version: str, rows: pd.DataFrame
    ) -> tuple[int, float | None, float | None, float | None]:
        from raycore.feedback import join_labels, read_labels
        from raycore.training.metrics import compute_metric

        holdout = None
        tags = self.store.client.get_model_version(self.spec.name, version).tags
        if "metric_value" in tags:
            holdout = float(tags["metric_value"])
        joined = join_labels(rows, read_labels(home=self.settings.home, model=self.spec.name))
        if joined.empty:
            return 0, None, holdout, None
        try:
            value = float(
                compute_metric(
                    self.spec.gate.metric,
                    y_true=joined["label"].to_numpy(),
                    y_pred=joined["out_prediction"].to_numpy(),
                )
            )
        except (ValueError, ZeroDivisionError):
            return len(joined), None, holdout, None
        if not math.isfinite(value) or holdout is None:
            return len(joined), value if math.isfinite(value) else None, holdout, None
        return len(joined), value, holdout, _rel_drop(self.spec.gate.op, holdout, value)

    def _alert(self, result: CheckResult) -> None:
        line = json.dumps(
            {"at": pd.Timestamp.now(tz="UTC").isoformat(), **asdict(result)}, default=str
        )
        path = self.folder.parent / ALERTS_FILE
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if self.webhook_url:
            import httpx

            try:
                httpx.post(
                    self.webhook_url,
                    content=line,
                    headers={"content-type": "application/json"},
                    timeout=5.0,
                )
            except (
                httpx.HTTPError
            ) as exc:  # an unreachable webhook must not lose the alert (it is in the file)
                log.warning("alert webhook %s failed: %s", self.webhook_url, exc)
