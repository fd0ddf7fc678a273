"""Label-free performance estimates (CBPE): exact against brute force, unbiased on calibrated data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from raycore.monitoring.estimation import MIN_ROWS, estimate_performance, expected_metric


def _brute_auc(p: np.ndarray) -> float:
    wins = weight = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j:
                w = p[i] * (1 - p[j])
                weight += w
                wins += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return wins / weight


@pytest.mark.parametrize("n", [2, 7, 60])
def test_expected_auc_is_the_weighted_pair_count(n: int) -> None:
    p = np.round(np.random.default_rng(n).random(n), 1)  # rounded: many ties
    assert expected_metric("roc_auc", p) == pytest.approx(_brute_auc(p), abs=1e-12)


@pytest.mark.parametrize(
    ("metric", "score"),
    [
        ("roc_auc", None),
        ("accuracy", accuracy_score),
        ("precision", precision_score),
        ("recall", recall_score),
        ("f1", f1_score),
    ],
)
def test_on_calibrated_probabilities_the_estimate_matches_the_realised_metric(
    metric, score
) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 4.0, 40_000)
    y = (rng.random(p.size) < p).astype(int)  # labels drawn from the probabilities: calibrated
    realised = roc_auc_score(y, p) if score is None else score(y, (p >= 0.3).astype(int))
    assert expected_metric(metric, p, threshold=0.3) == pytest.approx(realised, abs=0.01)


def test_a_covariate_shift_towards_unsure_rows_shows_as_a_drop_before_any_label() -> None:
    rng = np.random.default_rng(5)
    holdout = rng.beta(0.6, 2.5, 5000)  # many confident negatives
    unsure = rng.beta(3.0, 4.0, 800)  # the window's rows sit near the middle
    same = rng.beta(0.6, 2.5, 800)
    shifted = estimate_performance(
        metric="roc_auc", higher_is_better=True, live_proba=unsure, reference_proba=holdout
    )
    steady = estimate_performance(
        metric="roc_auc", higher_is_better=True, live_proba=same, reference_proba=holdout
    )
    assert shifted is not None and steady is not None
    assert shifted.estimated_drop > 0.1 and abs(steady.estimated_drop) < 0.03


def test_what_cannot_be_estimated_is_none_or_a_clear_error() -> None:
    p = np.random.default_rng(1).random(500)
    assert (
        estimate_performance(metric="rmse", higher_is_better=False, live_proba=p, reference_proba=p)
        is None
    )
    few = p[: MIN_ROWS - 1]
    assert (
        estimate_performance(
            metric="roc_auc", higher_is_better=True, live_proba=few, reference_proba=p
        )
        is None
    )
    with pytest.raises(ValueError, match="cannot estimate 'ks' without labels"):
        expected_metric("ks", p)
    # lower-is-better metrics flip the sign: a drop is always "worse"
    est = estimate_performance(
        metric="accuracy", higher_is_better=False, live_proba=p, reference_proba=p
    )
    assert est is not None and est.estimated_drop == 0.0
