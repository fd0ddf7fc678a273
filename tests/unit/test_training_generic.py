"""The generic training pieces: task metrics, gates with several conditions, label encoding,
oracle ratios, the evaluator registry and the portfolio report. No Ray."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from raycore.catalog import packaged_models_dir
from raycore.errors import DataError, GateFailedError, SpecError
from raycore.specs import GateSpec, ModelSpec, load_spec
from raycore.training import compute_metric
from raycore.training.evaluation import (
    ORACLE_COLUMN,
    EvalContext,
    evaluator,
    get_evaluator,
    holdout_evaluator,
)
from raycore.training.pipeline import encode_labels, oracle_ratio
from raycore.training.portfolio import PortfolioRow, render_html, train_portfolio, write_portfolio


def spec_with(tmp_path: Path, **changes: str) -> ModelSpec:
    text = (packaged_models_dir() / "mdl-001.yaml").read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "mdl-001.yaml"
    path.write_text(text)
    return load_spec(path, ModelSpec)


def test_classification_and_ranking_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    assert compute_metric(
        "roc_auc", y_true=y, y_pred=np.array([0.1, 0.4, 0.35, 0.8])
    ) == pytest.approx(0.75)
    assert compute_metric("ks", y_true=y, y_pred=np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(
        1.0
    )
    assert compute_metric("ks", y_true=y, y_pred=np.array([0.1, 0.9, 0.2, 0.8])) == pytest.approx(
        0.5
    )
    assert compute_metric("f1", y_true=y, y_pred=np.array([0, 1, 1, 1])) == pytest.approx(0.8)
    labels = np.array(["neg", "pos", "neu", "pos"])
    assert (
        compute_metric("accuracy", y_true=labels, y_pred=np.array(["neg", "pos", "pos", "pos"]))
        == 0.75
    )
    # Cluster ids are compared up to a relabelling.
    assert (
        compute_metric(
            "adjusted_rand", y_true=np.array([0, 0, 1, 1]), y_pred=np.array([5, 5, 2, 2])
        )
        == 1.0
    )
    # NDCG@3: a perfect order scores 1, the reverse order less; groups are scored separately.
    rel = np.array([0, 1, 2, 0, 0, 1])
    groups = np.array([1, 1, 1, 2, 2, 2])
    perfect = compute_metric("ndcg_at_3", y_true=rel, y_pred=rel.astype(float), groups=groups)
    worst = compute_metric("ndcg_at_3", y_true=rel, y_pred=-rel.astype(float), groups=groups)
    assert perfect == pytest.approx(1.0) and worst < 0.7
    with pytest.raises(SpecError, match="needs query groups"):
        compute_metric("ndcg_at_3", y_true=rel, y_pred=rel.astype(float))
    counts = np.array([0.0, 2.0, 4.0, 8.0])
    assert compute_metric("poisson_deviance_ratio", y_true=counts, y_pred=counts) == pytest.approx(
        0.0, abs=1e-9
    )
    assert compute_metric(
        "poisson_deviance_ratio", y_true=counts, y_pred=np.full(4, 3.5)
    ) == pytest.approx(1.0)


def test_gate_with_further_conditions() -> None:
    gate = GateSpec(
        metric="roc_auc",
        op=">=",
        threshold=0.8,
        also=[{"metric": "ks", "op": ">=", "threshold": 0.4}],
    )
    assert gate.passes_all({"roc_auc": 0.85, "ks": 0.45})
    assert not gate.passes_all({"roc_auc": 0.85, "ks": 0.35})
    assert not gate.passes_all({"roc_auc": 0.85})  # a metric that was not reported fails
    assert gate.describe() == "roc_auc >= 0.8 and ks >= 0.4"


def test_encode_labels_per_task(tmp_path: Path) -> None:
    multiclass = spec_with(tmp_path, **{"task: forecasting": "task: multiclass"})
    y, classes = encode_labels(
        multiclass, pd.DataFrame({"revenue": ["high", "low", "medium", "low"]})
    )
    assert classes == ["high", "low", "medium"] and y.tolist() == [0.0, 1.0, 2.0, 1.0]
    with pytest.raises(DataError, match="1 class"):
        encode_labels(multiclass, pd.DataFrame({"revenue": ["low", "low"]}))
    clustering = spec_with(tmp_path, **{"task: forecasting": "task: clustering"})
    y, classes = encode_labels(clustering, pd.DataFrame({"revenue": ["a", "b"]}))
    assert classes == [] and not y.any()  # unsupervised fits never see the labels
    regression = spec_with(tmp_path)
    with pytest.raises(DataError, match="missing or infinite"):
        encode_labels(regression, pd.DataFrame({"revenue": [1.0, np.nan]}))
    with pytest.raises(DataError, match="not numeric"):
        encode_labels(regression, pd.DataFrame({"revenue": ["x", "y"]}))


def test_oracle_ratio() -> None:
    assert oracle_ratio(">=", 0.88, 0.92) == pytest.approx(0.88 / 0.92)
    assert oracle_ratio("<=", 0.12, 0.09) == pytest.approx(0.75)
    assert oracle_ratio("<=", 0.03, 0.0) is None  # label is the truth: undefined
    assert oracle_ratio(">=", 0.9, None) is None


class _Bundle:
    def __init__(self, pred: np.ndarray) -> None:
        self.pred = pred

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return self.pred[: len(rows)]


def test_holdout_evaluator_scores_model_and_oracle(tmp_path: Path) -> None:
    spec = spec_with(tmp_path)
    rows = pd.DataFrame({"revenue": [100.0, 200.0], ORACLE_COLUMN: [100.0, 190.0]})
    ctx = EvalContext(
        spec=spec,
        bundle=_Bundle(np.array([110.0, 180.0])),
        train_rows=rows,
        holdout_rows=rows,  # type: ignore[arg-type]
        truth=lambda _n: pd.DataFrame(),
        table=lambda _n: pd.DataFrame(),
    )
    result = holdout_evaluator(ctx)
    assert result.metrics["mape"] == pytest.approx(0.1)
    assert result.oracle["mape"] == pytest.approx(0.025)
    ctx.holdout_rows = rows.assign(**{ORACLE_COLUMN: [100.0, np.nan]})
    with pytest.raises(DataError, match="no oracle value"):
        holdout_evaluator(ctx)


def test_evaluator_registry() -> None:
    assert get_evaluator("holdout") is holdout_evaluator
    with pytest.raises(SpecError, match="unknown evaluator"):
        get_evaluator("no_such_evaluator")

    @evaluator("test_only_constant")
    def constant(ctx: EvalContext):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    assert get_evaluator("test_only_constant") is constant
    with pytest.raises(ValueError, match="registered twice"):
        evaluator("test_only_constant")(lambda ctx: None)  # type: ignore[arg-type,return-value]


def test_portfolio_records_failures_and_keeps_going(tmp_path: Path) -> None:
    spec = spec_with(tmp_path)
    specs = [
        spec,
        spec.model_copy(update={"id": "mdl-098"}),
        spec.model_copy(update={"id": "mdl-099"}),
    ]

    def train(s: ModelSpec, say):  # type: ignore[no-untyped-def]
        say("fitting")
        if s.id == "mdl-098":
            raise GateFailedError("missed", metric="mape", value=0.3, threshold=0.15, run_id="r98")
        if s.id == "mdl-099":
            raise RuntimeError("worker died")
        return SimpleNamespace(
            metric_name="mape",
            metric=0.11,
            oracle_metric=0.088,
            gate="mape <= 0.15",
            passed=True,
            seconds=3.0,
            version="1",
            run_id="r1",
            extra={"mape": 0.11},
            notes="",
            plot={"actual": [1.0, 2.0], "predicted": [1.1, 1.9]},
        )

    events: list[str] = []
    rows = train_portfolio(
        specs, train=train, on_event=lambda kind, s, _row: events.append(f"{s.id}:{kind}")
    )
    assert [r.status for r in rows] == ["pass", "fail", "error"]
    assert rows[0].oracle_ratio == pytest.approx(0.8)
    assert rows[1].metric == 0.3 and rows[1].run_id == "r98"
    assert "worker died" in (rows[2].error or "")
    assert events[:3] == ["mdl-001:start", "mdl-001:step:fitting", "mdl-001:done"]
    json_path, html_path = write_portfolio(rows, tmp_path / "report")
    payload = json.loads(json_path.read_text())
    assert payload["models"] == 3 and payload["passed"] == 1
    assert [r["status"] for r in payload["rows"]] == ["pass", "fail", "error"]
    page = html_path.read_text()
    assert "1 of 3 models pass" in page and page.count("<svg") == 3 and "<circle" in page


def test_render_html_escapes_and_handles_classes() -> None:
    row = PortfolioRow(
        "mdl-002",
        "<b>x</b>",
        "accuracy",
        0.9,
        None,
        "accuracy >= 0.92",
        False,
        1.0,
        plot={"actual": ["a", "b"], "predicted": ["a", "a"]},
    )
    page = render_html([row])
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "50% of 2 sampled rows correct" in page
