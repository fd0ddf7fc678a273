"""The champion/challenger gate, the champion's history and model references: pure logic, no Ray."""

from __future__ import annotations

import pytest

from raycore.catalog import load_catalog
from raycore.cli.main import parse_params
from raycore.errors import RegistryError, SpecError
from raycore.registry.audit import AuditEvent
from raycore.registry.lineage import parse_model_ref
from raycore.registry.promotion import champion_history, compare_results, guards_of
from raycore.specs import GateCondition, GateSpec, GuardSpec, PromotionSpec

MAPE_SPEC = load_catalog().get("mdl-001")  # gate: mape <= 0.15
CREDIT = load_catalog().get("mdl-029").model_copy(
    update={
        "gate": GateSpec(
            metric="roc_auc", op=">=", threshold=0.80,
            also=[GateCondition(metric="ks", op=">=", threshold=0.40)],
        )
    }
)  # gate: roc_auc >= 0.80 and ks >= 0.40


def test_better_candidate_is_accepted_and_worse_refused_with_the_numbers() -> None:
    better = compare_results(MAPE_SPEC, candidate={"mape": 0.11}, champion={"mape": 0.12},
                             candidate_version="3", champion_version="1")
    assert better.accepted
    assert better.comparisons[0].improvement == pytest.approx((0.12 - 0.11) / 0.12)

    worse = compare_results(MAPE_SPEC, candidate={"mape": 0.143}, champion={"mape": 0.124},
                            candidate_version="2", champion_version="1")
    assert not worse.accepted
    assert "refused" in worse.summary
    assert "0.143" in worse.summary and "0.124" in worse.summary
    assert "v2" in worse.summary and "v1" in worse.summary


def test_a_tie_is_not_an_improvement() -> None:
    assert not compare_results(MAPE_SPEC, candidate={"mape": 0.12}, champion={"mape": 0.12}).accepted


def test_margin_is_relative_to_the_champion() -> None:
    spec = MAPE_SPEC.model_copy(update={"promotion": PromotionSpec(margin=0.05)})
    # 4% better: not enough for a 5% margin; 6% better: enough
    assert not compare_results(spec, candidate={"mape": 0.096}, champion={"mape": 0.100}).accepted
    assert compare_results(spec, candidate={"mape": 0.094}, champion={"mape": 0.100}).accepted


def test_gate_also_metrics_are_guards_for_higher_is_better_metrics() -> None:
    assert [g.metric for g in guards_of(CREDIT)] == ["ks"]
    better_auc_worse_ks = compare_results(
        CREDIT, candidate={"roc_auc": 0.83, "ks": 0.41}, champion={"roc_auc": 0.82, "ks": 0.45}
    )
    assert not better_auc_worse_ks.accepted
    failing = [c for c in better_auc_worse_ks.comparisons if not c.ok]
    assert [c.metric for c in failing] == ["ks"]
    assert compare_results(
        CREDIT, candidate={"roc_auc": 0.83, "ks": 0.45}, champion={"roc_auc": 0.82, "ks": 0.45}
    ).accepted


def test_guard_tolerance_allows_a_small_worsening() -> None:
    spec = CREDIT.model_copy(
        update={"promotion": PromotionSpec(guards=[GuardSpec(metric="ks", op=">=", tolerance=0.05)])}
    )
    assert compare_results(spec, candidate={"roc_auc": 0.83, "ks": 0.44}, champion={"roc_auc": 0.82, "ks": 0.45}).accepted
    assert not compare_results(spec, candidate={"roc_auc": 0.83, "ks": 0.40}, champion={"roc_auc": 0.82, "ks": 0.45}).accepted


def test_a_missing_or_nan_metric_is_an_error_not_a_pass() -> None:
    with pytest.raises(RegistryError, match="candidate has no finite 'mape'"):
        compare_results(MAPE_SPEC, candidate={"mape": float("nan")}, champion={"mape": 0.1})
    with pytest.raises(RegistryError, match="champion has no finite 'ks'"):
        compare_results(CREDIT, candidate={"roc_auc": 0.9, "ks": 0.5}, champion={"roc_auc": 0.8})


def test_promotion_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        PromotionSpec(margin=-0.1)
    with pytest.raises(ValueError):
        PromotionSpec.model_validate({"margin": 0.01, "guard": []})  # typo: extra field


def _event(i: int, action: str, version: str | None, alias: str = "champion") -> AuditEvent:
    return AuditEvent(i, "t", "m", action, alias, version, None, "user:x", "r", {})


def test_champion_history_pushes_promotions_and_pops_rollbacks() -> None:
    events = [
        _event(1, "promote", "1"),
        _event(2, "candidate", "2", alias="challenger"),
        _event(3, "promotion_refused", "2"),
        _event(4, "promote", "3"),
        _event(5, "promote", "4"),
    ]
    assert champion_history(events) == ["1", "3", "4"]
    assert champion_history([*events, _event(6, "rollback", "3")]) == ["1", "3"]
    # a second rollback goes one further step back, not back and forth
    assert champion_history([*events, _event(6, "rollback", "3"), _event(7, "rollback", "1")]) == ["1"]
    # rolling "back" to a version that never was champion records it as the new holder
    assert champion_history([*events, _event(6, "rollback", "2")]) == ["1", "3", "4", "2"]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("mdl-001", ("mdl-001", None, None)),
        ("mdl-001@champion", ("mdl-001", "champion", None)),
        ("sales_forecasting:12", ("sales_forecasting", None, "12")),
    ],
)
def test_model_references(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    assert parse_model_ref(ref) == expected


def test_bad_model_reference_names_the_forms() -> None:
    with pytest.raises(RegistryError) as err:
        parse_model_ref("mdl-001@champion:3")
    assert "MODEL@alias" in (err.value.hint or "")


def test_param_overrides_are_typed_and_bad_ones_refused() -> None:
    assert parse_params(["num_leaves=7", "learning_rate=0.05", "extra_trees=true"]) == {
        "num_leaves": 7, "learning_rate": 0.05, "extra_trees": True,
    }
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_params(["num_leaves"])
