"""Sweep declarations: ``tune_configs/defaults.yaml`` per family, ``tune_configs/models/<id>.yaml`` per model.

    defaults.yaml            families.<lightgbm|xgboost|torch|sklearn>: a complete sweep
    models/mdl-005.yaml      model: mdl-005, then any sweep field to override, space
                             entries to add or replace, and ``drop`` (default dimensions to remove)

Both files are validated on load (pydantic, ``extra="forbid"``); a bad file
raises ``SpecError`` naming the file, the field, the line and the fix. The
metric and its mode are never declared here: they come from the model's
catalog gate (``gate.op`` ``<=`` → ``min``, ``>=`` → ``max``). This module
imports no Ray.

Example:
    >>> from raycore.catalog import load_catalog
    >>> sweep = load_sweep_config(load_catalog().get("mdl-005"))       # doctest: +SKIP
    >>> sweep.metric, sweep.mode, sweep.scheduler.kind                  # doctest: +SKIP
    ('roc_auc', 'max', 'asha')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

import raycore
from raycore.errors import SpecError
from raycore.specs import FrozenSpec, ModelSpec, load_spec, parse_spec
from raycore.specs.model import ParamValue

__all__ = [
    "BOOSTERS",
    "ROUNDS_KEY",
    "AshaSpec",
    "ChoiceDomain",
    "Domain",
    "FamilySweep",
    "FifoSpec",
    "LogUniformDomain",
    "ModelSweep",
    "PbtSpec",
    "QUniformDomain",
    "RandIntDomain",
    "SchedulerSpec",
    "SearchSpec",
    "SweepConfig",
    "SweepDefaults",
    "UniformDomain",
    "default_config_dir",
    "load_sweep_config",
    "merge_sweep",
]

Family = Literal["lightgbm", "xgboost", "torch", "sklearn"]
BOOSTERS = frozenset({"lightgbm", "xgboost"})
# The one search-space key that is not an algorithm param: the boosting rounds of the fit.
ROUNDS_KEY = "num_boost_round"


# --------------------------------------------------------------------------- search space


class _Range(FrozenSpec):
    low: float = Field(description="Lower bound (inclusive).")
    high: float = Field(description="Upper bound.")

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(
                f"low and high must be finite numbers, got low={self.low}, high={self.high}"
            )
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be < high ({self.high:g})")
        return self


class UniformDomain(_Range):
    """A float drawn uniformly from [low, high)."""

    type: Literal["uniform"] = Field(description="Uniform float.")


class LogUniformDomain(_Range):
    """A float drawn uniformly on the log scale from [low, high); low must be > 0."""

    type: Literal["loguniform"] = Field(
        description="Log-uniform float (learning rates, penalties)."
    )

    @model_validator(mode="after")
    def _positive(self) -> LogUniformDomain:
        if self.low <= 0:
            raise ValueError(f"a loguniform range needs low > 0, got low={self.low:g}")
        return self


class QUniformDomain(_Range):
    """A value drawn uniformly from [low, high], rounded to a multiple of ``q``.

    With integer ``low``, ``high`` and ``q`` the value is an int (e.g. max_depth).
    """

    type: Literal["quniform"] = Field(description="Uniform, rounded to multiples of q.")
    q: float = Field(gt=0, description="Step the value is rounded to.")

    @model_validator(mode="after")
    def _step_fits(self) -> QUniformDomain:
        if self.q > self.high - self.low:
            raise ValueError(
                f"q ({self.q:g}) must not exceed high - low ({self.high - self.low:g})"
            )
        return self

    @property
    def integer(self) -> bool:
        return all(float(v).is_integer() for v in (self.low, self.high, self.q))


class RandIntDomain(FrozenSpec):
    """An integer drawn uniformly from low..high, both INCLUDED (unlike ``tune.randint``)."""

    type: Literal["randint"] = Field(description="Uniform integer, both bounds included.")
    low: int = Field(description="Smallest value.")
    high: int = Field(description="Largest value (included).")

    @model_validator(mode="after")
    def _ordered(self) -> RandIntDomain:
        if self.low >= self.high:
            raise ValueError(
                f"low ({self.low}) must be < high ({self.high}); use choice for a fixed value"
            )
        return self


class ChoiceDomain(FrozenSpec):
    """One of ``values`` (numbers, strings, booleans, or lists such as hidden layer widths)."""

    type: Literal["choice"] = Field(description="One of a list of values.")
    values: list[ParamValue] = Field(min_length=1, description="The candidate values.")

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        seen = [repr(v) for v in values]
        duplicates = sorted({v for v in seen if seen.count(v) > 1})
        if duplicates:
            raise ValueError(f"choice values must be distinct, repeated: {', '.join(duplicates)}")
        return values


Domain = Annotated[
    UniformDomain | LogUniformDomain | QUniformDomain | RandIntDomain | ChoiceDomain,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------- schedulers, search


class AshaSpec(FrozenSpec):
    """Asynchronous successive halving: stop trials whose validation metric lags at each rung."""

    kind: Literal["asha"] = Field(description="ASHA early stopping (the default).")
    grace_period: int = Field(
        default=10,
        ge=1,
        description="Iterations (boosting rounds, epochs) every trial runs before it can be stopped.",
    )
    reduction_factor: float = Field(
        default=3.0, gt=1, description="Keep the top 1/reduction_factor at each rung."
    )
    max_t: int | None = Field(
        default=None,
        ge=1,
        description="Iterations of a full trial; default: the model's num_boost_round (torch: epochs).",
    )

    @model_validator(mode="after")
    def _rungs(self) -> AshaSpec:
        if self.max_t is not None and self.max_t < self.grace_period:
            raise ValueError(f"max_t ({self.max_t}) must be >= grace_period ({self.grace_period})")
        return self


class PbtSpec(FrozenSpec):
    """Population based training, as a declaration would write it; always refused by ``sweep_conflicts``.

    Parsed (not rejected as an unknown kind) so that a PBT declaration gets the
    reason it cannot run and the fix, at load, before any work.
    """

    kind: Literal["pbt"] = Field(description="Population based training.")
    perturbation_interval: int = Field(
        default=2, ge=1, description="Epochs between exploit/explore steps."
    )
    quantile_fraction: float = Field(
        default=0.25, gt=0, le=0.5, description="Share of trials that copy / are copied."
    )
    resample_probability: float = Field(
        default=0.25, ge=0, le=1, description="Chance to resample a value instead of perturbing it."
    )
    mutate: list[str] = Field(
        default_factory=list,
        description="Space keys PBT may change during training; empty = every numeric key except hidden.",
    )


class FifoSpec(FrozenSpec):
    """No early stopping: every trial trains to the end."""

    kind: Literal["fifo"] = Field(description="Run every trial to completion.")


SchedulerSpec = Annotated[AshaSpec | PbtSpec | FifoSpec, Field(discriminator="kind")]


class SearchSpec(FrozenSpec):
    """How trial configurations are chosen."""

    kind: Literal["optuna", "random"] = Field(
        default="optuna",
        description="Optuna TPE (falls back to random when optuna is missing) or random.",
    )
    seed: int = Field(default=0, description="Seed of the search (same seed, same random configs).")


# --------------------------------------------------------------------------- files


class FamilySweep(FrozenSpec):
    """A complete sweep declaration for one algorithm family (``defaults.yaml``)."""

    num_samples: int = Field(ge=1, le=10_000, description="Trials in the sweep.")
    max_concurrent: int = Field(default=1, ge=1, le=1024, description="Trials running at once.")
    time_budget_s: float | None = Field(
        default=None,
        gt=0,
        description="Stop the whole sweep after this many seconds (null: no budget).",
    )
    report_every: int = Field(
        default=10,
        ge=1,
        description="Boosting rounds (torch: epochs) between intermediate validation reports.",
    )
    scheduler: SchedulerSpec = Field(
        default_factory=lambda: AshaSpec(kind="asha"), description="Early stopping."
    )
    search: SearchSpec = Field(default_factory=SearchSpec, description="Search algorithm.")
    space: dict[str, Domain] = Field(
        default_factory=dict, description="Search space: algorithm param → domain."
    )


class SweepDefaults(FrozenSpec):
    """``tune_configs/defaults.yaml``: one sweep per algorithm family."""

    families: dict[Family, FamilySweep] = Field(
        description="Sweep per family: lightgbm, xgboost, torch, sklearn."
    )


class ModelSweep(FrozenSpec):
    """``tune_configs/models/<id>.yaml``: what one model changes on top of its family's defaults."""

    model: str = Field(
        pattern=r"^mdl-\d{3}$", description="Catalog id this file is for (= the file name)."
    )
    num_samples: int | None = Field(
        default=None, ge=1, le=10_000, description="Trials in the sweep."
    )
    max_concurrent: int | None = Field(
        default=None, ge=1, le=1024, description="Trials running at once."
    )
    time_budget_s: float | None = Field(
        default=None, gt=0, description="Sweep time budget (null: none)."
    )
    report_every: int | None = Field(
        default=None, ge=1, description="Iterations between validation reports."
    )
    scheduler: SchedulerSpec | None = Field(
        default=None, description="Replaces the family's scheduler."
    )
    search: SearchSpec | None = Field(
        default=None, description="Replaces the family's search algorithm."
    )
    space: dict[str, Domain] = Field(
        default_factory=dict, description="Dimensions added or replaced."
    )
    drop: list[str] = Field(default_factory=list, description="Default dimensions to remove.")


