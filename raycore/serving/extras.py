"""What an answer may carry beyond the prediction: decisions, uncertainty, explanations.

Asked for per request (simple route: top-level keys; OIP v2: ``parameters``;
MLflow scoring: ``params``)::

    {"inputs": ..., "explain": 3, "level": 0.9}

- ``decisions`` (binary classifiers, always): ``score >= threshold`` with the
  live threshold (``raycore.thresholds``), and the threshold itself.
- ``level``: the conformal interval (regression-like) or prediction set
  (classifiers) at that coverage level, and, when the catalog declares a
  ``conformal.policy``, ``auto``/``review`` per row.
- ``explain`` = k: the top-k feature contributions per row (exact TreeSHAP, in
  margin space) and a one-line reason.

Everything here is computed from the same assembled raw rows the prediction
came from. Bad options are ``InputValidationError`` naming the field.

Example:
    >>> opts = AnswerOptions.parse({"explain": 3, "level": 0.9})
    >>> opts.explain, opts.level
    (3, 0.9)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import InputValidationError, RaycoreError

__all__ = ["MAX_EXPLAIN", "AnswerOptions", "answer_extras"]

MAX_EXPLAIN = 20


def _bad(field: str, message: str, hint: str) -> InputValidationError:
    return InputValidationError(
        f"invalid {field}: {message}",
        errors=[{"loc": [field], "msg": message, "type": "value_error"}],
        hint=hint,
    )


@dataclass(frozen=True)
class AnswerOptions:
    """Per-request options: top-k explanations and a conformal level."""

    explain: int = 0
    level: float | None = None

    @property
    def any(self) -> bool:
        return bool(self.explain) or self.level is not None

    @classmethod
    def parse(cls, params: Mapping[str, Any] | None) -> AnswerOptions:
        """Read ``explain`` and ``level`` from a request's options; absent keys mean "not asked"."""
        if not params:
            return cls()
        explain = params.get("explain", 0)
        if explain is True:
            explain = 5
        if explain is False or explain is None:
            explain = 0
        if (
            isinstance(explain, bool)
            or not isinstance(explain, int)
            or not 0 <= explain <= MAX_EXPLAIN
        ):
            raise _bad(
                "explain",
                f"must be a whole number 0..{MAX_EXPLAIN} (top-k features), got {explain!r}",
                'send "explain": 3 for the three largest contributions',
            )
        level = params.get("level")
        if level is not None:
            if (
                isinstance(level, bool)
                or not isinstance(level, (int, float))
                or not math.isfinite(level)
            ):
                raise _bad(
                    "level", f"must be a number such as 0.9, got {level!r}", 'send "level": 0.9'
                )
            level = float(level)
            if level > 1:  # 90 means 90%
                level = level / 100.0
            if not 0 < level < 1:
                raise _bad(
                    "level",
                    f"must lie in (0, 1) or (0, 100), got {params.get('level')!r}",
                    'send "level": 0.9',
                )
        return cls(explain=int(explain), level=level)


def _intervals(
    bundle: Any, raw: pd.DataFrame, values: np.ndarray, level: float, policy: Any
) -> dict[str, Any]:
    from raycore.conformal import decide

    try:
        unc = bundle.predict_with_uncertainty(raw, level=level)
    except RaycoreError as exc:  # no calibrator, or a level that was not calibrated
        raise _bad("level", exc.message, exc.hint or "ask for a calibrated level") from exc
    out: dict[str, Any] = {"level": level}
    if "set" in unc:
        classes = list(bundle.metadata.classes) or [0, 1]
        sets = np.asarray(unc["set"], dtype=bool)
        out["prediction_sets"] = [[_plain(classes[j]) for j in np.flatnonzero(row)] for row in sets]
        if policy is not None:
            # binary: the served values are P(class 1) already; no second predict on the request path
            score = (
                np.asarray(values, dtype="float64") if bundle.metadata.task == "binary" else None
            )
            out["automation"] = decide(
                prediction=score if score is not None else np.zeros(len(sets)),
                policy=policy,
                set_size=sets.sum(axis=1),
            ).tolist()
        return out
    lower, upper = (
        np.asarray(unc["lower"], dtype="float64"),
        np.asarray(unc["upper"], dtype="float64"),
    )
    out["intervals"] = [
        {"lower": _finite(lo), "upper": _finite(hi)}
        for lo, hi in zip(lower.tolist(), upper.tolist(), strict=True)
    ]
    if policy is not None:
        out["automation"] = decide(
            prediction=np.asarray(unc["prediction"]), policy=policy, lower=lower, upper=upper
        ).tolist()
    return out


def _explanations(
    bundle: Any, raw: pd.DataFrame, values: np.ndarray, k: int
) -> list[dict[str, Any]]:
    from raycore.explain.contributions import explain_rows

    task = bundle.metadata.task
    if task not in ("multiclass", "text_classification"):
        try:
            return explain_rows(bundle, raw).records(k)
        except RaycoreError as exc:
            raise _bad(
                "explain", exc.message, exc.hint or "this model has no per-prediction explanation"
            ) from exc
    # A multiclass model is explained for the class it predicted, one class at a time.
    classes = list(bundle.metadata.classes)
    out: list[dict[str, Any]] = [{} for _ in range(len(raw))]
    for label in pd.unique(pd.Series(values, dtype=object)):
        rows = np.flatnonzero(pd.Series(values, dtype=object).to_numpy() == label)
        try:
            records = explain_rows(
                bundle, raw.iloc[rows], class_index=classes.index(label)
            ).records(k)
        except RaycoreError as exc:
            raise _bad(
                "explain", exc.message, exc.hint or "this model has no per-prediction explanation"
            ) from exc
        for i, rec in zip(rows, records, strict=True):
            out[i] = {**rec, "class": _plain(label)}
    return out


def answer_extras(
    bundle: Any,
    raw: pd.DataFrame,
    values: np.ndarray,
    *,
    options: AnswerOptions,
    threshold: float | None = None,
    policy: Any = None,
) -> dict[str, Any]:
    """The extra answer fields for predicted ``raw`` rows (``values`` = what was predicted)."""
    out: dict[str, Any] = {}
    if threshold is not None:
        out["threshold"] = threshold
        out["decisions"] = (np.asarray(values, dtype="float64") >= threshold).astype(int).tolist()
    if options.level is not None:
        out.update(_intervals(bundle, raw, values, options.level, policy))
    if options.explain:
        out["explanations"] = _explanations(bundle, raw, np.asarray(values), options.explain)
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _finite(value: float) -> float | None:
    return (
        value if math.isfinite(value) else None
    )  # JSON has no infinity: an unbounded side is null
