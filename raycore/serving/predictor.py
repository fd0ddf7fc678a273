"""The Ray-free Predictor: validate a request, assemble features, predict, shape the answer.

Request rows carry entity keys and request inputs; feature-table values they
leave out are read from the online store (values the request does carry win).
The assembled raw rows go through the bundle's feature view — the same
``compute`` that built the training set. The Serve deployment is a thin shell
around this class, so the whole request path is testable without Ray.

``run`` is the one prediction path of every protocol (simple JSON, Open
Inference Protocol v2, MLflow scoring): each parses its payload into validated
rows with ``RowSchema`` and hands them here with a ``Locate`` for its body.

Example:
    >>> predictor = Predictor(bundle=bundle, version="3", online=store)   # doctest: +SKIP
    >>> predictor.predict({"inputs": {"store_id": 3, ...}})["predictions"] # doctest: +SKIP
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import FeatureLookupError, InputValidationError, RaycoreError
from raycore.features.assembly import assemble_online
from raycore.features.online import OnlineStore
from raycore.models.adapter import output_kind
from raycore.registry.bundle import ModelBundle
from raycore.serving.schemas import MAX_ROWS, Locate, RowSchema

__all__ = ["Prediction", "Predictor", "RowRequest"]


@dataclass(frozen=True)
class RowRequest:
    """One request's validated rows, where its fields sit in its body, and what it asks for.

    ``rows`` is a DataFrame (``RowSchema.validate_rows``) or, cheaper for single
    rows, the validated row dicts (``RowSchema.validate_records``): a batch then
    builds one DataFrame for all its requests.
    """

    rows: pd.DataFrame | list[dict[str, Any]]
    locate: Locate
    probabilities: bool = False

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Prediction:
    """What one request's rows predicted.

    ``values`` has one entry per row: a float (regression-like, binary: P(class 1))
    or a class label; ``probabilities`` (rows x classes) only when asked for.
    """

    values: np.ndarray
    probabilities: pd.DataFrame | None
    latency_ms: float
    raw: pd.DataFrame | None = None  # the assembled raw rows the values came from (log, extras)

    def jsonable(self) -> list[Any]:
        if self.values.dtype != object:
            return self.values.tolist()  # one C call: numpy scalars become Python numbers
        return [v.item() if isinstance(v, np.generic) else v for v in self.values]


class Predictor:
    """One model version, ready to answer requests."""

    def __init__(
        self,
        *,
        bundle: ModelBundle,
        version: str,
        online: OnlineStore | None = None,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.bundle = bundle
        self.version = version
        self.online = online
        self.name = bundle.metadata.model_name
        self.schema = RowSchema.from_input_schema(bundle.metadata.input_schema, max_rows=max_rows)

    @property
    def classes(self) -> list[Any]:
        """Class labels of a model that predicts one (multiclass, text classification); else []."""
        md = self.bundle.metadata
        return list(md.classes) if output_kind(md.task) == "probabilities" else []

    def describe(self) -> dict[str, Any]:
        md = self.bundle.metadata
        return {
            "name": self.name,
            "version": self.version,
            "catalog_id": md.model_id,
            "task": md.task,
            "feature_view": f"{md.feature_view}:v{md.feature_view_version}",
            "inputs": md.input_schema,
            "required_inputs": self.schema.required,
            "metrics": md.metrics,
        }

    def assemble(self, frame: pd.DataFrame, *, locate: Locate) -> pd.DataFrame:
        """Fill feature-table values the request left out from the online store."""
        try:
            return assemble_online(self.bundle.view, frame, online=self.online)
        except FeatureLookupError as exc:
            loc = locate(exc.row, exc.field)
            raise InputValidationError(
                f"invalid input at {'.'.join(map(str, loc))}: {exc.message}",
                errors=[{"loc": loc, "msg": exc.message, "type": "value_error"}],
                hint=exc.hint,
            ) from exc

    def run(self, frame: pd.DataFrame, *, locate: Locate, probabilities: bool = False) -> Prediction:
        """Predict validated request rows (``RowSchema`` output); InputValidationError on bad rows."""
        started = time.perf_counter()
        raw = self.assemble(frame, locate=locate)
        values = np.asarray(self.bundle.predict(raw))
        proba = self.bundle.predict_proba(raw) if probabilities else None
        self._check_finite(values, proba, locate=locate)
        return Prediction(values, proba, round((time.perf_counter() - started) * 1000.0, 3), raw)

    def run_many(self, items: Sequence[RowRequest]) -> list[Prediction | RaycoreError]:
        """Predict several requests' rows in one call; each gets its answer or its own error.

        The rows of every request are concatenated, assembled and predicted
        once, then split back. When the batch cannot be assembled or scored
        (one request names an unknown entity, or a row the view refuses), each
        request runs alone, so one bad request never fails its neighbours.
        """
        if len(items) == 1:
            return [self._run_one(items[0])]
        started = time.perf_counter()
        if all(isinstance(item.rows, list) for item in items):
            records = [row for item in items for row in item.rows]
            frame = pd.DataFrame.from_records(records, columns=self.schema.names)
        else:
            frame = pd.concat([self.frame_of(item) for item in items], ignore_index=True)
        want_proba = any(item.probabilities for item in items)
        try:
            raw = assemble_online(self.bundle.view, frame, online=self.online)
            values = np.asarray(self.bundle.predict(raw))
            proba = self.bundle.predict_proba(raw) if want_proba else None
        except RaycoreError:  # one request's rows cannot be assembled or scored: each answers alone
            return [self._run_one(item) for item in items]
        latency = round((time.perf_counter() - started) * 1000.0, 3)
        out: list[Prediction | RaycoreError] = []
        start = 0
        for item in items:
            stop = start + len(item)
            part = None
            if proba is not None and item.probabilities:
                part = proba.iloc[start:stop].reset_index(drop=True)
            try:
                self._check_finite(values[start:stop], part, locate=item.locate)
                out.append(Prediction(values[start:stop], part, latency, raw.iloc[start:stop]))
            except RaycoreError as exc:
                out.append(exc)
            start = stop
        return out

    def frame_of(self, item: RowRequest) -> pd.DataFrame:
        """A request's rows as a DataFrame in schema order."""
        if isinstance(item.rows, pd.DataFrame):
            return item.rows
        return pd.DataFrame.from_records(item.rows, columns=self.schema.names)

    def _run_one(self, item: RowRequest) -> Prediction | RaycoreError:
        try:
            return self.run(
                self.frame_of(item), locate=item.locate, probabilities=item.probabilities
            )
        except RaycoreError as exc:
            return exc

    def predict(self, body: Any) -> dict[str, Any]:
        """Validate a simple-route ``body`` and answer; InputValidationError on bad input."""
        frame = self.schema.parse(body)
        single = isinstance(body.get("inputs"), dict)
        result = self.run(frame, locate=RowSchema.simple_locate(single=single))
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
        return {
            "model_name": self.name,
            "model_version": self.version,
            "request_id": request_id or uuid.uuid4().hex,
            "predictions": result.jsonable(),
            "latency_ms": result.latency_ms,
        }

    @staticmethod
    def _check_finite(values: np.ndarray, proba: pd.DataFrame | None, *, locate: Locate) -> None:
        # Extreme (but schema-valid) inputs can push a prediction to inf/NaN, which JSON cannot carry.
        bad: np.ndarray = np.zeros(len(values), dtype=bool)
        if values.dtype.kind == "f":
            bad |= ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if proba is not None:
            bad |= ~np.isfinite(proba.to_numpy(dtype="float64")).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            loc = locate(row, None)
            raise InputValidationError(
                f"invalid input at {'.'.join(map(str, loc))}: the model's prediction is not a finite number",
                errors=[{"loc": loc, "msg": "prediction is not finite", "type": "value_error"}],
                hint="the row's values are far outside what the model was trained on; check them",
            )
