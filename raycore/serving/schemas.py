"""Request validation from a model's raw input schema (Ray-free).

Every route validates rows here, whatever the wire format: the simple JSON
route sends ``{"inputs": {...}}`` for one row or ``{"inputs": [{...}, ...]}``
for a batch (``RowSchema.parse``); the Open Inference Protocol and MLflow
scoring routes turn their payloads into row dicts and call
``RowSchema.validate_rows`` with a ``Locate`` that says where a row's field
sits in *their* body. Entity keys and request inputs are required; values a
feature table provides are optional (looked up in the online store when
absent). Everything present must have the right type and be within bounds —
integers fit int64 and dates lie in 1900-2100, so nothing valid here can
overflow later. Problems come back in FastAPI's 422 shape:
``[{"loc": ["body", "inputs", 0, "rev_lag_1"], "msg": ..., "type": ...}]``.

Example:
    >>> schema = RowSchema.from_input_schema([{"name": "x", "dtype": "float", "description": "x"}])
    >>> schema.parse({"inputs": {"x": 1.5}}).to_dict("records")
    [{'x': 1.5}]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from raycore.errors import InputValidationError

__all__ = ["MAX_ROWS", "Locate", "RowSchema"]

MAX_ROWS = 10_000
_TYPES: dict[str, Any] = {"int": int, "float": float, "date": dt.date, "str": str}
# Bounds every value of a dtype must meet so later numpy/pandas coercion cannot overflow.
_LIMITS: dict[str, dict[str, Any]] = {
    "int": {"ge": -(2**63), "le": 2**63 - 1},
    # datetime64[ns] holds 1677-2262, but the difference of two dates must fit int64 ns too (±292 years).
    "date": {"ge": dt.date(1900, 1, 1), "le": dt.date(2100, 12, 31)},
}
MAX_ERRORS = 50

Locate = Callable[[int, "str | None"], list[Any]]
"""``(row, field) -> loc``: where row ``row``'s ``field`` (None: the whole row) sits in a request body."""


def _bounds(f: dict[str, Any]) -> dict[str, Any]:
    """The declared ge/le, tightened to what the dtype can hold."""
    out: dict[str, Any] = dict(_LIMITS.get(f["dtype"], {}))
    for key in ("ge", "le"):
        declared = f.get(key)
        if declared is None:
            continue
        if key in out:
            out[key] = max(out[key], declared) if key == "ge" else min(out[key], declared)
        else:
            out[key] = declared
    return out


class RowSchema:
    """Validates request rows against a model's declared raw inputs."""

    def __init__(
        self,
        row_model: type[BaseModel],
        names: list[str],
        required: list[str],
        max_rows: int = MAX_ROWS,
        dtypes: dict[str, str] | None = None,
    ) -> None:
        self.row_model = row_model
        self.names = names
        self.required = required
        self.max_rows = max_rows
        self.dtypes = dtypes or {}
        # The whole list in one call (no Python loop per row); errors are reported by the per-row path.
        self._rows_adapter: TypeAdapter[list[Any]] = TypeAdapter(list[row_model])  # type: ignore[valid-type]

    @classmethod
    def from_input_schema(cls, schema: list[dict[str, Any]], *, max_rows: int = MAX_ROWS) -> RowSchema:
        fields: dict[str, Any] = {}
        required: list[str] = []
        for f in schema:
            constraints = _bounds(f)
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
        return cls(
            model,
            [f["name"] for f in schema],
            required,
            max_rows,
            dtypes={f["name"]: f["dtype"] for f in schema},
        )

    def json_schema(self) -> dict[str, Any]:
        return self.row_model.model_json_schema()

    def parse(self, body: Any) -> pd.DataFrame:
        """Validated rows as a DataFrame in schema order; InputValidationError otherwise."""
        rows, single = self._simple_rows(body)
        return self.validate_rows(rows, locate=self.simple_locate(single=single), where=["body", "inputs"])

    def _simple_rows(self, body: Any) -> tuple[list[Any], bool]:
        """The rows of a simple-route body, and whether it sent one row (an object) rather than a list."""
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
        return rows, single

    @staticmethod
    def simple_locate(*, single: bool) -> Locate:
        """Where a row's field sits in a simple-route body (one row: no row index)."""

        def locate(row: int, field: str | None) -> list[Any]:
            return ["body", "inputs", *([] if single else [row]), *([] if field is None else [field])]

        return locate

    def check_row_count(self, n: int, *, where: list[Any]) -> None:
        """InputValidationError unless 1 <= n <= max_rows; ``where`` locates the row container."""
        if n < 1:
            raise InputValidationError(
                f"no rows at {_dotted(where)}",
                errors=[{"loc": where, "msg": "at least 1 row", "type": "too_short"}],
                hint="send one row or a batch of rows",
            )
        if n > self.max_rows:
            raise InputValidationError(
                f"too many rows: {n} > {self.max_rows}",
                errors=[{"loc": where, "msg": f"at most {self.max_rows} rows", "type": "too_long"}],
                hint=f"split the request into batches of at most {self.max_rows} rows",
            )

    def validate_rows(self, rows: Sequence[Any], *, locate: Locate, where: list[Any]) -> pd.DataFrame:
        """Validate row dicts of any wire format; errors are located with ``locate``.

        Example:
            >>> schema = RowSchema.from_input_schema([{"name": "x", "dtype": "int", "description": "x"}])
            >>> schema.validate_rows([{"x": 2}], locate=lambda i, f: ["rows", i, f], where=["rows"])["x"].tolist()
            [2]
        """
        return pd.DataFrame.from_records(self.validate_records(rows, locate=locate, where=where), columns=self.names)

    def parse_records(self, body: Any) -> list[dict[str, Any]]:
        """``parse``, as validated row dicts (no DataFrame: the batch builds one for many requests)."""
        rows, single = self._simple_rows(body)
        return self.validate_records(rows, locate=self.simple_locate(single=single), where=["body", "inputs"])

    def validate_records(self, rows: Sequence[Any], *, locate: Locate, where: list[Any]) -> list[dict[str, Any]]:
        """``validate_rows``, as validated row dicts (every input present, None when not sent)."""
        self.check_row_count(len(rows), where=where)
        try:
            return self._rows_adapter.dump_python(self._rows_adapter.validate_python(rows))  # type: ignore[no-any-return]
        except ValidationError:
            pass  # find and name every problem below, row by row
        errors: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                errors.append({"loc": locate(i, None), "msg": "row must be an object", "type": "dict_type"})
                continue
            try:
                records.append(self.row_model.model_validate(row).model_dump())
            except ValidationError as exc:
                for e in exc.errors(include_url=False):
                    field = str(e["loc"][0]) if e["loc"] else None
                    errors.append(
                        {"loc": [*locate(i, field), *e["loc"][1:]], "msg": e["msg"], "type": e["type"]}
                    )
            if len(errors) >= MAX_ERRORS:
                break
        if errors:
            first = errors[0]
            raise InputValidationError(
                f"invalid input at {_dotted(first['loc'])}: {first['msg']}",
                errors=errors,
                hint=f"each row needs: {', '.join(self.required)}",
            )
        return records


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(map(str, loc))
