"""The packaged catalog: all 30 models declared, and every name a spec uses resolves."""

from __future__ import annotations

import pytest

from raycore.catalog import load_catalog
from raycore.data.layers import dataset_specs
from raycore.features import get_feature_view
from raycore.models.factories import sklearn_factories
from raycore.training.evaluation import get_evaluator
from raycore.training.metrics import GROUPED, METRICS

CATALOG = load_catalog()
SPECS = list(CATALOG)


def test_all_thirty_models_are_declared() -> None:
    ids = sorted(s.id for s in SPECS)
    assert ids[:30] == [f"mdl-{i:03d}" for i in range(1, 31)]
    assert len({s.name for s in SPECS}) == len(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_every_reference_resolves(spec) -> None:  # type: ignore[no-untyped-def]
    view = get_feature_view(spec.features[0])
    assert view.label_rows is not None, f"{view.name} cannot build training rows"
    datasets = dataset_specs()
    for table in {spec.data.table, *(t.source for t in view.tables), *view.label_sources} - {None}:
        assert table in datasets, f"{spec.id} reads '{table}', which has no dataset spec"
    get_evaluator(spec.evaluation.evaluator)
    if spec.evaluation.evaluator == "holdout":
        for cond in spec.gate.conditions:
            assert cond.metric in METRICS or cond.metric in GROUPED, f"{spec.id}: no metric '{cond.metric}'"
    if spec.algorithm.family == "sklearn":
        assert spec.algorithm.objective in sklearn_factories()
    if spec.task == "ranking":
        assert spec.group_column, f"{spec.id}: a ranking model needs group_column"
    assert not spec.resources.use_gpu, "the packaged catalog must train on CPU-only machines"
