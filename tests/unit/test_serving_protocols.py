"""Wire protocols (OIP v2, MLflow scoring) translate to and from validated rows, and name every bad field.

Request bodies with binary tensors are built, and responses decoded, by
``tritonclient.http`` itself (its request encoder and ``InferResult``), so
these tests hold the protocol functions to what the real client does.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest

from raycore.errors import InputValidationError
from raycore.features import get_feature_view
from raycore.serving import protocols
from raycore.serving.protocols import (
    OUTPUT_PREDICTIONS,
    OUTPUT_PROBABILITIES,
    decode_json,
    infer_response,
    model_metadata,
    parse_infer_request,
    parse_scoring_request,
    scoring_response,
    server_metadata,
)
from raycore.serving.schemas import RowSchema

INPUT_SCHEMA = get_feature_view("store_sales_lags").input_schema()
SCHEMA = RowSchema.from_input_schema(INPUT_SCHEMA, max_rows=5)
ROWS: list[dict[str, Any]] = [
    {"store_id": 3, "week_start": "2025-12-29", "on_promo": 1},
    {"store_id": 4, "week_start": "2026-01-05", "on_promo": 0},
]


def tensor(name: str, data: list[Any], datatype: str, shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "shape": shape or [len(data)], "datatype": datatype, "data": data}


def oip_body(rows: list[dict[str, Any]] = ROWS, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            tensor("store_id", [r["store_id"] for r in rows], "INT64"),
            tensor("week_start", [r["week_start"] for r in rows], "BYTES"),
            tensor("on_promo", [r["on_promo"] for r in rows], "INT32"),
        ],
        **extra,
    }


def parse(body: Any, **kwargs: Any) -> protocols.InferRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_infer_request(raw, schema=SCHEMA, **kwargs)


def oip_error(body: Any, **kwargs: Any) -> InputValidationError:
    with pytest.raises(InputValidationError) as info:
        parse(body, **kwargs)
    return info.value


def expected_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return SCHEMA.parse({"inputs": rows})


# ---------------------------------------------------------------- OIP requests


def test_oip_batch_and_single_row_give_the_simple_routes_rows() -> None:
    parsed = parse(oip_body(id="req-1"))
    pd.testing.assert_frame_equal(parsed.frame, expected_frame(ROWS))
    assert parsed.id == "req-1" and parsed.outputs == {OUTPUT_PREDICTIONS: False}
    one = parse(oip_body(ROWS[:1]))
    pd.testing.assert_frame_equal(one.frame, expected_frame(ROWS[:1]))


def test_oip_shape_n_by_1_flat_or_nested() -> None:
    body = oip_body()
    body["inputs"][0] = tensor("store_id", [[3], [4]], "INT64", [2, 1])
    body["inputs"][1] = tensor("week_start", ["2025-12-29", "2026-01-05"], "BYTES", [2, 1])
    pd.testing.assert_frame_equal(parse(body).frame, expected_frame(ROWS))


@pytest.mark.parametrize("datatype", ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64"])
def test_oip_any_numeric_datatype_carries_an_int_input(datatype: str) -> None:
    body = oip_body()
    body["inputs"][0] = tensor("store_id", [3, 4], datatype)
    assert parse(body).frame["store_id"].tolist() == [3, 4]


def test_oip_bool_carries_an_int_input_and_float_values_must_be_whole() -> None:
    body = oip_body()
    body["inputs"][2] = tensor("on_promo", [True, False], "BOOL")
    assert parse(body).frame["on_promo"].tolist() == [1, 0]
    body["inputs"][2] = tensor("on_promo", [1.0, 0.5], "FP64")
    err = oip_error(body)
    assert err.errors[0]["loc"] == ["body", "inputs", "on_promo", "data", 1]
    assert err.errors[0]["type"] == "int_from_float"


def test_oip_feature_table_inputs_are_optional_and_nan_means_look_it_up() -> None:
    body = oip_body()
    body["inputs"].append(tensor("rev_lag_1", [51000.5, float("nan")], "FP64"))
    frame = parse(body).frame
    assert frame.loc[0, "rev_lag_1"] == 51000.5 and pd.isna(frame.loc[1, "rev_lag_1"])
    assert frame["rev_lag_2"].isna().all()


def test_oip_nan_in_a_required_input_is_refused() -> None:
    body = oip_body()
    body["inputs"][0] = tensor("store_id", [3, float("nan")], "FP64")
    err = oip_error(body)
    assert err.errors[0]["loc"] == ["body", "inputs", "store_id", "data", 1]


@pytest.mark.parametrize(
    ("mutate", "loc", "words"),
    [
        (lambda b: b["inputs"].pop(2), ["body", "inputs", "on_promo"], "missing input tensor 'on_promo'"),
        (lambda b: b["inputs"].append(tensor("rev_lag1", [1.0, 2.0], "FP64")), ["body", "inputs", "rev_lag1"], "unknown input tensor"),
        (lambda b: b["inputs"].append(b["inputs"][0]), ["body", "inputs", "store_id"], "sent twice"),
        (lambda b: b["inputs"][2].update(shape=[3], data=[1, 0, 1]), ["body", "inputs", "on_promo", "shape"], "3 rows"),
        (lambda b: b["inputs"][2].update(shape=[2, 2], data=[1, 0, 1, 0]), ["body", "inputs", "on_promo", "shape"], "[n] or [n, 1]"),
        (lambda b: b["inputs"][2].update(data=[1]), ["body", "inputs", "on_promo", "data"], "1 values"),
        (lambda b: b["inputs"][2].update(data=[1, "x"]), ["body", "inputs", "on_promo", "data", 1], "'x' is not a INT32"),
        (lambda b: b["inputs"][2].update(data=[1, True]), ["body", "inputs", "on_promo", "data", 1], "not a INT32"),
        (lambda b: b["inputs"][2].update(data=[1, [0]]), ["body", "inputs", "on_promo", "data", 1], "a list"),
        (lambda b: b["inputs"][2].update(datatype="INT8", data=[1, 300]), ["body", "inputs", "on_promo", "data", 1], "not a INT8"),
        (lambda b: b["inputs"][2].update(data=[1, 2]), ["body", "inputs", "on_promo", "data", 1], "less than or equal to 1"),
        (lambda b: b["inputs"][1].update(data=["2025-12-29", "not-a-date"]), ["body", "inputs", "week_start", "data", 1], "date"),
        (lambda b: b["inputs"][1].update(datatype="INT64", data=[1, 2]), ["body", "inputs", "week_start", "datatype"], "cannot carry a date"),
        (lambda b: b["inputs"][0].update(datatype="BYTES", data=["3", "4"]), ["body", "inputs", "store_id", "datatype"], "cannot carry a int"),
        (lambda b: b["inputs"][0].update(datatype="BF16"), ["body", "inputs", "store_id", "datatype"], "Input should be"),
        (lambda b: b["inputs"][0].update(shape=["2"]), ["body", "inputs", "store_id", "shape", 0], "valid integer"),
        (lambda b: b["inputs"][0].update(shape=[-2]), ["body", "inputs", "store_id", "shape"], "negative"),
        (lambda b: b["inputs"][0].pop("datatype"), ["body", "inputs", "store_id", "datatype"], "Field required"),
        (lambda b: b["inputs"][0].pop("data"), ["body", "inputs", "store_id", "data"], "no data"),
        (lambda b: b["inputs"][0].update(colour="red"), ["body", "inputs", "store_id", "colour"], "Extra inputs"),
        (lambda b: b.update(input=[]), ["body", "input"], "Extra inputs"),
        (lambda b: b.update(id=5), ["body", "id"], "valid string"),
        (lambda b: b.update(inputs=[]), ["body", "inputs"], "at least 1"),
        (lambda b: b.update(parameters={"binary_data_output": "yes"}), ["body", "parameters", "binary_data_output"], "true or false"),
        (lambda b: b.update(outputs=[{"name": "scores"}]), ["body", "outputs", "scores"], "unknown output"),
        (lambda b: b.update(outputs=[{"name": "probabilities"}]), ["body", "outputs", "probabilities"], "unknown output"),
        (lambda b: b.update(outputs=[{"name": "predictions", "parameters": {"class_count": 3}}]), ["body", "outputs", "predictions", "parameters", "class_count"], "classification"),
    ],
)
def test_oip_errors_name_the_tensor_and_field(mutate: Any, loc: list[Any], words: str) -> None:
    body = oip_body()
    mutate(body)
    err = oip_error(body)
    assert err.errors[0]["loc"] == loc, err.errors
    assert words in err.message
    assert ".".join(map(str, loc)) in err.message


def test_oip_too_many_rows_is_refused_before_reading_data() -> None:
    body = oip_body()
    for t in body["inputs"]:
        t["shape"] = [10**30]
    err = oip_error(body)
    assert err.errors[0]["loc"] == ["body", "inputs", "store_id", "shape"]
    assert err.errors[0]["type"] == "too_long"
    body = oip_body([ROWS[0]] * 6)
    assert oip_error(body).errors[0]["type"] == "too_long"
    assert oip_error(oip_body([ROWS[0]] * 0)).errors[0]["type"] == "too_short"


@pytest.mark.parametrize("raw", [b"{oops", b"\xff\xfe", b"", b"[" * 50_000 + b"]" * 50_000, b"1" * 5000])
def test_oip_non_json_body_is_a_json_error(raw: bytes) -> None:
    err = oip_error(raw)
    assert err.errors[0]["type"] == "json_invalid"


@pytest.mark.parametrize("body", [[], "x", 3, None, {"inputs": "x"}, {"inputs": [1]}, {"inputs": [{"name": "store_id"}]}])
def test_oip_malformed_envelopes(body: Any) -> None:
    assert oip_error(body).errors


# ---------------------------------------------------------------- OIP binary tensors (tritonclient's encoder)


def triton_inputs(rows: list[dict[str, Any]], *, binary: bool = True) -> list[Any]:
    import tritonclient.http as httpclient

    columns = [
        ("store_id", "INT64", np.array([r["store_id"] for r in rows], dtype=np.int64)),
        ("week_start", "BYTES", np.array([r["week_start"] for r in rows], dtype=object)),
        ("on_promo", "BOOL", np.array([bool(r["on_promo"]) for r in rows])),
    ]
    inputs = []
    for name, datatype, values in columns:
        item = httpclient.InferInput(name, [len(rows)], datatype)
        item.set_data_from_numpy(values, binary_data=binary)
        inputs.append(item)
    return inputs


@pytest.mark.parametrize("binary", [True, False])
def test_oip_tritonclient_request_bodies_parse(binary: bool) -> None:
    import tritonclient.http as httpclient

    body, header = httpclient.InferenceServerClient.generate_request_body(triton_inputs(ROWS, binary=binary), request_id="t1")
    parsed = parse_infer_request(body, schema=SCHEMA, header_length=None if header is None else str(header))
    pd.testing.assert_frame_equal(parsed.frame, expected_frame(ROWS))
    assert parsed.id == "t1"
    # tritonclient asks for binary outputs unless told otherwise
    assert parsed.outputs == {OUTPUT_PREDICTIONS: True}


def test_oip_binary_float_tensor_and_requested_json_output() -> None:
    import tritonclient.http as httpclient

    inputs = triton_inputs(ROWS)
    extra = httpclient.InferInput("rev_lag_1", [2], "FP32")
    extra.set_data_from_numpy(np.array([51000.5, np.nan], dtype=np.float32))
    outputs = [httpclient.InferRequestedOutput("predictions", binary_data=False)]
    body, header = httpclient.InferenceServerClient.generate_request_body([*inputs, extra], outputs=outputs)
    parsed = parse_infer_request(body, schema=SCHEMA, header_length=str(header))
    assert parsed.frame.loc[0, "rev_lag_1"] == 51000.5 and pd.isna(parsed.frame.loc[1, "rev_lag_1"])
    assert parsed.outputs == {OUTPUT_PREDICTIONS: False}


def binary_body(*, tail: bytes = b"", size: int | None = None, datatype: str = "INT64") -> tuple[bytes, str]:
    """store_id (INT64) or week_start (BYTES: ``tail`` is its data) as binary; ``tail`` follows an INT64 tensor."""
    inputs = oip_body()["inputs"]
    if datatype == "INT64":
        index, chunk, after = 0, np.array([3, 4], dtype=np.int64).tobytes(), tail
    else:
        index, chunk, after = 1, tail, b""
    inputs[index] = {"name": inputs[index]["name"], "shape": [2], "datatype": datatype,
                     "parameters": {"binary_data_size": len(chunk) if size is None else size}}
    header = json.dumps({"inputs": inputs}).encode()
    return header + chunk + after, str(len(header))


@pytest.mark.parametrize(
    ("build", "header", "words"),
    [
        (lambda: binary_body(size=24), None, "runs past the end"),
        (lambda: binary_body(size=8), None, "do not hold 2 INT64 values"),
        (lambda: binary_body(tail=b"junk"), None, "belong to no input"),
        (lambda: binary_body(datatype="BYTES", tail=struct.pack("<I", 2) + b"\xff\xfe" + struct.pack("<I", 1) + b"a"), None, "not UTF-8"),
        (lambda: binary_body(datatype="BYTES", tail=struct.pack("<I", 99) + b"ab"), None, "runs past"),
        (lambda: binary_body(datatype="BYTES", tail=struct.pack("<I", 1) + b"3"), None, "holds 1 elements"),
        (lambda: binary_body(), "abc", "byte count"),
        (lambda: binary_body(), "\u00b2", "byte count"),
        (lambda: binary_body(), "9" * 5000, "byte count"),
        (lambda: binary_body(), "0", "not within"),
        (lambda: binary_body(), "999999", "not within"),
    ],
)
def test_oip_broken_binary_tensors_are_named(build: Any, header: str | None, words: str) -> None:
    raw, real_header = build()
    with pytest.raises(InputValidationError) as info:
        parse_infer_request(raw, schema=SCHEMA, header_length=header or real_header)
    assert words in info.value.message


def test_oip_binary_size_without_the_header_is_refused() -> None:
    raw, _ = binary_body()
    with pytest.raises(InputValidationError, match=r"the JSON header|not valid JSON"):
        parse_infer_request(raw, schema=SCHEMA)


# ---------------------------------------------------------------- OIP responses and metadata


def decode(reply: protocols.EncodedInferResponse) -> Any:
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient.parse_response_body(reply.content, header_length=reply.header_length)


@pytest.mark.parametrize("binary", [False, True])
def test_oip_response_regression_values_round_trip_through_tritonclient(binary: bool) -> None:
    values = np.array([46475.085115392416, 0.1 + 0.2])
    reply = infer_response(model_name="m", model_version="7", request_id="r9", values=values,
                           outputs={OUTPUT_PREDICTIONS: binary})
    result = decode(reply)
    np.testing.assert_array_equal(result.as_numpy("predictions"), values)
    info = result.get_response()
    assert (info["model_name"], info["model_version"], info["id"]) == ("m", "7", "r9")
    assert (reply.header_length is not None) is binary
    assert reply.media_type == ("application/octet-stream" if binary else "application/json")


@pytest.mark.parametrize("binary", [False, True])
def test_oip_class_labels_are_bytes_and_probabilities_come_when_asked(binary: bool) -> None:
    labels = np.array(["low", "high", 3], dtype=object)
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9]])
    reply = infer_response(model_name="m", model_version="1", request_id=None, values=labels,
                           probabilities=proba, classes=["low", "high", 3],
                           outputs={OUTPUT_PREDICTIONS: binary, OUTPUT_PROBABILITIES: binary})
    result = decode(reply)
    got = result.as_numpy("predictions")
    assert [v.decode() if isinstance(v, bytes) else v for v in got.tolist()] == ["low", "high", "3"]
    np.testing.assert_array_equal(result.as_numpy("probabilities"), proba)
    out = {o["name"]: o for o in result.get_response()["outputs"]}
    assert out["predictions"]["datatype"] == "BYTES" and out["probabilities"]["shape"] == [3, 3]
    assert json.loads(out["probabilities"]["parameters"]["classes"]) == ["low", "high", 3]
    assert len(result.get_response()["id"]) == 32  # generated when the client sent none


def test_oip_probabilities_for_a_classifier_are_parsed_as_requested() -> None:
    body = oip_body(outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "predictions"}])
    parsed = parse(body, outputs=[OUTPUT_PREDICTIONS, OUTPUT_PROBABILITIES])
    assert parsed.outputs == {OUTPUT_PROBABILITIES: True, OUTPUT_PREDICTIONS: False}


def test_model_metadata_declares_every_input_from_the_schema() -> None:
    md = model_metadata(name="sales_forecasting", version="3", platform="raycore_lightgbm", input_schema=INPUT_SCHEMA)
    assert md["versions"] == ["3"] and md["platform"] == "raycore_lightgbm"
    types = {i["name"]: i["datatype"] for i in md["inputs"]}
    assert [i["name"] for i in md["inputs"]] == SCHEMA.names
    assert types["store_id"] == "INT64" and types["week_start"] == "BYTES" and types["rev_lag_1"] == "FP64"
    assert all(i["shape"] == [-1] for i in md["inputs"])
    assert md["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]
    multi = model_metadata(name="m", version="1", platform="p", input_schema=[], classes=["a", "b"])
    assert multi["outputs"][0]["datatype"] == "BYTES" and multi["outputs"][1]["shape"] == [-1, 2]
    assert protocols.OipModelMetadata.model_validate(md)


def test_server_metadata() -> None:
    meta = server_metadata()
    assert meta["name"] == "data-foundry" and "binary_tensor_data" in meta["extensions"]
    assert protocols.OipServerMetadata.model_validate(meta)


# ---------------------------------------------------------------- MLflow scoring


def frame_of(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def scoring(body: Any) -> protocols.ScoringRequest:
    # through JSON text, as on the wire (NaN survives as MLflow's encoder writes it)
    return parse_scoring_request(json.loads(json.dumps(body)), schema=SCHEMA)


def scoring_error(body: Any) -> InputValidationError:
    with pytest.raises(InputValidationError) as info:
        scoring(body)
    return info.value


def test_mlflow_dataframe_split_as_pandas_and_mlflow_write_it() -> None:
    from mlflow.models import convert_input_example_to_serving_input
    from mlflow.utils.proto_json_utils import dump_input_data

    frame = frame_of(ROWS)
    for body in (
        {"dataframe_split": frame.to_dict(orient="split")},
        json.loads(dump_input_data(frame)),
        json.loads(convert_input_example_to_serving_input(frame) or "{}"),
    ):
        parsed = scoring(body)
        assert parsed.format == "dataframe_split"
        pd.testing.assert_frame_equal(parsed.frame, expected_frame(ROWS))
    one = scoring({"dataframe_split": frame.head(1).to_dict(orient="split")})
    pd.testing.assert_frame_equal(one.frame, expected_frame(ROWS[:1]))


def test_mlflow_missing_cells_are_looked_up_online() -> None:
    frame = frame_of([{**ROWS[0], "rev_lag_1": 51000.5}, ROWS[1]])  # row 1: NaN
    parsed = scoring({"dataframe_split": frame.to_dict(orient="split")})
    assert parsed.frame.loc[0, "rev_lag_1"] == 51000.5 and pd.isna(parsed.frame.loc[1, "rev_lag_1"])


def test_mlflow_records_inputs_and_instances() -> None:
    expected = expected_frame(ROWS)
    columns = {k: [r[k] for r in ROWS] for k in ROWS[0]}
    for body in (
        {"dataframe_records": frame_of(ROWS).to_dict(orient="records")},
        {"inputs": ROWS},
        {"inputs": columns},
        {"instances": ROWS},
        {"instances": columns, "params": {}},
    ):
        pd.testing.assert_frame_equal(scoring(body).frame, expected)
    for body in ({"inputs": ROWS[0]}, {"dataframe_records": ROWS[0]}, {"dataframe_records": ROWS[:1]}):
        pd.testing.assert_frame_equal(scoring(body).frame, expected_frame(ROWS[:1]))
    assert scoring({"inputs": ROWS}).params is None and scoring({"inputs": ROWS, "params": {}}).params is None
    assert scoring({"inputs": ROWS, "params": {"level": 0.9, "explain": 2}}).params == {"level": 0.9, "explain": 2}


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"dataframe_split": {"columns": ["store_id", "week_start"], "data": [[3, "2025-12-29"]]}},
         ["body", "dataframe_split", "columns", "on_promo"], "missing column 'on_promo'"),
        ({"dataframe_split": {"columns": ["store_id", "week_start", "on_promo"], "data": [[3, "2025-12-29", "x"]]}},
         ["body", "dataframe_split", "data", 0, "on_promo"], "valid integer"),
        ({"dataframe_split": {"columns": ["store_id", "week_start", "on_promo", "colour"], "data": []}},
         ["body", "dataframe_split", "columns", "colour"], "unknown column"),
        ({"dataframe_split": {"columns": ["store_id", "store_id"], "data": []}},
         ["body", "dataframe_split", "columns"], "appears twice"),
        ({"dataframe_split": {"columns": ["store_id", "week_start", "on_promo"], "data": [[3, "2025-12-29"]]}},
         ["body", "dataframe_split", "data", 0], "list of 3 values"),
        ({"dataframe_split": {"columns": ["store_id", "week_start", "on_promo"], "data": [[3, "2025-12-29", 1]] * 6}},
         ["body", "dataframe_split", "data"], "too many rows"),
        ({"dataframe_split": {"columns": ["store_id", "week_start", "on_promo"], "data": []}},
         ["body", "dataframe_split", "data"], "no rows"),
        ({"dataframe_split": {"columns": "store_id", "data": []}}, ["body", "dataframe_split", "columns"], "list of column names"),
        ({"dataframe_split": {"columns": ["store_id"], "data": [], "orient": "x"}}, ["body", "dataframe_split", "orient"], "unknown field"),
        ({"dataframe_split": [1]}, ["body", "dataframe_split"], "columns and data"),
        ({"dataframe_records": [ROWS[0], {**ROWS[1], "store_id": 0}]}, ["body", "dataframe_records", 1, "store_id"], "greater than or equal to 1"),
        ({"dataframe_records": [ROWS[0], 7]}, ["body", "dataframe_records", 1], "row must be an object"),
        ({"dataframe_records": "rows"}, ["body", "dataframe_records"], "list of row objects"),
        ({"inputs": {"store_id": [3, 4], "week_start": ["2025-12-29"], "on_promo": [1, 0]}}, ["body", "inputs", "week_start"], "has 1 values"),
        ({"inputs": {"store_id": [3], "week_start": "2025-12-29", "on_promo": [1]}}, ["body", "inputs", "week_start"], "mixes columns"),
        ({"inputs": {"store_id": [3, 4], "week_start": ["2025-12-29", "2026-01-05"], "on_promo": [1, 9]}}, ["body", "inputs", "on_promo", 1], "less than or equal to 1"),
        ({"inputs": 5}, ["body", "inputs"], "list of rows or an object"),
        ({"instances": [{**ROWS[0], "week_start": "1066-10-14"}]}, ["body", "instances", 0, "week_start"], "greater than or equal to 1900-01-01"),
        ({"inputs": ROWS, "instances": ROWS}, ["body"], "exactly one input format"),
        ({}, ["body"], "exactly one input format, got none"),
        ({"data": ROWS}, ["body", "data"], "unknown field"),
        ({"inputs": ROWS, "params": {"temperature": 1}}, ["body", "params", "temperature"], "unknown param 'temperature'"),
        ({"inputs": ROWS, "params": [0.9]}, ["body", "params"], "params must be an object"),
        ([ROWS], ["body"], "JSON object"),
    ],
)
def test_mlflow_errors_name_the_field(body: Any, loc: list[Any], words: str) -> None:
    err = scoring_error(body)
    assert err.errors[0]["loc"] == loc, err.errors
    assert words in err.message


def test_mlflow_nan_in_a_required_column_is_a_missing_value() -> None:
    frame = frame_of([ROWS[0], {**ROWS[1], "on_promo": float("nan")}])
    err = scoring_error({"dataframe_split": frame.to_dict(orient="split")})
    assert err.errors[0]["loc"] == ["body", "dataframe_split", "data", 1, "on_promo"]


def test_scoring_response_keeps_mlflows_shape() -> None:
    from mlflow.deployments import PredictionsResponse

    body = scoring_response(predictions=[1.5, 2.5], model_name="m", model_version="4")
    response = PredictionsResponse.from_json(json.dumps(body))
    assert response.get_predictions(predictions_format="ndarray").tolist() == [1.5, 2.5]
    assert response["model_version"] == "4"


# ---------------------------------------------------------------- shared


def test_decode_json_refuses_what_is_not_json() -> None:
    assert decode_json(b'{"a": NaN}')["a"] != decode_json(b'{"a": NaN}')["a"]  # NaN parses; the row schema refuses it
    for raw in (b"{", b"\x80", b"[" * 100_000):
        with pytest.raises(InputValidationError) as info:
            decode_json(raw)
        assert info.value.errors[0]["type"] == "json_invalid"


def test_documented_request_models_accept_what_the_parsers_accept() -> None:
    """The OpenAPI page's schemas stay in step with the parsers."""
    assert protocols.OipInferRequest.model_validate(oip_body(id="x", outputs=[{"name": "predictions"}]))
    frame = frame_of(ROWS)
    assert protocols.ScoringRequestDoc.model_validate({"dataframe_split": frame.to_dict(orient="split")})
    assert protocols.ScoringRequestDoc.model_validate({"dataframe_records": ROWS, "params": {}})
    assert protocols.ScoringRequestDoc.model_validate({"inputs": {k: [r[k] for r in ROWS] for k in ROWS[0]}})


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("store_id", 2**63, "less_than_equal"),
        ("week_start", "1899-12-25", "greater_than_equal"),
        ("week_start", "2101-01-03", "less_than_equal"),
        ("origin_week", "1678-01-02", "greater_than_equal"),
    ],
)
def test_values_that_would_overflow_downstream_are_refused_on_every_route(field: str, value: Any, kind: str) -> None:
    """int64 and the 1900-2100 date window: later numpy/pandas arithmetic cannot overflow."""
    row = {**ROWS[0], field: value}
    with pytest.raises(InputValidationError) as simple:
        SCHEMA.parse({"inputs": row})
    with pytest.raises(InputValidationError) as mlflow:
        parse_scoring_request({"dataframe_records": [row]}, schema=SCHEMA)
    datatype = "UINT64" if isinstance(value, int) else "BYTES"  # UINT64 holds 2**63; INT64 could not
    body = oip_body()
    body["inputs"] = [t for t in body["inputs"] if t["name"] != field] + [tensor(field, [value, value], datatype)]
    oip = oip_error(body)
    for err in (simple.value, mlflow.value, oip):
        assert err.errors[0]["type"] == kind and field in err.errors[0]["loc"]


def test_protocols_import_no_ray_mlflow_or_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, raycore.serving.protocols; "
        "print(sorted(m for m in ('ray', 'mlflow', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
