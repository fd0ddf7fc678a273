"""Sweep YAML (tune_configs/): loading, validation errors, merging, and the search space as Ray Tune domains.

No Ray runtime: Ray Tune's sampling domains and schedulers are plain objects.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from raycore.catalog import load_catalog
from raycore.errors import SpecError
from raycore.specs import ModelSpec, load_spec
from raycore.tuning import (
    FamilySweep,
    SweepConfig,
    SweepDefaults,
    load_sweep_config,
    merge_sweep,
)
from raycore.tuning.config import default_config_dir
from raycore.tuning.space import (
    build_scheduler,
    build_search,
    decode_config,
    full_length,
    progress_attr,
    split_rounds,
    tune_space,
)

CATALOG = load_catalog()
DEFAULTS = (default_config_dir() / "defaults.yaml").read_text()


def spec(model_id: str) -> ModelSpec:
    return CATALOG.get(model_id)


@pytest.fixture()
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped defaults, with an empty models/ folder to write overrides into."""
    (tmp_path / "models").mkdir()
    (tmp_path / "defaults.yaml").write_text(DEFAULTS)
    return tmp_path


def write_override(folder: Path, model_id: str, text: str) -> Path:
    path = folder / "models" / f"{model_id}.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- shipped files


def test_every_shipped_override_loads_and_takes_metric_and_mode_from_the_gate() -> None:
    for path in sorted((default_config_dir() / "models").glob("mdl-*.yaml")):
        model = spec(path.stem)
        sweep = load_sweep_config(model)
        assert sweep.model_id == model.id and sweep.family == model.algorithm.family
        assert sweep.metric == model.gate.metric
        assert sweep.mode == ("min" if model.gate.op == "<=" else "max")
        assert str(path) in sweep.sources


def test_every_catalog_booster_gets_a_sweep_from_the_family_defaults() -> None:
    boosters = [s for s in CATALOG if s.algorithm.family in ("lightgbm", "xgboost")]
    assert boosters
    for model in boosters:
        sweep = load_sweep_config(model)
        assert sweep.space and sweep.num_samples >= 1
    assert load_sweep_config(spec("mdl-001")).mode == "min"  # mape <= 0.x


def test_model_override_replaces_fields_and_merges_the_space(config_dir: Path) -> None:
    write_override(
        config_dir,
        "mdl-005",
        "model: mdl-005\nnum_samples: 5\ntime_budget_s: null\n"
        "scheduler: {kind: fifo}\n"
        "space:\n  learning_rate: {type: loguniform, low: 0.02, high: 0.05}\n"
        "  extra_trees: {type: choice, values: [true, false]}\n"
        "drop: [lambda_l2]\n",
    )
    sweep = load_sweep_config(spec("mdl-005"), config_dir=config_dir)
    assert sweep.num_samples == 5 and sweep.time_budget_s is None
    assert sweep.scheduler.kind == "fifo" and not sweep.early_stopping
    assert sweep.space["learning_rate"].low == 0.02  # replaced
    assert "extra_trees" in sweep.space and "lambda_l2" not in sweep.space
    assert "num_leaves" in sweep.space  # kept from the defaults
    assert sweep.max_concurrent == 1 and sweep.report_every == 10  # not overridden
    assert load_sweep_config(spec("mdl-005"), config_dir=config_dir, num_samples=2).num_samples == 2


def test_an_explicit_config_file_replaces_the_models_folder(
    config_dir: Path, tmp_path: Path
) -> None:
    write_override(config_dir, "mdl-005", "model: mdl-005\nnum_samples: 5\n")
    other = tmp_path / "mine.yaml"
    other.write_text("model: mdl-005\nnum_samples: 3\n")
    sweep = load_sweep_config(spec("mdl-005"), config_dir=config_dir, override_file=other)
    assert sweep.num_samples == 3 and sweep.sources[-1] == str(other)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("model: mdl-005\nnum_sample: 3\n", "num_sample", "rename it to 'num_samples'"),
        ("model: mdl-005\nmetric: rmse\n", "metric", "remove 'metric'"),
        (
            "model: mdl-005\nspace:\n  learning_rate: {type: loguniform, low: 0, high: 0.1}\n",
            "space.learning_rate.loguniform",
            "low > 0",
        ),
        (
            "model: mdl-005\nspace:\n  n: {type: randint, low: 5, high: 2}\n",
            "space.n.randint",
            "must be < high",
        ),
        (
            "model: mdl-005\nspace:\n  n: {type: choice, values: []}\n",
            "space.n.choice.values",
            "at least 1",
        ),
        (
            "model: mdl-005\nspace:\n  n: {type: choice, values: [1, 1]}\n",
            "space.n.choice.values",
            "distinct",
        ),
        (
            "model: mdl-005\nspace:\n  n: {type: normal, low: 1, high: 2}\n",
            "space.n",
            "does not match",
        ),
        (
            "model: mdl-005\nscheduler: {kind: asha, grace_period: 50, max_t: 20}\n",
            "scheduler.asha",
            "max_t (20) must be >= grace_period (50)",
        ),
        ("model: mdl-005\nnum_samples: 0\n", "num_samples", "greater than or equal to 1"),
    ],
)
def test_a_bad_override_names_file_field_and_line(
    config_dir: Path, text: str, field: str, says: str
) -> None:
    path = write_override(config_dir, "mdl-005", text)
    with pytest.raises(SpecError) as info:
        load_sweep_config(spec("mdl-005"), config_dir=config_dir)
    err = info.value
    assert err.path == str(path) and err.field == field
    assert says in str(err)
    assert "(line " in err.message and err.hint


