"""The data worlds of the drift demonstration: one lake per world, only the tables a model reads.

The demonstration needs the same simulated business several times: as it was
(no drift), with its inputs moved from a date (covariate drift), and with its
outcomes moved from a date (concept drift). Rows before the drift date are
identical in all of them (``raycore.data.world.drift``), so each world is a
faithful "what happened next" of the others. Each world is written to its own
lake root under the same ``world/<seed>-<scale>`` prefix the foundry reads,
and only the datasets the model needs go through bronze -> silver: the
training path then finds them in place (``raycore.data.sources``).

It also answers which model features a raw column feeds (``derived_features``),
by running the feature view itself on a copy of the rows with that column
changed: the truth of a drift (raw columns) becomes the truth in model features
that a monitor can be held against.

Example:
    >>> lake = build_world_lake(root=Path("/tmp/w"), config=WorldConfig(),
    ...                         drift=None, datasets=("credit_applications",))    # doctest: +SKIP
    >>> lake.truth("drift_truth")                                                 # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raycore.data.lake import Lake
from raycore.data.sources import world_prefix
from raycore.data.world import DriftSpec, WorldConfig, generate_world
from raycore.errors import DataError

__all__ = ["WorldLake", "build_world_lake", "derived_features", "true_drifted_features"]


@dataclass(frozen=True)
class WorldLake:
    """A lake holding one data world and the silver layer of some of its datasets."""

    root: Path
    config: WorldConfig
    drift: DriftSpec | None
    datasets: tuple[str, ...]
    seconds: float

    @property
    def lake(self) -> Lake:
        return Lake(str(self.root))

    def silver(self, dataset: str) -> pd.DataFrame:
        """The validated (promoted silver) rows of ``dataset``."""
        from raycore.data.layers import read

        if dataset not in self.datasets:
            raise DataError(
                f"{dataset} was not built in the world lake at {self.root}",
                hint=f"build it with datasets=(..., '{dataset}'); built: {', '.join(self.datasets)}",
            )
        return read(dataset, lake=self.lake, layer="silver", promoted_only=True)

    def truth(self, table: str) -> pd.DataFrame:
        """A truth table of the world (what only the simulator knows); empty when it has none."""
        name = f"{world_prefix(self.config)}/truth/{table}"
        return self.lake.read(name) if self.lake.exists(name) else pd.DataFrame()


def build_world_lake(
    *,
    root: Path,
    config: WorldConfig,
    drift: DriftSpec | None,
    datasets: tuple[str, ...],
) -> WorldLake:
    """Generate the world (with ``drift``) into the lake at ``root`` and run bronze -> silver for ``datasets``.

    A lake that already holds a world is refused: a world's tables must come
    from one generation (the manifest is written last and names them all).
    """
    from raycore.data.layers import dataset_specs, run_pipeline

    specs = dataset_specs()
    unknown = [d for d in datasets if d not in specs]
    if unknown:
        raise DataError(
            f"unknown dataset(s) {unknown} for the world lake",
            hint=f"use names of raycore/data/datasets: {', '.join(sorted(specs))}",
        )
    started = time.perf_counter()
    lake = Lake(str(root))
    prefix = world_prefix(config)
    if lake.exists(f"{prefix}/manifest"):
        raise DataError(
            f"the lake at {root} already holds data world {prefix}",
            hint="build each world into a fresh folder",
        )
    world = generate_world(config, drift=drift)
    digests: dict[str, str] = {}
    for name, frame in world.tables.items():
        digests[name] = lake.write(f"{prefix}/tables/{name}", frame)
    for name, frame in world.truth.items():
        digests[name] = lake.write(f"{prefix}/truth/{name}", frame)
    lake.write(
        f"{prefix}/manifest",
        pd.DataFrame({"table": list(digests), "digest": list(digests.values())}),
    )
    result = run_pipeline(
        [specs[d] for d in datasets],
        lake=lake,
        world=config,
        gold=[],
        engine="pandas",
        raise_on_gate=False,
    )
    error = result.refined.report.gate_error()
    if error is not None:
        raise error
    return WorldLake(
        root=Path(root),
        config=config,
        drift=drift,
        datasets=tuple(datasets),
        seconds=time.perf_counter() - started,
    )


def _changed(raw: pd.DataFrame, column: str) -> pd.DataFrame:
    """``raw`` with ``column`` moved: numbers scaled and shifted, categories rotated."""
    out = raw.copy()
    values = out[column]
    if pd.api.types.is_numeric_dtype(values):
        out[column] = values.astype("float64") * 1.37 + 0.5
        if pd.api.types.is_integer_dtype(values):
            out[column] = np.round(out[column]).astype(values.dtype)
    else:
        seen = list(pd.unique(values.dropna()))
        if len(seen) < 2:
            return out
        rotate = {v: seen[(i + 1) % len(seen)] for i, v in enumerate(seen)}
        out[column] = values.map(rotate)
    return out


def derived_features(view: Any, raw: pd.DataFrame, column: str) -> list[str]:
    """The model features of ``view`` whose values change when raw ``column`` changes.

    Computed, not declared: the view's own ``compute`` on ``raw`` and on a copy
    with ``column`` moved; every feature that differs on any row derives from it.

    Example:
        >>> derived_features(get_feature_view("credit_application_risk"), raw, "annual_income")  # doctest: +SKIP
        ['log_income', 'log_loan_to_income']
    """
    if column not in raw.columns:
        raise DataError(
            f"column {column!r} is not among the raw rows of view {view.name}",
            hint=f"raw columns: {', '.join(map(str, raw.columns))}",
        )
    base = view.compute(view.coerce_inputs(raw))
    moved = view.compute(view.coerce_inputs(_changed(raw, column)))
    out = []
    for name in base.columns:
        a, b = base[name].to_numpy(dtype="float64"), moved[name].to_numpy(dtype="float64")
        if not np.allclose(a, b, equal_nan=True):
            out.append(str(name))
    return out


def true_drifted_features(
    view: Any, raw: pd.DataFrame, drift_truth: pd.DataFrame, *, table: str
) -> list[str]:
    """Model features fed by the raw columns of ``table`` that ``drift_truth`` says were changed."""
    if drift_truth.empty:
        return []
    rows = drift_truth[(drift_truth["table_name"] == table) & (drift_truth["rows_affected"] > 0)]
    found: set[str] = set()
    for column in rows["column_name"].astype(str).unique():
        if column in raw.columns:
            found.update(derived_features(view, raw, column))
    return sorted(found)
