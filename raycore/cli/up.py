"""``foundry up``: the walking skeleton, data → train → register → serve → self-check."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd

from raycore.catalog import load_catalog
from raycore.data.lake import Lake
from raycore.data.sources import ensure_world
from raycore.data.world import WorldConfig
from raycore.errors import ServingError
from raycore.features import get_feature_view
from raycore.settings import FoundrySettings
from raycore.training.pipeline import TrainOutcome, train_model

__all__ = ["UpResult", "run_up", "sample_request"]


@dataclass(frozen=True)
class UpResult:
    outcome: TrainOutcome
    endpoint: str
    sample_inputs: dict[str, Any]
    sample_prediction: float
    sample_version: str
    bad_status: int
    bad_field: str
    unknown_status: int


def sample_request(*, settings: FoundrySettings, view_name: str) -> dict[str, Any]:
    """A request a client would send for entity 1: entity keys and request inputs only
    (features come from the online store). A date input is set one week after the
    feature table's event time (the next week to forecast)."""
    view = get_feature_view(view_name)
    store = settings.online_store()
    try:
        entity_value: dict[str, Any] = {f.name: 1 for f in view.entity}
        key = tuple(entity_value.values())
        looked_up: dict[str, Any] = {}
        for table in view.tables:
            found = store.read(table.store_name, [key])[0]
            if found is None:
                raise ServingError(f"the online store has no {table.store_name} row for {key}")
            looked_up.update(found)
    finally:
        store.close()
    request: dict[str, Any] = dict(entity_value)
    for f in view.request:
        if f.dtype == "date":
            origin = looked_up.get(view.tables[0].event_time) if view.tables else None
            base = pd.Timestamp(origin) if origin else pd.Timestamp.now().normalize()
            request[f.name] = (base + pd.Timedelta(days=7)).date().isoformat()
        else:
            request[f.name] = int(f.ge) if f.ge is not None else 0
    return request


def run_up(*, settings: FoundrySettings, model: str, step: Callable[[str], None]) -> UpResult:
    """Run the skeleton for one catalog model and check the served answers over HTTP."""
    from raycore.serving.runner import start_serving

    spec = load_catalog(extra_dirs=[settings.catalog_dir] if settings.catalog_dir else []).get(model)
    world = WorldConfig()
    step(f"generating the data world (seed {world.seed}, scale {world.scale})")
    ensure_world(Lake(settings.lake), world)
    outcome = train_model(spec, settings=settings, world=world, progress=step)
    step("starting Ray Serve")
    endpoint = start_serving(settings=settings, models=[spec.name])

    step("self-check over HTTP")
    inputs = sample_request(settings=settings, view_name=spec.features[0])
    url = f"{endpoint}/v1/models/{spec.name}/predict"
    good = httpx.post(url, json={"inputs": inputs}, timeout=30.0)
    if good.status_code != 200:
        raise ServingError(f"self-check request failed: HTTP {good.status_code} {good.text}")
    answer = good.json()
    prediction = float(answer["predictions"][0])
    if not math.isfinite(prediction):
        raise ServingError(f"self-check returned a non-finite prediction: {answer}")
    missing = list(inputs)[-1]
    bad = httpx.post(url, json={"inputs": {k: v for k, v in inputs.items() if k != missing}}, timeout=30.0)
    if bad.status_code != 422 or missing not in bad.text:
        raise ServingError(f"self-check: a row without '{missing}' got HTTP {bad.status_code}: {bad.text}")
    entity = next(iter(inputs))
    unknown = httpx.post(url, json={"inputs": {**inputs, entity: 10**9}}, timeout=30.0)
    if unknown.status_code != 422:
        raise ServingError(f"self-check: an unknown {entity} got HTTP {unknown.status_code}: {unknown.text}")
    again = httpx.post(url, json={"inputs": inputs}, timeout=30.0)
    if again.status_code != 200:
        raise ServingError(f"self-check: the replica stopped answering after a bad request: {again.status_code}")
    return UpResult(
        outcome=outcome,
        endpoint=endpoint,
        sample_inputs=inputs,
        sample_prediction=prediction,
        sample_version=str(answer["model_version"]),
        bad_status=bad.status_code,
        bad_field=missing,
        unknown_status=unknown.status_code,
    )
