"""The Ray-free Predictor: validate a request, predict with a bundle, shape the answer.

The Serve deployment is a thin shell around this class, so the whole request
path can be tested without Ray.

Example:
    >>> predictor = Predictor(bundle=bundle, version="3")          # doctest: +SKIP
    >>> predictor.predict({"inputs": {...}})["predictions"]        # doctest: +SKIP
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from raycore.registry.bundle import ModelBundle
from raycore.serving.schemas import MAX_ROWS, RowSchema

__all__ = ["Predictor"]


class Predictor:
    """One model version, ready to answer requests."""

    def __init__(self, *, bundle: ModelBundle, version: str, max_rows: int = MAX_ROWS) -> None:
        self.bundle = bundle
        self.version = version
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
            "metrics": md.metrics,
        }

    def predict(self, body: Any) -> dict[str, Any]:
        """Validate ``body`` and answer; raises InputValidationError on bad input."""
        started = time.perf_counter()
        frame = self.schema.parse(body)
        values = np.asarray(self.bundle.predict(frame), dtype="float64")
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
        return {
            "model_name": self.name,
            "model_version": self.version,
            "request_id": request_id or uuid.uuid4().hex,
            "predictions": [float(v) for v in values],
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
        }
