"""Decision thresholds: simulation arithmetic, the audited store, the live reader, the CLI's refusals."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from raycore.errors import DataError, ThresholdError
from raycore.feedback import join_labels, read_labels, record_labels
from raycore.registry.audit import AuditLog
from raycore.specs import ModelSpec
from raycore.thresholds import ThresholdReader, ThresholdStore, outcome_at, simulate_threshold


def test_outcome_counts_match_a_hand_computed_confusion_matrix() -> None:
    scores = np.array([0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.4])
    labels = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    out = outcome_at(scores=scores, labels=labels, threshold=0.5, cost_fp=1.0, cost_fn=5.0)
    # alerts at >= 0.5: 0.5(0) 0.65(1) 0.8(1) 0.95(1) -> tp 3, fp 1; missed 0.35(1) -> fn 1
    assert (out.tp, out.fp, out.fn, out.tn, out.alerts, out.positives) == (3, 1, 1, 3, 4, 4)
    assert out.precision == pytest.approx(0.75) and out.recall == pytest.approx(0.75)
    assert out.expected_cost == pytest.approx(1 * 1 + 5 * 1)
    assert out.cost_per_1000 == pytest.approx(6 * 1000 / 8)
    assert out.alert_rate == pytest.approx(0.5)


def test_lower_threshold_trades_precision_for_recall_and_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, 5000), 0, 1)
    sim = simulate_threshold(
        scores=s, labels=y, candidate=0.3, current=0.6, cost_fp=1.0, cost_fn=3.0
    )
    assert sim.candidate.recall > sim.current.recall
    assert sim.candidate.alerts > sim.current.alerts
    for outcome in (sim.candidate, sim.current):
        alert = s >= outcome.threshold
        assert outcome.tp == int((alert & (y == 1)).sum())
        assert outcome.fp == int((alert & (y == 0)).sum())
        assert outcome.expected_cost == pytest.approx(outcome.fp + 3.0 * outcome.fn)
    assert sim.deltas()["alerts"] == sim.candidate.alerts - sim.current.alerts


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf"), "abc"])
def test_thresholds_outside_the_open_unit_interval_are_refused(bad: object) -> None:
    with pytest.raises(ThresholdError, match="threshold"):
        outcome_at(scores=[0.2, 0.8], labels=[0, 1], threshold=bad)  # type: ignore[arg-type]


def test_bad_replay_inputs_name_the_problem() -> None:
    with pytest.raises(ThresholdError, match="2 scores but 3 labels"):
        outcome_at(scores=[0.1, 0.2], labels=[0, 1, 1], threshold=0.5)
    with pytest.raises(ThresholdError, match="labels must be 0/1, found 2"):
        outcome_at(scores=[0.1, 0.2], labels=[0, 2], threshold=0.5)
    with pytest.raises(ThresholdError, match="probabilities"):
        outcome_at(scores=[0.1, 1.2], labels=[0, 1], threshold=0.5)
    with pytest.raises(ThresholdError, match="no labelled predictions"):
        outcome_at(scores=[], labels=[], threshold=0.5)


def test_store_set_rollback_history_and_audit(tmp_path: Path) -> None:
    store = ThresholdStore(home=tmp_path)
    assert store.current("churn_risk", default=0.3) == 0.3
    first = store.set(
        model="churn_risk",
        threshold=0.25,
        reason="more recall",
        default=0.3,
        actor="user:a",
        evidence={"simulation": {"delta": {"recall": 0.04}}},
    )
    second = store.set(
        model="churn_risk", threshold=0.2, reason="even more", default=0.3, actor="user:b"
    )
    assert (first.before, first.after, second.before, second.after) == (0.3, 0.25, 0.25, 0.2)
    assert [s.threshold for s in store.history("churn_risk")] == [0.25, 0.2]
    back = store.rollback(model="churn_risk", reason="too many alerts", default=0.3, actor="user:a")
    assert (back.before, back.after) == (0.2, 0.25)
    back = store.rollback(model="churn_risk", reason="back to catalog", default=0.3)
    assert (back.before, back.after) == (0.25, 0.3)
    with pytest.raises(ThresholdError, match="no threshold change to roll back"):
        store.rollback(model="churn_risk", reason="again", default=0.3)
    events = AuditLog(tmp_path / "audit.db").history("churn_risk")
    assert [e.action for e in events] == [
        "threshold_set",
        "threshold_set",
        "threshold_rollback",
        "threshold_rollback",
    ]
    assert events[0].evidence["before"] == 0.3 and events[0].evidence["after"] == 0.25
    assert events[0].evidence["simulation"]["delta"]["recall"] == 0.04
    assert events[0].actor == "user:a" and events[0].reason == "more recall"


def test_a_bad_change_changes_nothing(tmp_path: Path) -> None:
    store = ThresholdStore(home=tmp_path)
    store.set(model="m", threshold=0.4, reason="start", default=0.5)
    before = (tmp_path / "thresholds" / "m.json").read_bytes()
    for bad in (1.2, 0.0, float("nan")):
        with pytest.raises(ThresholdError):
            store.set(model="m", threshold=bad, reason="oops", default=0.5)
    with pytest.raises(ThresholdError, match="reason"):
        store.set(model="m", threshold=0.3, reason="  ", default=0.5)
    assert (tmp_path / "thresholds" / "m.json").read_bytes() == before
    assert len(AuditLog(tmp_path / "audit.db").history("m")) == 1


def test_reader_sees_a_change_on_its_next_call_and_survives_a_corrupt_file(tmp_path: Path) -> None:
    store = ThresholdStore(home=tmp_path)
    reader = ThresholdReader(home=tmp_path, model="m", default=0.5)
    assert reader.current() == 0.5
    store.set(model="m", threshold=0.35, reason="r", default=0.5)
    assert reader.current() == 0.35
    store.set(model="m", threshold=0.45, reason="r", default=0.5)
    assert reader.current() == 0.45
    path = tmp_path / "thresholds" / "m.json"
    path.write_text("{not json")
    assert reader.current() == 0.45  # the last good value keeps serving
    with pytest.raises(ThresholdError, match="unreadable"):
        store.current("m", default=0.5)
    os.remove(path)
    assert reader.current() == 0.5


def test_concurrent_changes_never_lose_an_entry(tmp_path: Path) -> None:
    store = ThresholdStore(home=tmp_path)
    values = [round(0.1 + 0.01 * i, 2) for i in range(16)]

    def change(v: float) -> None:
        ThresholdStore(home=tmp_path).set(model="m", threshold=v, reason=f"set {v}", default=0.5)

    threads = [threading.Thread(target=change, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s.threshold for s in store.history("m")) == values
    assert len(AuditLog(tmp_path / "audit.db").history("m")) == len(values)
    json.loads((tmp_path / "thresholds" / "m.json").read_text())


def test_labels_round_trip_join_by_request_and_row_and_bad_frames_are_refused(
    tmp_path: Path,
) -> None:
    record_labels(
        home=tmp_path, model="m", labels=pd.DataFrame({"request_id": ["a", "b"], "label": [0, 1]})
    )
    record_labels(
        home=tmp_path, model="m", labels=pd.DataFrame({"request_id": ["b"], "label": [0]})
    )
    record_labels(
        home=tmp_path,
        model="m",
        labels=pd.DataFrame({"request_id": ["c"], "row": [1], "label": [1]}),
    )
    got = read_labels(home=tmp_path, model="m").sort_values("request_id")
    assert got["request_id"].tolist() == ["a", "b", "c"] and got["label"].tolist() == [0, 0, 1]
    # a logged two-row request "c" and a single-row request "a"; "z" has no label yet
    log = pd.DataFrame({"request_id": ["a", "c", "c", "z"], "out_prediction": [0.1, 0.2, 0.9, 0.5]})
    joined = join_labels(log, read_labels(home=tmp_path, model="m")).sort_values(
        ["request_id", "row"]
    )
    assert joined[["request_id", "row", "out_prediction", "label"]].values.tolist() == [
        ["a", 0, 0.1, 0],
        ["c", 1, 0.9, 1],
    ]
    with pytest.raises(DataError, match="request_id"):
        record_labels(home=tmp_path, model="m", labels=pd.DataFrame({"id": ["a"], "label": [1]}))
    with pytest.raises(DataError, match="empty"):
        record_labels(
            home=tmp_path,
            model="m",
            labels=pd.DataFrame({"request_id": ["a", None], "label": [1, 0]}),
        )


def test_threshold_block_is_only_for_binary_models() -> None:
    from raycore.catalog import load_catalog

    churn = load_catalog().get("mdl-005")
    assert churn.threshold is not None and churn.threshold.cost_fn > churn.threshold.cost_fp
    raw = load_catalog().get("mdl-001").model_dump()
    raw["threshold"] = {"default": 0.4}
    with pytest.raises(ValueError, match="only binary classifiers"):
        ModelSpec.model_validate(raw)


def test_cli_refuses_bad_thresholds_and_non_binary_models_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raycore.cli.main import app

    monkeypatch.setenv("FOUNDRY_HOME", str(tmp_path))
    runner = CliRunner()
    bad = runner.invoke(
        app, ["threshold", "set", "mdl-005", "1.5", "--reason", "x", "--skip-simulation"]
    )
    assert bad.exit_code != 0 and "strictly between 0 and 1" in bad.output
    other = runner.invoke(
        app, ["threshold", "set", "mdl-001", "0.4", "--reason", "x", "--skip-simulation"]
    )
    assert other.exit_code != 0 and "binary classifiers" in other.output
    unknown = runner.invoke(app, ["threshold", "show", "mdl-999"])
    assert unknown.exit_code != 0 and "mdl-999" in unknown.output
    assert not (tmp_path / "thresholds" / "churn_risk.json").exists()
    ok = runner.invoke(
        app, ["threshold", "set", "mdl-005", "0.2", "--reason", "catch more", "--skip-simulation"]
    )
    assert ok.exit_code == 0, ok.output
    shown = runner.invoke(app, ["threshold", "show", "mdl-005", "--json"])
    body = json.loads(shown.stdout)
    assert body["threshold"] == 0.2 and body["catalog_default"] == 0.3
    back = runner.invoke(app, ["threshold", "rollback", "mdl-005", "--reason", "undo"])
    assert back.exit_code == 0 and "0.2 → 0.3" in back.output
