"""The serving app's wire protocols as pure functions (no Ray, no HTTP server).

Two standard protocols sit next to the simple JSON route, and all three end
in the same ``RowSchema.validate_rows``, so a wrong type, a missing feature or
too many rows is refused the same way whatever the format, with the field named:

    Open Inference Protocol v2   (KServe / Triton; ``tritonclient.http`` works unchanged)
        parse_infer_request   body (JSON, or JSON + binary tensors) → validated rows
        infer_response        predictions → OIP response (JSON, or JSON + binary tensors)
        model_metadata        GET /v2/models/{name}: inputs from the bundle's input schema
        server_metadata       GET /v2
    MLflow scoring server     (``/invocations`` payloads)
        parse_scoring_request dataframe_split | dataframe_records | inputs | instances → rows
        scoring_response      {"predictions": [...], "model_version": ...}

One OIP input tensor per model input column, shape ``[n]`` or ``[n, 1]``
(``n`` rows); dates and strings travel as BYTES. Inputs a feature table
provides may be left out (the online store fills them in); in an FP tensor of
such an input, NaN means "look this row's value up" too. Errors are
``InputValidationError`` whose ``loc`` points into the body, e.g.
``["body", "inputs", "on_promo", "data", 3]``; the app turns them into each
protocol's error shape.

Example:
    >>> schema = RowSchema.from_input_schema([{"name": "x", "dtype": "float", "description": "x"}])
    >>> body = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2.5]}]}'
    >>> parse_infer_request(body, schema=schema).frame["x"].tolist()
    [1.0, 2.5]
    >>> infer_response(model_name="m", model_version="3", request_id="r1",
    ...                values=np.array([0.5, 0.25]), outputs={"predictions": False}).json["outputs"][0]
    {'name': 'predictions', 'shape': [2], 'datatype': 'FP64', 'data': [0.5, 0.25]}
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import raycore
from raycore.errors import InputValidationError
from raycore.serving.schemas import Locate, RowSchema

__all__ = [
    "BINARY_HEADER",
    "MLFLOW_FORMATS",
    "OUTPUT_PREDICTIONS",
    "OUTPUT_PROBABILITIES",
    "EncodedInferResponse",
    "InferRequest",
    "OipInferRequest",
    "OipInferResponse",
    "OipModelMetadata",
    "OipServerMetadata",
    "OipTensor",
    "ScoringRequest",
    "ScoringRequestDoc",
    "decode_json",
    "infer_response",
    "model_metadata",
    "oip_datatype",
    "parse_infer_request",
    "parse_scoring_request",
    "scoring_response",
    "server_metadata",
]

BINARY_HEADER = "Inference-Header-Content-Length"
OUTPUT_PREDICTIONS = "predictions"
OUTPUT_PROBABILITIES = "probabilities"
SERVER_NAME = "data-foundry"
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
ANSWER_PARAMS = ("explain", "level")  # per-request answer options (raycore.serving.extras.AnswerOptions)

# OIP datatype → little-endian numpy dtype of its binary form (BYTES: length-prefixed strings).
_NUMPY: dict[str, str | None] = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "BYTES": None,
}  # fmt: skip
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
_INTEGER = {k for k in _NUMPY if k.startswith(("INT", "UINT"))}
_FLOAT = {"FP16", "FP32", "FP64"}
# Which tensor datatypes may carry a raw input of each dtype (values are then validated per row).
_ACCEPTS: dict[str, set[str]] = {
    "int": {"BOOL", *_INTEGER, *_FLOAT},
    "float": {*_INTEGER, *_FLOAT},
    "date": {"BYTES"},
    "str": {"BYTES"},
}
_DECLARED = {"int": "INT64", "float": "FP64", "date": "BYTES", "str": "BYTES"}


def oip_datatype(dtype: str) -> str:
    """The OIP datatype a raw input of ``dtype`` is declared with (dates and strings: BYTES).

    Example:
        >>> oip_datatype("int"), oip_datatype("date")
        ('INT64', 'BYTES')
    """
    return _DECLARED[dtype]


def _invalid(message: str, loc: list[Any], kind: str, *, hint: str | None = None) -> InputValidationError:
    where = ".".join(map(str, loc))
    return InputValidationError(
        f"invalid request at {where}: {message}",
        errors=[{"loc": loc, "msg": message, "type": kind}],
        hint=hint,
    )


def decode_json(raw: bytes) -> Any:
    """The JSON value of a request body; InputValidationError (type ``json_invalid``) otherwise.

    Example:
        >>> decode_json(b'{"a": [1, 2]}')
        {'a': [1, 2]}
    """
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise InputValidationError(
            f"request body is not valid JSON: {str(exc)[:200]}",
            errors=[{"loc": ["body"], "msg": "body is not valid JSON", "type": "json_invalid"}],
            hint="send a UTF-8 JSON body with content-type application/json",
        ) from None


def _from_pydantic(exc: ValidationError, *, body: Mapping[str, Any]) -> InputValidationError:
    """Pydantic errors of a request envelope, with tensors named instead of numbered."""
    errors = []
    for e in exc.errors(include_url=False)[:50]:
        loc: list[Any] = ["body", *e["loc"]]
        if len(loc) >= 3 and loc[1] in ("inputs", "outputs") and isinstance(loc[2], int):
            items = body.get(loc[1])
            item = items[loc[2]] if isinstance(items, list) and loc[2] < len(items) else None
            if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
                loc[2] = item["name"][:100]
        errors.append({"loc": loc, "msg": e["msg"], "type": e["type"]})
    first = errors[0]
    return InputValidationError(
        f"invalid request at {'.'.join(map(str, first['loc']))}: {first['msg']}",
        errors=errors,
        hint="see the request schema at /docs",
    )


# --------------------------------------------------------------------------- Open Inference Protocol v2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class OipTensor(_Strict):
    """One input (or output) tensor: a model input column."""

    name: str = Field(min_length=1, max_length=256, description="The model input (column) name.")
    shape: list[int] = Field(
        min_length=1, max_length=2, description="[n] or [n, 1]: n rows (n >= 1)."
    )
    datatype: Datatype = Field(description="OIP datatype; dates and strings are BYTES.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="binary_data_size: bytes of this tensor after the JSON header."
    )
    data: list[Any] | None = Field(
        default=None, description="Row-major values, flat or nested; absent with binary_data_size."
    )


class OipRequestedOutput(_Strict):
    """An output the client asks for."""

    name: str = Field(min_length=1, max_length=256, description="predictions | probabilities.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="binary_data: return this output as binary tensor data."
    )


class OipInferRequest(_Strict):
    """POST /v2/models/{name}/infer: one tensor per model input column."""

    id: str | None = Field(default=None, max_length=256, description="Echoed in the response.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="binary_data_output: return every output as binary tensor data."
    )
    inputs: list[OipTensor] = Field(min_length=1, max_length=1024, description="Input tensors.")
    outputs: list[OipRequestedOutput] | None = Field(
        default=None, max_length=8, description="Outputs to return; default: predictions."
    )


class OipInferResponse(BaseModel):
    """The answer of an infer request (documentation of the JSON form)."""

    model_name: str
    model_version: str = Field(description="The registry version that answered.")
    id: str
    outputs: list[OipTensor]


class OipMetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class OipModelMetadata(BaseModel):
    """GET /v2/models/{name}."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[OipMetadataTensor]
    outputs: list[OipMetadataTensor]