class SweepConfig(FrozenSpec):
    """One model's resolved sweep: defaults + overrides + the catalog gate's metric and mode."""

    model_id: str = Field(pattern=r"^mdl-\d{3}$", description="Catalog id.")
    family: Family = Field(description="Algorithm family of the model.")
    metric: str = Field(description="The catalog gate's metric, scored on the validation split.")
    mode: Literal["min", "max"] = Field(
        description="min for error metrics (gate <=), max for scores (gate >=)."
    )
    num_samples: int = Field(ge=1, le=10_000, description="Trials in the sweep.")
    max_concurrent: int = Field(ge=1, le=1024, description="Trials running at once.")
    time_budget_s: float | None = Field(default=None, gt=0, description="Sweep time budget.")
    report_every: int = Field(
        ge=1, description="Iterations between intermediate validation reports."
    )
    scheduler: SchedulerSpec = Field(description="Early stopping.")
    search: SearchSpec = Field(description="Search algorithm.")
    space: dict[str, Domain] = Field(min_length=1, description="Search space.")
    sources: list[str] = Field(
        default_factory=list, description="Files this config was merged from."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        problems = sweep_conflicts(self.family, self.space, self.scheduler, self.search)
        if problems:
            field, message, _hint = problems[0]
            raise ValueError(f"{field}: {message}")
        return self

    @property
    def early_stopping(self) -> bool:
        return self.scheduler.kind != "fifo"


def sweep_conflicts(
    family: str, space: dict[str, Any], scheduler: Any, search: SearchSpec
) -> list[tuple[str, str, str]]:
    """What cannot work together in a sweep, as (field, problem, fix); empty when consistent."""
    problems: list[tuple[str, str, str]] = []
    rounds = space.get(ROUNDS_KEY)
    if rounds is not None and family not in BOOSTERS:
        problems.append(
            (
                f"space.{ROUNDS_KEY}",
                f"only lightgbm/xgboost have boosting rounds, not {family}",
                f"remove '{ROUNDS_KEY}'",
            )
        )
    elif rounds is not None and not (
        isinstance(rounds, RandIntDomain | ChoiceDomain)
        or (isinstance(rounds, QUniformDomain) and rounds.integer)
    ):
        problems.append(
            (
                f"space.{ROUNDS_KEY}",
                "the boosting rounds need an integer domain",
                "use randint, choice, or quniform with integer low/high/q",
            )
        )
    if family == "torch":
        from raycore.training.ray_torch import MLPParams

        allowed = sorted(set(MLPParams.model_fields) - {"seed"})
        unknown = sorted(set(space) - set(allowed))
        if unknown:
            problems.append(
                (
                    "space",
                    f"unknown torch mlp parameter(s): {', '.join(unknown)}",
                    f"use: {', '.join(allowed)}",
                )
            )
    if isinstance(scheduler, PbtSpec):
        problems.append(
            (
                "scheduler.kind",
                "pbt cannot run in foundry tune: PBT's exploit step restarts a trial from another "
                "trial's checkpoint, but a trial's model lives in its Ray Train run, whose checkpoints "
                "Ray Tune never receives (TuneReportCallback forwards metrics only), so every exploit "
                f"would silently restart training from scratch ({family})",
                "use scheduler: {kind: asha} (early stopping every report_every rounds or epochs) "
                "or {kind: fifo}",
            )
        )
    return problems


# --------------------------------------------------------------------------- loading


def default_config_dir() -> Path:
    """``tune_configs/`` next to the ``raycore`` package (the repository checkout)."""
    return Path(raycore.__file__).resolve().parent.parent / "tune_configs"


def gate_mode(spec: ModelSpec) -> Literal["min", "max"]:
    """``min`` for a gate with ``<=`` (errors), ``max`` for ``>=`` (scores)."""
    return "min" if spec.gate.op == "<=" else "max"


def merge_sweep(
    spec: ModelSpec,
    family: FamilySweep,
    override: ModelSweep | None = None,
    *,
    sources: list[str] | None = None,
    path: str | Path = "<sweep>",
) -> SweepConfig:
    """The family's sweep with ``override`` on top, for ``spec``; a conflict raises ``SpecError`` at ``path``.

    Fields set in the override (even to null) replace the family's; ``space``
    entries are added or replaced one by one and ``drop`` removes default ones.

    Example:
        >>> fam = FamilySweep(num_samples=8, space={"lr": {"type": "loguniform", "low": 1e-3, "high": 0.1}})
        >>> merge_sweep(spec, fam, ModelSweep(model=spec.id, num_samples=4)).num_samples   # doctest: +SKIP
        4
    """
    data: dict[str, Any] = family.model_dump()
    space = dict(family.space)
    if override is not None:
        if override.model != spec.id:
            raise SpecError(
                f"this override is for {override.model}, not {spec.id}",
                path=str(path),
                field="model",
                hint=f"set 'model: {spec.id}' or name the file after the model it tunes",
            )
        missing = [k for k in override.drop if k not in space]
        if missing:
            raise SpecError(
                f"drop names dimension(s) the defaults do not have: {', '.join(missing)}",
                path=str(path),
                field="drop",
                hint=f"default dimensions of {spec.algorithm.family}: {', '.join(sorted(space)) or '(none)'}",
            )
        for key in override.model_fields_set - {"model", "space", "drop"}:
            value = getattr(override, key)
            data[key] = value.model_dump() if isinstance(value, FrozenSpec) else value
        space = {k: v for k, v in space.items() if k not in override.drop}
        space.update(override.space)
    data["space"] = {k: v.model_dump() for k, v in space.items()}
    data.update(
        model_id=spec.id,
        family=spec.algorithm.family,
        metric=spec.gate.metric,
        mode=gate_mode(spec),
        sources=list(sources or []),
    )
    problems = sweep_conflicts(
        spec.algorithm.family, space, _scheduler(data["scheduler"]), SearchSpec(**data["search"])
    )
    if problems:
        field, message, hint = problems[0]
        raise SpecError(f"{message} ({spec.id})", path=str(path), field=field, hint=hint)
    if not data["space"]:
        raise SpecError(
            f"the sweep of {spec.id} has an empty search space",
            path=str(path),
            field="space",
            hint=f"declare 'space:' in tune_configs/models/{spec.id}.yaml "
            f"(or under families.{spec.algorithm.family} in defaults.yaml)",
        )
    return parse_spec(data, SweepConfig, path=path)


def _scheduler(data: dict[str, Any]) -> Any:
    kinds: dict[str, type[FrozenSpec]] = {"asha": AshaSpec, "pbt": PbtSpec, "fifo": FifoSpec}
    return kinds[data["kind"]].model_validate(data)


def load_sweep_config(
    spec: ModelSpec,
    *,
    config_dir: str | Path | None = None,
    override_file: str | Path | None = None,
    num_samples: int | None = None,
) -> SweepConfig:
    """Read ``defaults.yaml`` and the model's override (``override_file`` or ``models/<id>.yaml``) for ``spec``.

    ``num_samples`` (the CLI's ``--num-samples``) wins over both files.
    """
    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    defaults_path = folder / "defaults.yaml"
    if not defaults_path.is_file():
        raise SpecError(
            "sweep defaults not found",
            path=str(defaults_path),
            hint="run from the repository checkout (tune_configs/defaults.yaml) or pass config_dir",
        )
    defaults = load_spec(defaults_path, SweepDefaults)
    family = defaults.families.get(spec.algorithm.family)
    if family is None:
        raise SpecError(
            f"no sweep declared for family '{spec.algorithm.family}' ({spec.id})",
            path=str(defaults_path),
            field=f"families.{spec.algorithm.family}",
            hint="add a section for that family under 'families:'",
        )
    path = (
        Path(override_file) if override_file is not None else folder / "models" / f"{spec.id}.yaml"
    )
    override = None
    sources = [str(defaults_path)]
    if override_file is not None or path.is_file():
        override = load_spec(path, ModelSweep)
        sources.append(str(path))
    config = merge_sweep(
        spec, family, override, sources=sources, path=path if override else defaults_path
    )
    if num_samples is not None:
        if num_samples < 1:
            raise SpecError(
                f"num_samples must be >= 1, got {num_samples}",
                field="num_samples",
                hint="e.g. --num-samples 8",
            )
        config = config.model_copy(update={"num_samples": int(num_samples)})
    return config
