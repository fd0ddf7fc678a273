"""The validation scoring the Ray Train workers do for tuning (``ray_train_job.ValidationSet``), without Ray.

Workers score raw estimator output against the encoded labels of a validation file;
the numbers must equal what the holdout evaluator computes on decoded labels in label units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.errors import SpecError
from raycore.specs import ResourcesSpec
from raycore.training.backends import fit_estimator
from raycore.training.metrics import compute_metric
from raycore.training.ray_train_job import (
    LABEL_COLUMN,
    VALID_SCALE_COLUMN,
    ValidationSet,
    ValidationSpec,
)


def _write(path: Path, frame: pd.DataFrame) -> dict:
    frame.to_parquet(path, index=False)
    return ValidationSpec(path=path, metric="wape", task="regression").to_config()


def test_scaled_labels_are_scored_in_label_units(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scale = rng.uniform(10, 1000, size=200)  # e.g. a store's size: the model learns y / scale
    y = scale * rng.uniform(0.5, 1.5, size=200)
    ratio_pred = y / scale * rng.uniform(0.9, 1.1, size=200)
    frame = pd.DataFrame(
        {"x": rng.normal(size=200), LABEL_COLUMN: y / scale, VALID_SCALE_COLUMN: scale}
    )
    config = _write(tmp_path / "v.parquet", frame)
    valid = ValidationSet.read(config)
    assert list(valid.features.columns) == ["x"]  # label and scale are not features
    got = valid.score(lambda _x: ratio_pred)["wape"]
    want = compute_metric("wape", y_true=y, y_pred=ratio_pred * scale)
    assert got == pytest.approx(want)
    # WAPE is not scale-free: scoring in the model's units would give another number.
    assert got != pytest.approx(
        compute_metric("wape", y_true=y / scale, y_pred=ratio_pred), rel=1e-3
    )


def test_class_probabilities_are_scored_as_classes(tmp_path: Path) -> None:
    classes = np.array(["negative", "neutral", "positive"])
    codes = np.array([0, 2, 1, 2, 0, 1])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.1, 0.2, 0.7],
            [0.2, 0.5, 0.3],
            [0.5, 0.1, 0.4],
            [0.6, 0.3, 0.1],
            [0.1, 0.1, 0.8],
        ]
    )
    frame = pd.DataFrame({"x": np.arange(6.0), LABEL_COLUMN: codes.astype("float64")})
    frame.to_parquet(tmp_path / "v.parquet", index=False)
    config = ValidationSpec(
        path=tmp_path / "v.parquet", metric="accuracy", task="multiclass", n_classes=3
    ).to_config()
    got = ValidationSet.read(config).score(lambda _x: proba)["accuracy"]
    decoded = compute_metric(
        "accuracy", y_true=classes[codes], y_pred=classes[proba.argmax(axis=1)]
    )
    assert got == pytest.approx(decoded) == pytest.approx(4 / 6)


def test_ranking_groups_come_from_the_group_column(tmp_path: Path) -> None:
    relevance = np.array([3, 0, 1, 0, 2, 1], dtype="float64")
    groups = np.array([1, 1, 1, 2, 2, 2])
    scores = np.array([0.9, 0.1, 0.5, 0.2, 0.1, 0.8])
    frame = pd.DataFrame({"x": scores, LABEL_COLUMN: relevance, "query": groups})
    frame.to_parquet(tmp_path / "v.parquet", index=False)
    config = ValidationSpec(
        path=tmp_path / "v.parquet", metric="ndcg_at_3", task="ranking", group_column="query"
    ).to_config()
    valid = ValidationSet.read(config)
    assert "query" not in valid.features.columns
    got = valid.score(lambda x: x["x"].to_numpy())["ndcg_at_3"]
    assert got == pytest.approx(
        compute_metric("ndcg_at_3", y_true=relevance, y_pred=scores, groups=groups)
    )


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"valid_metric": "roc_auc"}, "go together"),
        ({"valid_path": "v.parquet"}, "go together"),
        (
            {"valid_path": "v.parquet", "valid_metric": "eta_mape"},
            "not a metric the workers can compute",
        ),
        ({"valid_path": "v.parquet", "valid_metric": "ndcg_at_3"}, "needs the query groups"),
    ],
)
def test_a_bad_validation_request_fails_before_any_ray_work(
    tmp_path: Path, kwargs: dict, says: str
) -> None:
    train = tmp_path / "train.parquet"
    pd.DataFrame({"x": [0.0, 1.0, 2.0], LABEL_COLUMN: [0.0, 1.0, 0.0]}).to_parquet(
        train, index=False
    )
    if "valid_path" in kwargs:
        kwargs = {**kwargs, "valid_path": tmp_path / kwargs["valid_path"]}
    with pytest.raises(SpecError, match=says):
        fit_estimator(
            family="lightgbm",
            task="binary",
            objective="binary",
            params={},
            num_boost_round=5,
            train_path=train,
            resources=ResourcesSpec(),
            storage_path=tmp_path / "ray",
            run_name="never-starts",
            **kwargs,
        )