class OipServerMetadata(BaseModel):
    """GET /v2."""

    name: str
    version: str
    extensions: list[str]


@dataclass(frozen=True)
class InferRequest:
    """A parsed, validated OIP infer request."""

    id: str | None
    frame: pd.DataFrame
    locate: Locate
    outputs: dict[str, bool] = field(default_factory=lambda: {OUTPUT_PREDICTIONS: False})
    """Output name → whether to send it as binary tensor data."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Request-level parameters other than binary_data_output (e.g. explain, level)."""


@dataclass(frozen=True)
class EncodedInferResponse:
    """An OIP response body: JSON, followed by binary tensors when ``header_length`` is set."""

    json: dict[str, Any]
    content: bytes
    header_length: int | None

    @property
    def media_type(self) -> str:
        return "application/json" if self.header_length is None else "application/octet-stream"


def _oip_locate(row: int, name: str | None) -> list[Any]:
    return ["body", "inputs", *([] if name is None else [name]), "data", row]


def parse_infer_request(
    raw: bytes,
    *,
    schema: RowSchema,
    header_length: str | None = None,
    outputs: Sequence[str] = (OUTPUT_PREDICTIONS,),
) -> InferRequest:
    """Validated rows of an OIP infer request body (with the binary tensor extension).

    ``header_length`` is the ``Inference-Header-Content-Length`` header: the JSON
    part's size when binary tensors follow it. ``outputs`` are the outputs the
    model can answer. Raises InputValidationError naming the tensor or field.
    """
    binary = b""
    if header_length is not None:
        size = _header_size(header_length, len(raw))
        raw, binary = raw[:size], raw[size:]
    body = decode_json(raw)
    if not isinstance(body, dict):
        raise _invalid("the request must be a JSON object", ["body"], "dict_type",
                       hint='send {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    try:
        request = OipInferRequest.model_validate(body)
    except ValidationError as exc:
        raise _from_pydantic(exc, body=body) from None
    wanted = _requested_outputs(request, outputs)
    _check_names(request.inputs, schema)
    columns, n = _columns(request.inputs, binary, schema=schema)
    rows = [{name: values[i] for name, values in columns.items()} for i in range(n)]
    frame = schema.validate_rows(rows, locate=_oip_locate, where=["body", "inputs"])
    options = {k: v for k, v in (request.parameters or {}).items() if k != "binary_data_output"}
    return InferRequest(id=request.id, frame=frame, locate=_oip_locate, outputs=wanted, parameters=options)


def _header_size(value: str, total: int) -> int:
    loc = ["header", BINARY_HEADER]
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise _invalid(f"must be a byte count, got {value[:40]!r}", loc, "int_parsing")
    size = int(value)
    if not 0 < size <= total:
        raise _invalid(f"{size} is not within the body's {total} bytes", loc, "value_error")
    return size


def _requested_outputs(request: OipInferRequest, available: Sequence[str]) -> dict[str, bool]:
    params = request.parameters or {}
    default_binary = params.get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise _invalid("must be true or false", ["body", "parameters", "binary_data_output"], "bool_type")
    if request.outputs is None:
        return {OUTPUT_PREDICTIONS: default_binary}
    wanted: dict[str, bool] = {}
    for out in request.outputs:
        loc: list[Any] = ["body", "outputs", out.name]
        if out.name not in available:
            raise _invalid(f"unknown output '{out.name}'", loc, "value_error",
                           hint=f"this model answers: {', '.join(available)}")
        if out.name in wanted:
            raise _invalid(f"output '{out.name}' is requested twice", loc, "value_error")
        p = out.parameters or {}
        if p.get("class_count", 0) not in (0, None):
            raise _invalid("the classification extension (class_count) is not supported",
                           [*loc, "parameters", "class_count"], "value_error",
                           hint="ask for the 'probabilities' output instead")
        binary = p.get("binary_data", default_binary)
        if not isinstance(binary, bool):
            raise _invalid("must be true or false", [*loc, "parameters", "binary_data"], "bool_type")
        wanted[out.name] = binary
    return wanted


def _check_names(tensors: Sequence[OipTensor], schema: RowSchema) -> None:
    """Every tensor is a known input, sent once; every required input is there."""
    by_name: dict[str, OipTensor] = {}
    for t in tensors:
        loc: list[Any] = ["body", "inputs", t.name]
        if t.name not in schema.dtypes:
            raise _invalid(f"unknown input tensor '{t.name}'", loc, "extra_forbidden",
                           hint=f"the model's inputs: {', '.join(schema.names)}")
        if t.name in by_name:
            raise _invalid(f"input tensor '{t.name}' is sent twice", loc, "value_error")
        by_name[t.name] = t
    missing = [name for name in schema.required if name not in by_name]
    if missing:
        raise InputValidationError(
            f"invalid request at body.inputs.{missing[0]}: missing input tensor '{missing[0]}'",
            errors=[{"loc": ["body", "inputs", name], "msg": "Field required", "type": "missing"}
                    for name in missing],
            hint=f"send one tensor per required input: {', '.join(schema.required)}",
        )


def _columns(
    tensors: Sequence[OipTensor], binary: bytes, *, schema: RowSchema
) -> tuple[dict[str, list[Any]], int]:
    """Python values per input column, checked against shape and datatype; and the row count."""
    n_rows: int | None = None
    offset = 0
    columns: dict[str, list[Any]] = {}
    for t in tensors:
        loc: list[Any] = ["body", "inputs", t.name]
        n = _rows_of(t, loc, schema=schema)
        if n_rows is None:
            n_rows = n
        elif n != n_rows:
            raise _invalid(f"has {n} rows, the first input tensor has {n_rows}", [*loc, "shape"], "value_error",
                           hint="every input tensor carries the same rows")
        dtype = schema.dtypes[t.name]
        if t.datatype not in _ACCEPTS[dtype]:
            raise _invalid(f"datatype {t.datatype} cannot carry a {dtype} input", [*loc, "datatype"], "value_error",
                           hint=f"send '{t.name}' as {oip_datatype(dtype)}")
        params = t.parameters or {}
        size = params.get("binary_data_size")
        if size is not None:
            if t.data is not None:
                raise _invalid("has both data and binary_data_size", loc, "value_error")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise _invalid("must be a byte count", [*loc, "parameters", "binary_data_size"], "int_type")
            if offset + size > len(binary):
                raise _invalid(f"binary_data_size {size} runs past the end of the body",
                               [*loc, "parameters", "binary_data_size"], "value_error",
                               hint=f"send the {BINARY_HEADER} header and the tensors in input order")
            values = _from_binary(t, binary[offset : offset + size], n, loc)
            offset += size
        elif t.data is None:
            raise _invalid("has no data", [*loc, "data"], "missing")
        else:
            values = _from_json(t, n, loc)
        if t.name not in schema.required:
            # A missing value of an optional input (NaN in a float tensor) is looked up online.
            values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        columns[t.name] = values
    if offset != len(binary):
        raise _invalid(f"{len(binary) - offset} bytes after the JSON header belong to no input", ["body"],
                       "value_error", hint="set binary_data_size on every binary input")
    return columns, int(n_rows or 0)


def _rows_of(t: OipTensor, loc: list[Any], *, schema: RowSchema) -> int:
    shape = t.shape
    if any(d < 0 for d in shape):
        raise _invalid(f"shape {shape} has a negative dimension", [*loc, "shape"], "value_error")
    if len(shape) == 2 and shape[1] != 1:
        raise _invalid(f"shape {shape} must be [n] or [n, 1]", [*loc, "shape"], "value_error",
                       hint="one tensor per input column: shape [rows] or [rows, 1]")
    schema.check_row_count(shape[0], where=[*loc, "shape"])
    return shape[0]


def _from_json(t: OipTensor, n: int, loc: list[Any]) -> list[Any]:
    data = t.data or []
    if len(data) != n:
        raise _invalid(f"has {len(data)} values for shape {t.shape}", [*loc, "data"], "value_error")
    nested = len(t.shape) == 2 and all(isinstance(v, list) for v in data)
    values: list[Any] = []
    for i, v in enumerate(data):
        if nested:
            if len(v) != 1:
                raise _invalid(f"row {i} has {len(v)} values, shape {t.shape} needs 1", [*loc, "data", i],
                               "value_error")
            v = v[0]
        if not _fits(v, t.datatype):
            shown = "a list" if isinstance(v, list) else "an object" if isinstance(v, dict) else repr(v)[:40]
            raise _invalid(f"{shown} is not a {t.datatype} value", [*loc, "data", i], "type_error")
        values.append(v)
    return values


def _fits(v: Any, datatype: str) -> bool:
    if datatype == "BOOL":
        return isinstance(v, bool)
    if datatype == "BYTES":
        return isinstance(v, str)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if datatype in _INTEGER:
        info = np.iinfo(np.dtype(_NUMPY[datatype]))
        return isinstance(v, int) and int(info.min) <= v <= int(info.max)
    return True  # FP*: any JSON number (range and finiteness are the row schema's business)


def _from_binary(t: OipTensor, chunk: bytes, n: int, loc: list[Any]) -> list[Any]:
    where = [*loc, "parameters", "binary_data_size"]
    np_dtype = _NUMPY[t.datatype]
    if np_dtype is None:
        return _bytes_elements(chunk, n, where)
    itemsize = np.dtype(np_dtype).itemsize
    if len(chunk) != n * itemsize:
        raise _invalid(f"{len(chunk)} bytes do not hold {n} {t.datatype} values ({n * itemsize} bytes)",
                       where, "value_error")
    values = np.frombuffer(chunk, dtype=np_dtype)
    if t.datatype in _FLOAT:
        return [float(v) for v in values]
    return values.tolist()


def _bytes_elements(chunk: bytes, n: int, where: list[Any]) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(chunk):
        if pos + 4 > len(chunk) or len(out) >= n:
            raise _invalid("BYTES data do not hold the tensor's elements", where, "value_error",
                           hint="each element is a 4-byte little-endian length, then the bytes")
        (length,) = struct.unpack_from("<I", chunk, pos)
        pos += 4
        if pos + length > len(chunk):
            raise _invalid(f"element {len(out)} runs past its tensor's bytes", where, "value_error")
        try:
            out.append(chunk[pos : pos + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _invalid(f"element {len(out)} is not UTF-8 text", where, "value_error") from None
        pos += length
    if len(out) != n:
        raise _invalid(f"holds {len(out)} elements, the shape needs {n}", where, "value_error")
    return out


def infer_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    values: np.ndarray,
    probabilities: np.ndarray | None = None,
    classes: Sequence[Any] = (),
    outputs: Mapping[str, bool] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> EncodedInferResponse:
    """The OIP answer: ``predictions`` (class labels as BYTES) and, if asked, ``probabilities``.

    ``outputs`` maps each requested output to whether it goes out as binary tensor data.
    """
    wanted = dict(outputs or {OUTPUT_PREDICTIONS: False})
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, binary in wanted.items():
        if name == OUTPUT_PROBABILITIES:
            if probabilities is None:
                raise ValueError("probabilities were requested but not computed")
            array = np.asarray(probabilities, dtype="float64")
            extra = {"classes": json.dumps([_plain(c) for c in classes])}
        else:
            array = np.asarray(values)
            extra = {}
        datatype, flat = _tensor_values(array)
        tensor: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": datatype}
        if binary:
            chunk = _to_binary(flat, datatype)
            tensor["parameters"] = {**extra, "binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            if extra:
                tensor["parameters"] = extra
            tensor["data"] = flat
        tensors.append(tensor)
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "id": request_id or uuid.uuid4().hex,
        "outputs": tensors,
    }
    if parameters:  # what the request asked for beyond predictions (decisions, intervals, explanations)
        body["parameters"] = dict(parameters)
    header = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    if not chunks:
        return EncodedInferResponse(body, header, None)
    return EncodedInferResponse(body, header + b"".join(chunks), len(header))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _tensor_values(array: np.ndarray) -> tuple[str, list[Any]]:
    flat = array.reshape(-1)
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL", [bool(v) for v in flat]
    if kind in "iu":
        return "INT64", [int(v) for v in flat]
    if kind == "f":
        return "FP64", [float(v) for v in flat]
    return "BYTES", [str(_plain(v)) for v in flat]  # class labels, whatever their Python type


def _to_binary(flat: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        encoded = [s.encode("utf-8") for s in flat]
        return b"".join(struct.pack("<I", len(b)) + b for b in encoded)
    np_dtype = _NUMPY[datatype]
    return np.asarray(flat, dtype=np_dtype).tobytes()


def model_metadata(
    *,
    name: str,
    version: str,
    platform: str,
    input_schema: Sequence[Mapping[str, Any]],
    classes: Sequence[Any] = (),
) -> dict[str, Any]:
    """GET /v2/models/{name}: one input per raw input column, shape [-1] (rows).

    Example:
        >>> model_metadata(name="m", version="2", platform="raycore_lightgbm",
        ...                input_schema=[{"name": "d", "dtype": "date"}])["inputs"]
        [{'name': 'd', 'datatype': 'BYTES', 'shape': [-1]}]
    """
    outputs = [{"name": OUTPUT_PREDICTIONS, "datatype": "BYTES" if classes else "FP64", "shape": [-1]}]
    if classes:
        outputs.append({"name": OUTPUT_PROBABILITIES, "datatype": "FP64", "shape": [-1, len(classes)]})
    return {
        "name": name,
        "versions": [version],
        "platform": platform,
        "inputs": [{"name": f["name"], "datatype": oip_datatype(f["dtype"]), "shape": [-1]} for f in input_schema],
        "outputs": outputs,
    }


def server_metadata() -> dict[str, Any]:
    """GET /v2: who answers, and the OIP extensions it speaks."""
    return {"name": SERVER_NAME, "version": raycore.__version__, "extensions": ["binary_tensor_data"]}


# --------------------------------------------------------------------------- MLflow scoring server


class DataframeSplit(BaseModel):
    columns: list[str] = Field(description="Column names, as DataFrame.to_dict(orient='split').")
    data: list[list[Any]] = Field(description="One list of values per row, in column order.")
    index: list[Any] | None = Field(default=None, description="Ignored.")


class ScoringRequestDoc(BaseModel):
    """POST /v1/models/{name}/invocations: exactly one of the four formats (MLflow's scoring protocol)."""

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = Field(default=None, description="One object per row.")
    inputs: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="Columns ({name: [values]}), one row ({name: value}) or a list of rows."
    )
    instances: dict[str, Any] | list[dict[str, Any]] | None = Field(default=None, description="As inputs.")
    params: dict[str, Any] | None = Field(
        default=None,
        description="Inference params: the simple route's answer options, explain (top-k contributions) and level"
        " (0.9/0.95/0.99: intervals or prediction sets); the extras come back next to predictions.",
    )


class ScoringResponseDoc(BaseModel):
    predictions: list[Any]
    model_name: str
    model_version: str = Field(description="The registry version that answered (also the x-model-version header).")


@dataclass(frozen=True)
class ScoringRequest:
    """A parsed, validated MLflow scoring request."""

    format: str
    frame: pd.DataFrame
    locate: Locate
    params: dict[str, Any] | None = None


def _missing(v: Any) -> Any:
    # pandas writes a missing cell as NaN (or null): both mean "not sent" here.
    return None if isinstance(v, float) and math.isnan(v) else v


def parse_scoring_request(body: Any, *, schema: RowSchema) -> ScoringRequest:
    """Validated rows of an MLflow scoring payload; InputValidationError naming the field.

    Example:
        >>> schema = RowSchema.from_input_schema([{"name": "x", "dtype": "int", "description": "x"}])
        >>> split = {"dataframe_split": {"columns": ["x"], "data": [[1], [2]], "index": [0, 1]}}
        >>> parse_scoring_request(split, schema=schema).frame["x"].tolist()
        [1, 2]
    """
    hint = f"send exactly one of {', '.join(MLFLOW_FORMATS)} (as mlflow.models / DataFrame.to_dict produce them)"
    if not isinstance(body, dict):
        raise _invalid("the request must be a JSON object", ["body"], "dict_type", hint=hint)
    unknown = sorted(k for k in body if k not in (*MLFLOW_FORMATS, "params"))
    if unknown:
        raise _invalid(f"unknown field '{unknown[0][:100]}'", ["body", unknown[0][:100]], "extra_forbidden", hint=hint)
    formats = [k for k in MLFLOW_FORMATS if k in body]
    if len(formats) != 1:
        what = "none" if not formats else ", ".join(formats)
        raise _invalid(f"needs exactly one input format, got {what}", ["body"], "value_error", hint=hint)
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise _invalid("params must be an object", ["body", "params"], "dict_type",
                       hint='e.g. {"params": {"level": 0.9, "explain": 3}}')
    unknown_params = sorted(k for k in (params or {}) if k not in ANSWER_PARAMS)
    if unknown_params:
        raise _invalid(f"unknown param '{str(unknown_params[0])[:100]}'", ["body", "params", str(unknown_params[0])[:100]],
                       "extra_forbidden", hint=f"the params these models take: {', '.join(ANSWER_PARAMS)}")
    fmt = formats[0]
    payload = body[fmt]
    rows: list[Any]
    if fmt == "dataframe_split":
        rows, locate, where = _split_rows(payload, schema=schema)
    elif fmt == "dataframe_records":
        if isinstance(payload, dict):
            payload = [payload]
        if not isinstance(payload, list):
            raise _invalid("must be a list of row objects", ["body", fmt], "list_type")
        rows, where = payload, ["body", fmt]

        def locate(row: int, name: str | None) -> list[Any]:
            return ["body", "dataframe_records", row, *([] if name is None else [name])]
    else:
        rows, locate, where = _tensor_rows(fmt, payload, schema=schema)
    rows = [{k: _missing(v) for k, v in r.items()} if isinstance(r, dict) else r for r in rows]
    frame = schema.validate_rows(rows, locate=locate, where=where)
    return ScoringRequest(format=fmt, frame=frame, locate=locate, params=params or None)


def _split_rows(payload: Any, *, schema: RowSchema) -> tuple[list[Any], Locate, list[Any]]:
    loc: list[Any] = ["body", "dataframe_split"]
    if not isinstance(payload, dict):
        raise _invalid("must be an object with columns and data", loc, "dict_type")
    extra = sorted(k for k in payload if k not in ("columns", "data", "index"))
    if extra:
        raise _invalid(f"unknown field '{extra[0][:100]}'", [*loc, extra[0][:100]], "extra_forbidden",
                       hint="dataframe_split holds columns, data and (optionally) index")
    columns, data = payload.get("columns"), payload.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _invalid("must be a list of column names", [*loc, "columns"], "list_type")
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise _invalid(f"column '{dup[:100]}' appears twice", [*loc, "columns"], "value_error")
    for name in columns:
        if name not in schema.dtypes:
            raise _invalid(f"unknown column '{name[:100]}'", [*loc, "columns", name[:100]], "extra_forbidden",
                           hint=f"the model's inputs: {', '.join(schema.names)}")
    missing = [name for name in schema.required if name not in columns]
    if missing:
        raise _invalid(f"missing column '{missing[0]}'", [*loc, "columns", missing[0]], "missing",
                       hint=f"the required inputs: {', '.join(schema.required)}")
    if not isinstance(data, list):
        raise _invalid("must be a list of rows", [*loc, "data"], "list_type")
    schema.check_row_count(len(data), where=[*loc, "data"])
    rows: list[Any] = []
    for i, values in enumerate(data):
        if not isinstance(values, list) or len(values) != len(columns):
            raise _invalid(f"row {i} must be a list of {len(columns)} values", [*loc, "data", i], "value_error")
        rows.append(dict(zip(columns, values, strict=True)))

    def locate(row: int, name: str | None) -> list[Any]:
        return [*loc, "data", row, *([] if name is None else [name])]

    return rows, locate, [*loc, "data"]


def _tensor_rows(fmt: str, payload: Any, *, schema: RowSchema) -> tuple[list[Any], Locate, list[Any]]:
    """``inputs`` / ``instances``: a list of rows, a dict of columns, or one row as a dict."""
    loc: list[Any] = ["body", fmt]
    if isinstance(payload, list):

        def by_row(row: int, name: str | None) -> list[Any]:
            return [*loc, row, *([] if name is None else [name])]

        return payload, by_row, loc
    if not isinstance(payload, dict):
        raise _invalid("must be a list of rows or an object of columns", loc, "type_error")
    columnar = [k for k, v in payload.items() if isinstance(v, list)]
    if not columnar:

        def one_row(row: int, name: str | None) -> list[Any]:
            return [*loc, *([] if name is None else [name])]

        return [payload], one_row, loc
    scalar = [k for k in payload if k not in columnar]
    if scalar:
        raise _invalid("mixes columns (lists) and single values", [*loc, scalar[0][:100]], "list_type",
                       hint="send every input as a list of values (one per row), or one row of single values")
    n = len(payload[columnar[0]])
    schema.check_row_count(n, where=[*loc, columnar[0][:100]])
    for k in columnar:
        if len(payload[k]) != n:
            raise _invalid(f"has {len(payload[k])} values, '{columnar[0][:100]}' has {n}", [*loc, k[:100]],
                           "value_error", hint="every column carries the same rows")
    rows = [{k: payload[k][i] for k in columnar} for i in range(n)]

    def by_column(row: int, name: str | None) -> list[Any]:
        return [*loc, *([] if name is None else [name]), row]

    return rows, by_column, loc


def scoring_response(
    *, predictions: list[Any], model_name: str, model_version: str, extras: dict[str, Any] | None = None
) -> dict[str, Any]:
    """MLflow's ``{"predictions": [...]}``; the extra keys (version, what params asked for) do not disturb its clients."""
    return {"predictions": predictions, "model_name": model_name, "model_version": model_version, **(extras or {})}