def test_malformed_yaml_is_a_spec_error_with_the_line(config_dir: Path) -> None:
    write_override(config_dir, "mdl-005", "model: mdl-005\nspace: [1, 2\n")
    with pytest.raises(SpecError, match=r"malformed YAML at line 3"):
        load_sweep_config(spec("mdl-005"), config_dir=config_dir)


@pytest.mark.parametrize(
    ("model_id", "text", "field", "says"),
    [
        ("mdl-005", "model: mdl-006\n", "model", "for mdl-006, not mdl-005"),
        ("mdl-005", "model: mdl-005\ndrop: [nope]\n", "drop", "nope"),
        (
            "mdl-005",
            "model: mdl-005\nscheduler: {kind: pbt}\nsearch: {kind: random}\n",
            "scheduler.kind",
            "pbt cannot run",
        ),
        (
            "mdl-005",
            "model: mdl-005\nspace:\n  num_boost_round: {type: quniform, low: 10, high: 100, q: 2.5}\n",
            "space.num_boost_round",
            "integer domain",
        ),
        (
            "mdl-002",
            "model: mdl-002\nspace:\n  num_boost_round: {type: randint, low: 10, high: 20}\n",
            "space.num_boost_round",
            "not sklearn",
        ),
        (
            "mdl-002",
            "model: mdl-002\n",
            "space",
            "models/mdl-002.yaml",
        ),  # sklearn defaults have no space
    ],
)
def test_conflicts_across_files_name_the_field(
    config_dir: Path, model_id: str, text: str, field: str, says: str
) -> None:
    path = write_override(config_dir, model_id, text)
    with pytest.raises(SpecError) as info:
        load_sweep_config(spec(model_id), config_dir=config_dir)
    assert info.value.field == field and info.value.path == str(path)
    assert says in str(info.value)


def test_pbt_is_refused_at_load_with_the_reason_and_the_fix(config_dir: Path) -> None:
    # The catalog has no torch model yet: mdl-005 as a torch MLP stands in for one.
    torch_id = "mdl-005"
    torch_spec = spec(torch_id).model_copy(
        update={
            "algorithm": spec(torch_id).algorithm.model_copy(
                update={"family": "torch", "objective": "mlp", "params": {}}
            )
        }
    )
    shipped = load_spec(default_config_dir() / "defaults.yaml", SweepDefaults).families["torch"]
    assert set(merge_sweep(torch_spec, shipped).space) >= {
        "lr",
        "hidden",
    }  # the torch defaults load
    path = write_override(
        config_dir,
        torch_id,
        f"model: {torch_id}\nscheduler: {{kind: pbt, perturbation_interval: 2, mutate: [lr]}}\n"
        "search: {kind: random}\n",
    )
    with pytest.raises(SpecError) as info:
        load_sweep_config(torch_spec, config_dir=config_dir)
    err = info.value
    assert err.field == "scheduler.kind" and err.path == str(path)
    assert "pbt cannot run" in err.message and "another trial's checkpoint" in err.message
    assert err.hint and "asha" in err.hint
    # No way around the loader: a resolved config with pbt cannot be built either.
    data = merge_sweep(torch_spec, shipped).model_dump()
    data["scheduler"] = {"kind": "pbt"}
    with pytest.raises(ValueError, match="pbt cannot run"):
        SweepConfig.model_validate(data)


def test_missing_defaults_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="sweep defaults not found"):
        load_sweep_config(spec("mdl-005"), config_dir=tmp_path)


# --------------------------------------------------------------------------- search space


