"""``foundry up``: the walking skeleton, data → train → register → serve → self-check."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from raycore.catalog import load_catalog
from raycore.data.lake import Lake
from raycore.data.sources import ensure_world, read_source
from raycore.data.world import WorldConfig
from raycore.errors import ServingError
from raycore.features import get_feature_view
from raycore.settings import FoundrySettings
from raycore.training.pipeline import TrainOutcome, train_model

__all__ = ["UpResult", "run_up"]


@dataclass(frozen=True)
class UpResult:
    outcome: TrainOutcome
    endpoint: str
    sample_inputs: dict[str, Any]
    sample_prediction: float
    sample_actual: float
    sample_version: str
    bad_status: int
    bad_field: str


def run_up(*, settings: FoundrySettings, model: str, step: Callable[[str], None]) -> UpResult:
    """Run the skeleton for one catalog model and check the served answer over HTTP."""
    from raycore.serving.runner import start_serving

    spec = load_catalog(extra_dirs=[settings.catalog_dir] if settings.catalog_dir else []).get(model)
    world = WorldConfig()
    lake = Lake(settings.lake)
    step(f"generating the data world (seed {world.seed}, scale {world.scale})")
    ensure_world(lake, world)
    outcome = train_model(spec, settings=settings, world=world, progress=step)
    step("starting Ray Serve")
    endpoint = start_serving(settings=settings, models=[spec.name])

    step("self-check over HTTP")
    view = get_feature_view(spec.features[0])
    assert view.training_rows is not None
    rows = view.training_rows(read_source(spec.data, lake=lake, world=world).frame)
    latest = rows.iloc[-1]
    inputs = {name: _jsonable(latest[name]) for name in view.input_names}
    url = f"{endpoint}/v1/models/{spec.name}/predict"
    good = httpx.post(url, json={"inputs": inputs}, timeout=30.0)
    if good.status_code != 200:
        raise ServingError(f"self-check request failed: HTTP {good.status_code} {good.text}")
    answer = good.json()
    prediction = float(answer["predictions"][0])
    if not math.isfinite(prediction):
        raise ServingError(f"self-check returned a non-finite prediction: {answer}")
    missing = view.input_names[-1]
    bad = httpx.post(url, json={"inputs": {k: v for k, v in inputs.items() if k != missing}}, timeout=30.0)
    if bad.status_code != 422 or missing not in bad.text:
        raise ServingError(f"self-check: a row without '{missing}' got HTTP {bad.status_code}: {bad.text}")
    again = httpx.post(url, json={"inputs": inputs}, timeout=30.0)
    if again.status_code != 200:
        raise ServingError(f"self-check: the replica stopped answering after a bad request: {again.status_code}")
    return UpResult(
        outcome=outcome,
        endpoint=endpoint,
        sample_inputs=inputs,
        sample_prediction=prediction,
        sample_actual=float(latest[spec.label]),
        sample_version=str(answer["model_version"]),
        bad_status=bad.status_code,
        bad_field=missing,
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.date().isoformat() if hasattr(value, "date") else value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
