"""A ``SweepConfig`` as Ray Tune objects: search space, scheduler, search algorithm.

    uniform  low..high         tune.uniform(low, high)
    loguniform low..high       tune.loguniform(low, high)
    randint  low..high (incl.) tune.randint(low, high + 1)
    quniform low, high, q      tune.qrandint(low, high, q) when all three are integers, else tune.quniform
    choice   values            tune.choice(values); list values (hidden widths) travel as JSON strings,
                               because Optuna only stores scalars, and ``decode_config`` turns them back

Ray is imported inside the functions; the module itself imports no Ray.

Example:
    >>> space = {"num_leaves": RandIntDomain(type="randint", low=7, high=63)}
    >>> tune_space(space)["num_leaves"]          # doctest: +SKIP
    <ray.tune.search.sample.Integer ...>
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from raycore.errors import SpecError
from raycore.specs import ModelSpec
from raycore.tuning.config import (
    BOOSTERS,
    ROUNDS_KEY,
    AshaSpec,
    ChoiceDomain,
    Domain,
    LogUniformDomain,
    QUniformDomain,
    RandIntDomain,
    SweepConfig,
    UniformDomain,
)

__all__ = [
    "build_scheduler",
    "build_search",
    "decode_config",
    "full_length",
    "progress_attr",
    "split_rounds",
    "tune_space",
]

log = logging.getLogger(__name__)


def _encoded(domain: ChoiceDomain) -> bool:
    return any(isinstance(v, list | dict) for v in domain.values)


def tune_space(space: Mapping[str, Domain]) -> dict[str, Any]:
    """Ray Tune sampling domains for ``space`` (see the module docstring for the mapping)."""
    from ray import tune

    out: dict[str, Any] = {}
    for key, domain in space.items():
        if isinstance(domain, UniformDomain):
            out[key] = tune.uniform(domain.low, domain.high)
        elif isinstance(domain, LogUniformDomain):
            out[key] = tune.loguniform(domain.low, domain.high)
        elif isinstance(domain, RandIntDomain):
            out[key] = tune.randint(domain.low, domain.high + 1)
        elif isinstance(domain, QUniformDomain):
            if domain.integer:
                out[key] = tune.qrandint(int(domain.low), int(domain.high), int(domain.q))
            else:
                out[key] = tune.quniform(domain.low, domain.high, domain.q)
        elif isinstance(domain, ChoiceDomain):
            values = (
                [json.dumps(v) for v in domain.values] if _encoded(domain) else list(domain.values)
            )
            out[key] = tune.choice(values)
        else:  # pragma: no cover - the Domain union is closed
            raise SpecError(f"unsupported domain for '{key}': {domain!r}", field=f"space.{key}")
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def decode_config(config: Mapping[str, Any], space: Mapping[str, Domain]) -> dict[str, Any]:
    """A trial's sampled config as plain Python values for the algorithm.

    JSON-encoded choices are decoded, numpy scalars become Python numbers and
    integer domains give ints (LightGBM and XGBoost reject 7.0 for an int param).

    Example:
        >>> space = {"hidden": ChoiceDomain(type="choice", values=[[64, 32], [32]])}
        >>> decode_config({"hidden": "[64, 32]"}, space)
        {'hidden': [64, 32]}
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        domain = space.get(key)
        value = _plain(value)
        if isinstance(domain, ChoiceDomain) and _encoded(domain) and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(domain, RandIntDomain) or (
            isinstance(domain, QUniformDomain) and domain.integer
        ):
            value = round(float(value))
        elif isinstance(domain, UniformDomain | LogUniformDomain | QUniformDomain):
            value = float(value)
        out[key] = value
    return out


def split_rounds(params: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    """(algorithm params, boosting rounds or None): ``num_boost_round`` is a fit argument, not a param."""
    rest = dict(params)
    rounds = rest.pop(ROUNDS_KEY, None)
    return rest, (None if rounds is None else int(rounds))


def progress_attr(family: str, *, intermediate: bool) -> str:
    """The result key that counts a trial's progress: rounds, epochs, or Tune's own report count."""
    if not intermediate:
        return "training_iteration"
    return "rounds" if family in BOOSTERS else "epoch"


def full_length(spec: ModelSpec, config: SweepConfig) -> int:
    """Iterations of a trial that runs to the end: rounds (boosters), epochs (torch) or 1 (sklearn).

    The largest value the space can sample wins over the spec's own.
    """
    family = spec.algorithm.family
    if family in BOOSTERS:
        key, base = ROUNDS_KEY, spec.algorithm.num_boost_round
    elif family == "torch":
        from raycore.training.ray_torch import MLPParams

        params = {k: v for k, v in spec.algorithm.params.items() if k != "objective"}
        key, base = "epochs", MLPParams(**params).epochs  # type: ignore[arg-type]
    else:
        return 1
    domain = config.space.get(key)
    if isinstance(domain, RandIntDomain | QUniformDomain):
        return int(domain.high)
    if isinstance(domain, ChoiceDomain):
        return int(max(int(v) for v in domain.values))  # type: ignore[call-overload,arg-type]
    return int(base)


def build_scheduler(config: SweepConfig, *, time_attr: str, max_t: int) -> Any:
    """Ray Tune's trial scheduler for ``config.scheduler`` (metric and mode come from TuneConfig)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    scheduler = config.scheduler
    if isinstance(scheduler, AshaSpec):
        top = int(scheduler.max_t or max_t)
        return ASHAScheduler(
            time_attr=time_attr,
            max_t=top,
            grace_period=min(scheduler.grace_period, top),
            reduction_factor=scheduler.reduction_factor,
            # A trial that reaches max_t still sends its final, fully scored result and model.
            stop_last_trials=False,
        )
    return FIFOScheduler()


def build_search(config: SweepConfig) -> Any:
    """Optuna TPE (seeded), or Tune's seeded random search, each limited to ``max_concurrent`` trials.

    Optuna missing at runtime → random search with a warning. The limit is set
    here, not with ``TuneConfig(max_concurrent_trials)``, which Tune ignores for
    its random search (``BasicVariantGenerator``).
    """
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if config.search.kind == "optuna":
        try:
            import optuna  # noqa: F401
            from ray.tune.search.optuna import OptunaSearch
        except ImportError:
            log.warning(
                "optuna is not installed: %s sweeps with random search instead (pip install 'optuna>=4')",
                config.model_id,
            )
        else:
            return ConcurrencyLimiter(
                OptunaSearch(seed=config.search.seed), max_concurrent=config.max_concurrent
            )
    return BasicVariantGenerator(
        random_state=config.search.seed, max_concurrent=config.max_concurrent
    )
