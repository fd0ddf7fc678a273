"""Request validation: every bad request is a clear 422-shaped error, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from raycore.errors import InputValidationError
from raycore.features import get_feature_view
from raycore.serving.schemas import RowSchema

SCHEMA = RowSchema.from_input_schema(get_feature_view("store_sales_lags").input_schema(), max_rows=5)
ROW: dict[str, Any] = {
    "store_id": 3, "week_start": "2025-12-01", "on_promo": 0, "origin_week": "2025-11-24",
    "rev_lag_1": 50000.0, "rev_lag_2": 48000, "rev_lag_3": 51000, "rev_lag_4": 47000,
    "rev_mean_13": 49000, "promo_weeks_13": 2, "rev_ly_1": 52000, "rev_ly_2": 52000,
    "rev_ly_3": 52000, "rev_ly_4": 52000,
}


def errors_of(body: Any) -> list[dict[str, Any]]:
    with pytest.raises(InputValidationError) as info:
        SCHEMA.parse(body)
    return info.value.errors


def test_single_row_and_batch() -> None:
    assert len(SCHEMA.parse({"inputs": ROW})) == 1
    frame = SCHEMA.parse({"inputs": [ROW, ROW], "request_id": "r1"})
    assert list(frame.columns) == SCHEMA.names and len(frame) == 2


def test_missing_required_input_is_named() -> None:
    row = {k: v for k, v in ROW.items() if k != "on_promo"}
    (err,) = errors_of({"inputs": [ROW, row]})
    assert err["loc"] == ["body", "inputs", 1, "on_promo"] and err["type"] == "missing"


def test_feature_table_values_are_optional_but_typed() -> None:
    """The online store fills them in; when sent, they are validated like any input."""
    assert SCHEMA.required == ["store_id", "week_start", "on_promo"]
    frame = SCHEMA.parse({"inputs": {"store_id": 1, "week_start": "2025-12-29", "on_promo": 1}})
    assert frame.loc[0, "rev_lag_1"] is None
    (err,) = errors_of({"inputs": {**ROW, "rev_lag_1": -5}})
    assert err["loc"][-1] == "rev_lag_1" and err["type"] == "greater_than_equal"


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("rev_lag_1", "abc", "float_parsing"),
        ("promo_weeks_13", 14, "less_than_equal"),
        ("on_promo", -1, "greater_than_equal"),
        ("week_start", "not-a-date", "date_from_datetime_parsing"),
        ("store_id", 1.5, "int_from_float"),
        ("on_promo", None, "int_type"),
    ],
)
def test_wrong_values_are_named(field: str, value: Any, kind: str) -> None:
    (err,) = errors_of({"inputs": {**ROW, field: value}})
    assert err["loc"][-1] == field
    assert err["type"].startswith(kind.split("_")[0])


def test_nan_and_infinity_are_rejected() -> None:
    assert errors_of({"inputs": {**ROW, "rev_lag_1": float("nan")}})
    assert errors_of({"inputs": {**ROW, "rev_lag_1": float("inf")}})


def test_unknown_fields_are_rejected() -> None:
    (err,) = errors_of({"inputs": {**ROW, "rev_lag1": 3.0}})
    assert err["type"] == "extra_forbidden" and err["loc"][-1] == "rev_lag1"
    (err,) = errors_of({"inputs": ROW, "input": []})
    assert err["loc"] == ["body", "input"]


@pytest.mark.parametrize("body", [None, [], "x", 3, {}, {"inputs": []}, {"inputs": "x"}, {"inputs": [1, 2]}])
def test_malformed_bodies(body: Any) -> None:
    assert errors_of(body)


def test_too_many_rows() -> None:
    (err,) = errors_of({"inputs": [ROW] * 6})
    assert err["type"] == "too_long"
