"""Conformal prediction: calibrated intervals and prediction sets, stored in the model bundle.

Calibrated at training time on a cut of the training rows (time-aware, by the
model's holdout rule; ``fit_calibrated``), saved as ``calibrator.json`` in the
bundle, applied per batch at serving:

    bundle.calibrator.interval(pred, level=0.9, features=...)     regression: (lower, upper)
    bundle.calibrator.prediction_set(proba, level=0.9)            classifiers: (n, n_classes) booleans
    bundle.predict_with_uncertainty(raw, level=0.9)               both, from raw inputs
    decide(prediction=..., lower=..., upper=..., policy=...)      auto | review per row

Scores: absolute residual or residual / sigma(x) (``normalized``, sigma a small
LightGBM on inner-train residuals; ``auto``, the default, takes the narrower of
the two on the calibration rows); LAC (1 - p_true) or non-randomised APS for
classifiers (binary as two classes). Sets are never empty at 99% and above
(``nonempty_from``: the top class is always in); below, an empty set flags a
row no class fits (``decide`` sends it to review). Levels default to
90/95/99%; an unknown level is an error.
The choices and their measured figures: ``raycore.conformal.calibrate`` and
``benchmarks/conformal.py``.

Online: ``track_coverage`` recomputes the served intervals/sets of a version's
logged answers, joins the late labels and judges realised coverage per level
against the spec's ``coverage_tolerance`` (the drift monitor reports it as a
``coverage`` block and alerts); ``recalibrate`` registers the version again
with a calibrator from fresh labelled rows (no retraining), moves its aliases
and audits it (``foundry conformal status|recalibrate``).

Example:
    >>> import numpy as np
    >>> cal = ClassificationCalibrator.from_probabilities(
    ...     proba=np.array([0.9, 0.2, 0.7, 0.4]), labels=np.array([1, 0, 1, 1]),
    ...     classes=[0, 1], levels=[0.75])
    >>> cal.prediction_set(np.array([0.95, 0.5]), level=0.75).tolist()
    [[False, True], [True, True]]
"""

from raycore.conformal.calibrate import (
    CLASSIFICATION_TASKS,
    REGRESSION_TASKS,
    ConformalPlan,
    build_calibrator,
    class_indices,
    fit_calibrated,
    plan_for,
)
from raycore.conformal.calibrator import (
    CALIBRATOR_FILE,
    Calibrator,
    ClassificationCalibrator,
    RegressionCalibrator,
    load_calibrator,
)
from raycore.conformal.online import CoverageReport, assess_coverage, coverage_hits, track_coverage
from raycore.conformal.policy import AUTO, REVIEW, decide
from raycore.conformal.recalibrate import Recalibration, new_calibrator, recalibrate
from raycore.conformal.scale import ScaleModel
from raycore.conformal.scores import ConformalError, conformal_quantile

__all__ = [
    "AUTO",
    "CALIBRATOR_FILE",
    "CLASSIFICATION_TASKS",
    "REGRESSION_TASKS",
    "REVIEW",
    "Calibrator",
    "ClassificationCalibrator",
    "ConformalError",
    "ConformalPlan",
    "CoverageReport",
    "Recalibration",
    "RegressionCalibrator",
    "ScaleModel",
    "assess_coverage",
    "build_calibrator",
    "class_indices",
    "conformal_quantile",
    "coverage_hits",
    "decide",
    "fit_calibrated",
    "load_calibrator",
    "new_calibrator",
    "plan_for",
    "recalibrate",
    "track_coverage",
]
