"""Request validation from a model's raw input schema (Ray-free).

A request body on the simple JSON route is ``{"inputs": {...}}`` for one row or
``{"inputs": [{...}, ...]}`` for a batch. Entity keys and request inputs are
required; values a feature table provides are optional (looked up in the
online store when absent). Everything present must have the right type and
be within bounds. Problems come back
in FastAPI's 422 shape: ``[{"loc": ["inputs", 0, "rev_lag_1"], "msg": ..., "type": ...}]``.

Example:
    >>> schema = RowSchema.from_input_schema([{"name": "x", "dtype": "float", "description": "x"}])
    >>> schema.parse({"inputs": {"x": 1.5}}).to_dict("records")
    [{'x': 1.5}]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from raycore.errors import InputValidationError

__all__ = ["MAX_ROWS", "RowSchema"]

MAX_ROWS = 10_000
_TYPES: dict[str, Any] = {"int": int, "float": float, "date": dt.date, "str": str}


class RowSchema:
    """Validates request rows against a model's declared raw inputs."""

    def __init__(
        self, row_model: type[BaseModel], names: list[str], required: list[str], max_rows: int = MAX_ROWS
    ) -> None:
        self.row_model = row_model
        self.names = names
        self.required = required
        self.max_rows = max_rows

    @classmethod
    def from_input_schema(cls, schema: list[dict[str, Any]], *, max_rows: int = MAX_ROWS) -> RowSchema:
        fields: dict[str, Any] = {}
        required: list[str] = []
        for f in schema:
            constraints = {k: f[k] for k in ("ge", "le") if f.get(k) is not None}
            py_type = _TYPES[f["dtype"]]
            # Inputs a feature table provides are optional: the online store fills them in.
            if str(f.get("source", "request")).startswith("table:"):
                fields[f["name"]] = (
                    py_type | None,
                    Field(default=None, description=f.get("description", ""), **constraints),
                )
            else:
                required.append(f["name"])
                fields[f["name"]] = (py_type, Field(..., description=f.get("description", ""), **constraints))
        model = create_model(  # type: ignore[call-overload]
            "InputRow",
            __config__=ConfigDict(extra="forbid", strict=False, allow_inf_nan=False),
            **fields,
        )
        return cls(model, [f["name"] for f in schema], required, max_rows)

    def json_schema(self) -> dict[str, Any]:
        return self.row_model.model_json_schema()

    def parse(self, body: Any) -> pd.DataFrame:
        """Validated rows as a DataFrame in schema order; InputValidationError otherwise."""
        if not isinstance(body, dict) or "inputs" not in body:
            raise InputValidationError(
                "request body must be a JSON object with an 'inputs' field",
                errors=[{"loc": ["body", "inputs"], "msg": "Field required", "type": "missing"}],
                hint='send {"inputs": {...one row...}} or {"inputs": [{...}, ...]}',
            )
        extra = sorted(set(body) - {"inputs", "request_id", "parameters"})
        if extra:
            raise InputValidationError(
                f"unknown top-level field(s): {', '.join(extra)}",
                errors=[{"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"} for k in extra],
                hint="allowed top-level fields: inputs, request_id, parameters",
            )
        rows = body["inputs"]
        single = isinstance(rows, dict)
        if single:
            rows = [rows]
        if not isinstance(rows, list) or not rows:
            raise InputValidationError(
                "'inputs' must be an object (one row) or a non-empty list of objects",
                errors=[{"loc": ["body", "inputs"], "msg": "must be an object or a non-empty list", "type": "type_error"}],
            )
        if len(rows) > self.max_rows:
            raise InputValidationError(
                f"too many rows: {len(rows)} > {self.max_rows}",
                errors=[{"loc": ["body", "inputs"], "msg": f"at most {self.max_rows} rows", "type": "too_long"}],
                hint=f"split the request into batches of at most {self.max_rows} rows",
            )
        errors: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            loc_prefix: list[Any] = ["body", "inputs"] + ([] if single else [i])
            if not isinstance(row, dict):
                errors.append({"loc": loc_prefix, "msg": "row must be an object", "type": "dict_type"})
                continue
            try:
                records.append(self.row_model.model_validate(row).model_dump())
            except ValidationError as exc:
                for e in exc.errors(include_url=False):
                    errors.append({"loc": [*loc_prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]})
            if len(errors) >= 50:
                break
        if errors:
            first = errors[0]
            raise InputValidationError(
                f"invalid input at {'.'.join(map(str, first['loc']))}: {first['msg']}",
                errors=errors,
                hint=f"each row needs: {', '.join(self.required)}",
            )
        return pd.DataFrame.from_records(records, columns=self.names)
