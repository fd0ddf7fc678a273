"""The validation split trials are scored on, and what trials receive of the prepared data.

``PreparedData.validation_split()`` cuts the training rows again by the model's
holdout rule: trials fit on the inner train rows and are scored on the
validation rows; the holdout stays untouched for the gate and promotion.
For intermediate reports the validation rows are also written in the layout of
the training file (``write_validation_table``) so Ray Train workers can score
them after every chunk of boosting rounds or epochs.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from raycore.features import compute_features
from raycore.specs import ModelSpec
from raycore.training.metrics import GROUPED, METRICS
from raycore.training.pipeline import UNSUPERVISED, PreparedData, encode_labels
from raycore.training.ray_train_job import LABEL_COLUMN, VALID_SCALE_COLUMN

__all__ = ["lean_for_trials", "supports_intermediate", "write_validation_table"]


def supports_intermediate(spec: ModelSpec) -> tuple[bool, str]:
    """Whether trials can report the gate metric while they train, and if not, why."""
    if spec.algorithm.family == "sklearn":
        return False, "the sklearn family fits in one Ray task"
    if spec.task in UNSUPERVISED:
        return False, f"a {spec.task} model has no labels to score while training"
    if spec.evaluation.evaluator != "holdout":
        return (
            False,
            f"the gate metric comes from the custom evaluator '{spec.evaluation.evaluator}'",
        )
    if spec.gate.metric not in METRICS and spec.gate.metric not in GROUPED:
        return (
            False,
            f"gate metric '{spec.gate.metric}' is not a row metric the workers can compute",
        )
    return True, ""


def write_validation_table(validation: PreparedData, path: Path) -> Path:
    """The validation rows in the training file's layout (``write_training_table``), for the workers.

    Labels are encoded with the classes of the (inner) training rows, so codes
    match the model's outputs; a view that scales its label gets the label
    divided by the scale (as in training) and the scale in ``__scale__``.
    """
    spec, view, rows = validation.spec, validation.view, validation.holdout_rows
    features = compute_features(view, rows)
    _, classes = encode_labels(spec, validation.train_rows)
    if classes:
        y = pd.Categorical(rows[spec.label], categories=classes).codes.astype("float64")
    else:
        y, _ = encode_labels(spec, rows)
    table = features.assign(**{LABEL_COLUMN: y})
    scale = view.scale(rows)
    if scale is not None:
        table[LABEL_COLUMN] = y / scale
        table[VALID_SCALE_COLUMN] = np.asarray(scale, dtype="float64")
    if spec.group_column is not None:
        table[spec.group_column] = rows[spec.group_column].to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


def lean_for_trials(prepared: PreparedData) -> PreparedData:
    """``prepared`` without the cached source frames and feature tables, which trials never read.

    Trials fit and score the train/validation rows; an evaluator that asks for a
    source or truth table reads it from the lake again. This cuts what the object
    store ships to every trial (mdl-005: 262 MB → 8.5 MB). It copies
    ``PreparedData.sources`` and clears its caches (``frames``, ``truths``),
    attributes of the pipeline's private ``_Sources``.
    """
    sources = copy.copy(prepared.sources)
    sources.frames, sources.truths = {}, {}
    built = dataclasses.replace(prepared.built, rows=prepared.built.rows.iloc[:0], tables={})
    return dataclasses.replace(prepared, sources=sources, built=built)
