"""Per-request answer options: parsed strictly, with the field named when wrong."""

from __future__ import annotations

import pytest

from raycore.errors import InputValidationError
from raycore.serving.extras import MAX_EXPLAIN, AnswerOptions


def test_options_parse_and_normalise() -> None:
    assert AnswerOptions.parse(None) == AnswerOptions() and not AnswerOptions.parse({}).any
    assert AnswerOptions.parse({"explain": 3, "level": 0.95}) == AnswerOptions(
        explain=3, level=0.95
    )
    assert AnswerOptions.parse({"level": 90}).level == pytest.approx(0.9)  # percent accepted
    assert AnswerOptions.parse({"explain": True}).explain == 5
    assert AnswerOptions.parse({"explain": False, "level": None}) == AnswerOptions()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"explain": -1}, "explain"),
        ({"explain": MAX_EXPLAIN + 1}, "explain"),
        ({"explain": 2.5}, "explain"),
        ({"explain": "3"}, "explain"),
        ({"level": 0}, "level"),
        ({"level": 100}, "level"),
        ({"level": "high"}, "level"),
        ({"level": float("nan")}, "level"),
        ({"level": True}, "level"),
    ],
)
def test_bad_options_name_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(InputValidationError) as info:
        AnswerOptions.parse(params)
    assert info.value.errors[0]["loc"] == [field] and field in info.value.message