def _sweep(space: dict, **extra: object) -> SweepConfig:
    return merge_sweep(
        spec("mdl-005"), FamilySweep.model_validate({"num_samples": 4, "space": space, **extra})
    )


def test_domains_become_tune_domains_with_the_declared_bounds() -> None:
    sweep = _sweep(
        {
            "lr": {"type": "loguniform", "low": 0.01, "high": 0.2},
            "frac": {"type": "uniform", "low": 0.5, "high": 1.0},
            "leaves": {"type": "randint", "low": 7, "high": 9},
            "depth": {"type": "quniform", "low": 2, "high": 10, "q": 2},
            "alpha": {"type": "quniform", "low": 0.0, "high": 1.0, "q": 0.25},
            "hidden": {"type": "choice", "values": [[64, 32], [16]]},
            "boosting": {"type": "choice", "values": ["gbdt", "dart"]},
        }
    )
    space = tune_space(sweep.space)
    rng = np.random.default_rng(0)

    def draw(key: str) -> list:
        return list(space[key].sample(size=400, random_state=rng))

    assert all(0.01 <= v < 0.2 for v in draw("lr"))
    assert all(0.5 <= v < 1.0 for v in draw("frac"))
    assert set(draw("leaves")) == {7, 8, 9}  # both bounds included
    assert set(draw("depth")) <= {2, 4, 6, 8, 10} and all(
        isinstance(v, int | np.integer) for v in draw("depth")
    )
    assert set(draw("alpha")) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(draw("hidden")) == {"[64, 32]", "[16]"}  # lists travel as JSON text
    assert set(draw("boosting")) == {"gbdt", "dart"}
    decoded = decode_config(
        {
            "hidden": "[64, 32]",
            "leaves": np.int64(8),
            "depth": 4.0,
            "lr": np.float64(0.05),
            "boosting": "dart",
        },
        sweep.space,
    )
    assert decoded == {"hidden": [64, 32], "leaves": 8, "depth": 4, "lr": 0.05, "boosting": "dart"}
    assert all(type(v) in (list, int, float, str) for v in decoded.values())


def test_boosting_rounds_are_a_fit_argument_and_set_the_full_length() -> None:
    sweep = _sweep({"num_boost_round": {"type": "quniform", "low": 100, "high": 400, "q": 50}})
    params, rounds = split_rounds(decode_config({"num_boost_round": 250.0, "lr": 0.1}, sweep.space))
    assert params == {"lr": 0.1} and rounds == 250
    assert full_length(spec("mdl-005"), sweep) == 400
    assert (
        full_length(spec("mdl-005"), _sweep({"lr": {"type": "uniform", "low": 0.1, "high": 0.2}}))
        == 300
    )
    assert full_length(spec("mdl-002"), load_sweep_config(spec("mdl-002"))) == 1


def test_scheduler_and_search_follow_the_config(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    sweep = load_sweep_config(spec("mdl-005"))
    asha = build_scheduler(sweep, time_attr="rounds", max_t=300)
    assert isinstance(asha, ASHAScheduler)
    assert asha._time_attr == "rounds" and asha._max_t == 300  # rungs in boosting rounds
    assert isinstance(
        build_scheduler(
            _sweep({"a": {"type": "uniform", "low": 0, "high": 1}}, scheduler={"kind": "fifo"}),
            time_attr="rounds",
            max_t=1,
        ),
        FIFOScheduler,
    )
    assert progress_attr("lightgbm", intermediate=True) == "rounds"
    assert progress_attr("torch", intermediate=True) == "epoch"
    assert progress_attr("lightgbm", intermediate=False) == "training_iteration"

    optuna = build_search(sweep.model_copy(update={"max_concurrent": 2}))
    assert isinstance(optuna, ConcurrencyLimiter) and isinstance(optuna.searcher, OptunaSearch)
    assert optuna.max_concurrent == 2
    random_sweep = sweep.model_copy(
        update={"search": sweep.search.model_copy(update={"kind": "random"})}
    )
    random_search = build_search(random_sweep)
    # Tune ignores TuneConfig(max_concurrent_trials) for its random search: the limit is set on it.
    assert isinstance(random_search, BasicVariantGenerator) and random_search.max_concurrent == 1
    # Optuna missing at runtime: random search, with a warning that says how to get it.
    monkeypatch.setitem(sys.modules, "optuna", None)
    with caplog.at_level(logging.WARNING, logger="raycore.tuning"):
        assert isinstance(build_search(sweep), BasicVariantGenerator)
    assert "optuna is not installed" in caplog.text
