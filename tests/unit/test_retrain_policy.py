"""Retrain safeguards and live evidence: pure logic on real files, no Ray."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.catalog import load_catalog
from raycore.feedback import count_labels_since, record_labels
from raycore.retraining.evidence import live_metric, relative_change, shadow_comparison
from raycore.retraining.policy import RetrainHistory, Trigger, cadence_due, judge
from raycore.retraining.state import ModelRetrainState, RetrainStateStore
from raycore.serving.traffic import ShadowLog
from raycore.specs.model import RetrainSpec
from raycore.specs.monitoring import Severity

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
AUTO = RetrainSpec(
    cadence="weekly", auto=True, cooldown_days=7, min_new_labels=100, min_severity="HIGH"
)


def drift(severity: Severity = Severity.HIGH, labels: int | None = 500) -> Trigger:
    return Trigger(kind="drift", severity=severity, new_labels=labels, detail="5 features drifted")


def test_every_safeguard_blocks_with_its_name_in_order() -> None:
    idle = RetrainHistory()
    assert judge(drift(), spec=AUTO, state=idle, now=NOW).go
    running = RetrainHistory(running_job="j1")
    assert (
        judge(Trigger(kind="manual"), spec=AUTO, state=running, now=NOW).safeguard == "in_progress"
    )
    off = RetrainSpec(cadence="weekly")
    blocked = judge(drift(), spec=off, state=idle, now=NOW)
    assert (blocked.go, blocked.safeguard) == (
        False,
        "automation_off",
    ) and "retrain.auto" in blocked.reason
    assert judge(
        Trigger(kind="manual"), spec=off, state=idle, now=NOW
    ).go  # people may always retrain
    low = judge(drift(Severity.MEDIUM), spec=AUTO, state=idle, now=NOW)
    assert low.safeguard == "severity" and "MEDIUM" in low.reason and "HIGH" in low.reason
    recent = RetrainHistory(last_started_at=NOW - timedelta(days=2))
    cool = judge(drift(Severity.CRITICAL), spec=AUTO, state=recent, now=NOW)
    assert cool.safeguard == "cooldown" and "5.0 days" in cool.reason
    assert judge(
        drift(), spec=AUTO, state=RetrainHistory(last_started_at=NOW - timedelta(days=8)), now=NOW
    ).go
    few = judge(drift(labels=40), spec=AUTO, state=idle, now=NOW)
    assert few.safeguard == "min_new_labels" and "only 40" in few.reason
    unknown = judge(drift(labels=None), spec=AUTO, state=idle, now=NOW)
    assert unknown.safeguard == "min_new_labels" and "unknown" in unknown.reason


def test_manual_force_skips_only_the_cooldown_and_demo_mode_shortens_it() -> None:
    recent = RetrainHistory(last_started_at=NOW - timedelta(seconds=30))
    assert judge(Trigger(kind="manual"), spec=AUTO, state=recent, now=NOW).safeguard == "cooldown"
    assert judge(Trigger(kind="manual", force=True), spec=AUTO, state=recent, now=NOW).go
    assert (
        judge(
            Trigger(kind="manual", force=True),
            spec=AUTO,
            state=RetrainHistory(running_job="j"),
            now=NOW,
        ).safeguard
        == "in_progress"
    )
    assert (
        judge(
            Trigger(kind="drift", force=True, severity=Severity.HIGH, new_labels=500),
            spec=AUTO,
            state=RetrainHistory(),
            now=NOW,
        ).safeguard
        == "invalid_trigger"
    )
    demo = RetrainSpec(cadence="weekly", auto=True, demo_cooldown_s=60)
    assert judge(drift(), spec=demo, state=recent, now=NOW, demo=True).safeguard == "cooldown"
    later = RetrainHistory(last_started_at=NOW - timedelta(seconds=61))
    assert judge(drift(), spec=demo, state=later, now=NOW, demo=True).go
    assert judge(drift(), spec=demo, state=later, now=NOW, demo=False).safeguard == "cooldown"


def test_cadence_due() -> None:
    assert cadence_due("weekly", last_trained_at=None, now=NOW)
    assert not cadence_due("weekly", last_trained_at=NOW - timedelta(days=6), now=NOW)
    assert cadence_due("weekly", last_trained_at=NOW - timedelta(days=7), now=NOW)
    assert not cadence_due("quarterly", last_trained_at=NOW - timedelta(days=60), now=NOW)


def test_retrain_spec_defaults_match_the_issue_and_reject_nonsense() -> None:
    spec = RetrainSpec(cadence="monthly")
    assert (
        spec.auto,
        spec.cooldown_days,
        spec.min_new_labels,
        spec.rollback_window_hours,
        spec.rollback_metric_drop,
    ) == (
        False,
        7.0,
        100,
        24.0,
        0.05,
    )
    with pytest.raises(ValueError, match="min_severity"):
        RetrainSpec(cadence="monthly", min_severity="LOW")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cooldown_days"):
        RetrainSpec(cadence="monthly", cooldown_days=-1)


def test_relative_change_sign_follows_the_gate_direction() -> None:
    assert relative_change(op=">=", before=0.80, after=0.84) == pytest.approx(0.05)
    assert relative_change(op="<=", before=0.10, after=0.12) == pytest.approx(-0.2)
    assert math.isnan(relative_change(op=">=", before=0.0, after=0.5))


def test_shadow_comparison_scores_both_answers_on_the_same_labelled_requests(
    tmp_path: Path,
) -> None:
    spec = load_catalog().get("mdl-005")  # roc_auc
    rng = np.random.default_rng(3)
    shadow = ShadowLog(home=tmp_path, model=spec.name)
    labels = rng.integers(0, 2, 400)
    for i, y in enumerate(labels):
        good = float(np.clip(0.5 * y + rng.uniform(0, 0.5), 0, 1))  # separates the classes
        bad = float(rng.uniform())  # knows nothing
        shadow.write(
            {
                "at": "2026-06-01T00:00:00",
                "request_id": f"r{i}",
                "primary": {"predictions": [bad]},
                "shadow": {"predictions": [good]},
                "primary_error": None,
                "shadow_error": None,
            }
        )
    shadow.write(
        {
            "at": "2026-06-01T00:00:00",
            "request_id": "broken",
            "primary": {"predictions": [0.5]},
            "shadow": None,
            "primary_error": None,
            "shadow_error": "RuntimeError: boom",
        }
    )
    assert shadow_comparison(spec, home=tmp_path).n == 0  # no label arrived yet
    record_labels(
        home=tmp_path,
        model=spec.name,
        labels=pd.DataFrame({"request_id": [f"r{i}" for i in range(300)], "label": labels[:300]}),
    )
    cmp = shadow_comparison(spec, home=tmp_path)
    assert cmp.n == 300 and cmp.metric == "roc_auc"
    assert cmp.shadow > 0.9 and 0.35 < cmp.primary < 0.65
    assert shadow_comparison(spec, home=tmp_path, since="2026-06-02").n == 0


def test_live_metric_reads_the_prediction_log_of_one_version(tmp_path: Path) -> None:
    from raycore.serving.prediction_log import PredictionLog

    spec = load_catalog().get("mdl-005")
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    plog = PredictionLog(home=tmp_path, replica="test")
    for version, scores in (
        ("1", np.clip(0.6 * y + rng.uniform(0, 0.4, 200), 0, 1)),
        ("2", rng.uniform(size=200)),
    ):
        for i in range(200):
            plog.append(
                model=spec.name,
                version=version,
                alias="champion",
                route="test",
                request_id=f"{version}-{i}",
                rows=pd.DataFrame({"customer_id": [i]}),
                values=np.array([scores[i]]),
                latency_ms=1.0,
            )
    plog.close()
    record_labels(
        home=tmp_path,
        model=spec.name,
        labels=pd.DataFrame(
            {
                "request_id": [f"{v}-{i}" for v in ("1", "2") for i in range(200)],
                "label": np.concatenate([y, y]),
            }
        ),
    )
    good, noise = (
        live_metric(spec, home=tmp_path, version="1"),
        live_metric(spec, home=tmp_path, version="2"),
    )
    assert good.n == noise.n == 200
    assert good.value > 0.95 and 0.35 < noise.value < 0.65


def test_state_store_round_trip_and_corrupt_file(tmp_path: Path) -> None:
    states = RetrainStateStore(home=tmp_path)
    assert states.get("m").stage == "idle"
    states.put(ModelRetrainState(model="m", stage="live", version="3", champion_version="2"))
    assert states.get("m").replace(stage="watching").stage == "watching"
    assert [s.version for s in states.all()] == ["3"]
    (tmp_path / "retraining" / "m.json").write_text("{oops")
    with pytest.raises(Exception, match="unreadable"):
        states.get("m")


def test_labels_since_counts_only_newer_files(tmp_path: Path) -> None:
    record_labels(
        home=tmp_path, model="m", labels=pd.DataFrame({"request_id": ["a", "b"], "label": [0, 1]})
    )
    cut = datetime.now(timezone.utc)
    record_labels(
        home=tmp_path, model="m", labels=pd.DataFrame({"request_id": ["c"], "label": [1]})
    )
    assert count_labels_since(home=tmp_path, model="m", since=None) == 3
    assert count_labels_since(home=tmp_path, model="m", since=cut) == 1
    assert count_labels_since(home=tmp_path, model="other", since=None) == 0
