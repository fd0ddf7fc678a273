"""The Ray-free Predictor: validate a request, assemble features, predict, shape the answer.

Request rows carry entity keys and request inputs; feature-table values they
leave out are read from the online store (values the request does carry win).
The assembled raw rows go through the bundle's feature view — the same
``compute`` that built the training set. The Serve deployment is a thin shell
around this class, so the whole request path is testable without Ray.

Example:
    >>> predictor = Predictor(bundle=bundle, version="3", online=store)   # doctest: +SKIP
    >>> predictor.predict({"inputs": {"store_id": 3, ...}})["predictions"] # doctest: +SKIP
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import FeatureLookupError, InputValidationError
from raycore.features.assembly import assemble_online
from raycore.features.online import OnlineStore
from raycore.registry.bundle import ModelBundle
from raycore.serving.schemas import MAX_ROWS, RowSchema

__all__ = ["Predictor"]


class Predictor:
    """One model version, ready to answer requests."""

    def __init__(
        self, *, bundle: ModelBundle, version: str, online: OnlineStore | None = None, max_rows: int = MAX_ROWS
    ) -> None:
        self.bundle = bundle
        self.version = version
        self.online = online
        self.name = bundle.metadata.model_name
        self.schema = RowSchema.from_input_schema(bundle.metadata.input_schema, max_rows=max_rows)

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

    def assemble(self, frame: pd.DataFrame, *, single: bool) -> pd.DataFrame:
        """Fill feature-table values the request left out from the online store."""
        try:
            return assemble_online(self.bundle.view, frame, online=self.online)
        except FeatureLookupError as exc:
            loc: list[Any] = ["body", "inputs"] + ([] if single else [exc.row]) + ([exc.field] if exc.field else [])
            raise InputValidationError(
                f"invalid input at {'.'.join(map(str, loc))}: {exc.message}",
                errors=[{"loc": loc, "msg": exc.message, "type": "value_error"}],
                hint=exc.hint,
            ) from exc

    def predict(self, body: Any) -> dict[str, Any]:
        """Validate ``body``, assemble features and answer; InputValidationError on bad input."""
        started = time.perf_counter()
        frame = self.schema.parse(body)
        single = isinstance(body.get("inputs"), dict)
        raw = self.assemble(frame, single=single)
        values = np.asarray(self.bundle.predict(raw))
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
        return {
            "model_name": self.name,
            "model_version": self.version,
            "request_id": request_id or uuid.uuid4().hex,
            "predictions": [v.item() if isinstance(v, np.generic) else v for v in values],
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
        }
