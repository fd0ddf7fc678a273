"""Feature views: declared once, computed by one function in training and in serving.

A view names its entity keys, the inputs a request always carries, and the
feature tables whose latest values are looked up per entity. ``transform``
turns those raw values into model features. Training builds raw rows with a
point-in-time join of label rows against the feature tables; serving builds
them from the request plus the online store. Both then call the same
``compute``: there is no second code path to drift apart.

A view may also carry *fitted state* (encoders, vocabularies, scalers): its
``fit`` function learns a JSON-able state from the training rows only (never
the holdout), ``transform`` then receives it as a second argument, and the
state is saved in the model bundle next to the estimator (``feature_state.json``)
so serving computes features with exactly the state training used.

Example:
    >>> from raycore.features import get_feature_view
    >>> view = get_feature_view("store_sales_lags")
    >>> features = view.compute(raw_rows)   # doctest: +SKIP
    >>> fitted = stateful_view.fitted(train_rows)          # doctest: +SKIP
    >>> fitted.compute(serving_rows)                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.features.pit import point_in_time_join
from raycore.features.table import FeatureField, FeatureTable

__all__ = ["AS_OF", "FeatureView", "InputField", "TrainingFrame"]

AS_OF = "as_of"
InputField = FeatureField  # a raw input is declared like a feature table field


@dataclass(frozen=True)
class TrainingFrame:
    """Raw rows ready for ``compute`` plus what was dropped on the way, and why."""

    rows: pd.DataFrame
    dropped_missing: int
    dropped_invalid: int


@dataclass(frozen=True)
class FeatureView:
    """A named, versioned set of model features over entity, request and table inputs.

    ``label_rows`` builds training rows from a source table: entity keys,
    ``as_of`` (when the prediction would have been made), the request inputs and
    the label. When ``label_sources`` names further tables, it is called as
    ``label_rows(source, {name: frame, ...})``. ``check`` returns, per raw row, an empty string or the reason the
    row cannot be scored (for example a horizon outside the trained range).
    ``scale_column`` optionally names a raw input by which the label is divided
    for training and the prediction multiplied at serving. ``fit`` (optional)
    learns the view's state from training rows; ``transform`` is then called as
    ``transform(raw, state)`` and ``state`` holds what was learned.
    """

    name: str
    version: int
    entity: tuple[FeatureField, ...]
    request: tuple[FeatureField, ...]
    tables: tuple[FeatureTable, ...]
    feature_names: tuple[str, ...]
    transform: Callable[..., pd.DataFrame]  # (raw) or, with fit, (raw, state)
    label_rows: Callable[..., pd.DataFrame] | None = None
    label_sources: tuple[str, ...] = ()
    check: Callable[[pd.DataFrame], pd.Series] | None = None
    scale_column: str | None = None
    description: str = ""
    categorical: tuple[str, ...] = field(default_factory=tuple)
    fit: Callable[[pd.DataFrame], dict[str, Any]] | None = None
    state: Mapping[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def stateful(self) -> bool:
        """Whether the view learns state from training rows (``fit``)."""
        return self.fit is not None

    def fitted(self, frame: pd.DataFrame) -> FeatureView:
        """This view with its state learned from ``frame`` (training rows only); itself if stateless."""
        if self.fit is None:
            return self
        if frame.empty:
            raise DataError(
                f"feature view '{self.name}' cannot fit its state on zero rows",
                hint="train on a data set with rows in the training period",
            )
        state = self.fit(self.coerce_inputs(frame))
        return self.with_state(state)

    def with_state(self, state: Mapping[str, Any]) -> FeatureView:
        """This view bound to a state (as saved in a model bundle); checked to be JSON-able."""
        if self.fit is None:
            raise DataError(
                f"feature view '{self.name}' has no fitted state, but a state was given",
                hint="the bundle belongs to another definition of the view; re-train the model",
            )
        if not isinstance(state, Mapping):
            raise DataError(
                f"the fitted state of view '{self.name}' must be a mapping, got {type(state).__name__}",
                hint="return a dict of JSON values from the view's fit function",
            )
        try:
            plain = json.loads(json.dumps(dict(state), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"the fitted state of view '{self.name}' is not JSON: {exc}",
                hint="return only str/int/float/bool/list/dict values (no NaN, no numpy objects) from fit",
            ) from exc
        return dataclasses.replace(self, state=plain)

    def state_digest(self) -> str:
        """A digest of the fitted state ('' for a stateless view)."""
        if self.state is None:
            return ""
        return hashlib.sha256(json.dumps(self.state, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def entity_names(self) -> list[str]:
        return [f.name for f in self.entity]

    @property
    def raw_fields(self) -> list[FeatureField]:
        table_fields = [f for t in self.tables for f in t.fields]
        return [*self.entity, *self.request, *table_fields]

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.raw_fields]

    def coerce_inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw inputs in declared order and dtypes; a missing column raises DataError."""
        missing = [n for n in self.input_names if n not in frame.columns]
        if missing:
            raise DataError(
                f"feature view '{self.name}' is missing raw input(s): {', '.join(missing)}",
                hint=f"provide every input of the view: {', '.join(self.input_names)}",
            )
        out: dict[str, Any] = {}
        for f in self.raw_fields:
            col = frame[f.name]
            if f.dtype == "date":
                out[f.name] = pd.to_datetime(col).astype("datetime64[ns]")
            elif f.dtype == "int":
                out[f.name] = col.astype("int64")
            elif f.dtype == "float":
                out[f.name] = col.astype("float64")
            else:
                out[f.name] = col.astype(str)
        return pd.DataFrame(out, index=frame.index)

    def problems(self, raw: pd.DataFrame) -> pd.Series:
        """Per row: '' if the row can be scored, else the reason (after dtype coercion)."""
        if self.check is None:
            return pd.Series("", index=raw.index)
        return self.check(raw)

    def compute(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model features from raw inputs: the one code path of training and serving."""
        raw = self.coerce_inputs(frame)
        bad = self.problems(raw)
        if (bad != "").any():
            first = bad[bad != ""]
            raise DataError(
                f"{len(first)} row(s) cannot be scored by view '{self.name}': row {first.index[0]}: {first.iloc[0]}",
                hint="fix the inputs named in the message",
            )
        if self.fit is None:
            features = self.transform(raw)
        elif self.state is None:
            raise DataError(
                f"feature view '{self.name}' has fitted state (encoders, vocabularies, scalers) that was not fitted",
                hint="fit it on the training rows (view.fitted(rows)) or load the model bundle that carries it",
            )
        else:
            features = self.transform(raw, self.state)
        absent = [n for n in self.feature_names if n not in features.columns]
        if absent:
            raise DataError(
                f"transform of view '{self.name}' did not produce: {', '.join(absent)}",
                hint="fix the view's transform or its feature_names",
            )
        return features.loc[:, list(self.feature_names)]

    def scale(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The per-row label scale, or None if the view does not normalise the label."""
        if self.scale_column is None:
            return None
        return frame[self.scale_column].to_numpy(dtype="float64")

    def training_frame(
        self, labels: pd.DataFrame, tables: dict[str, pd.DataFrame]
    ) -> TrainingFrame:
        """Point-in-time join of label rows with every feature table, then drop unscorable rows.

        ``tables`` maps table name to its materialised rows. Rows whose table
        values are missing (no value available at ``as_of``, or older than the
        table's TTL) or that ``check`` refuses are dropped and counted.
        """
        rows = labels
        for table in self.tables:
            if table.name not in tables:
                raise DataError(
                    f"feature table '{table.name}' was not materialised",
                    hint="materialise it first",
                )
            rows = point_in_time_join(
                rows,
                tables[table.name],
                entity=list(table.entity),
                as_of=AS_OF,
                event_time=table.event_time,
                ttl=table.ttl,
                available_time="available_at",
                columns=table.field_names,
            )
        table_cols = [f.name for t in self.tables for f in t.fields]
        complete = (
            rows[table_cols].notna().all(axis=1)
            if table_cols
            else pd.Series(True, index=rows.index)
        )
        rows = rows[complete]
        raw = self.coerce_inputs(rows)
        ok = (self.problems(raw) == "").to_numpy()
        kept = rows[ok].reset_index(drop=True)
        return TrainingFrame(kept, int((~complete).sum()), int((~ok).sum()))

    def input_schema(self) -> list[dict[str, Any]]:
        """Raw input schema (stored with the bundle): where each input comes from."""
        out = [{**f.as_schema(), "source": "entity"} for f in self.entity]
        out += [{**f.as_schema(), "source": "request"} for f in self.request]
        for t in self.tables:
            out += [{**f.as_schema(), "source": f"table:{t.store_name}"} for f in t.fields]
        return out

    def digest(self) -> str:
        """A digest of the view's definition, including transform code and tables."""
        h = hashlib.sha256()
        h.update(f"{self.name}:{self.version}:{self.scale_column}".encode())
        h.update(repr([f.as_schema() for f in (*self.entity, *self.request)]).encode())
        h.update(repr(self.feature_names).encode())
        h.update(repr([t.digest() for t in self.tables]).encode())
        for fn in (self.transform, self.check, self.fit):
            if fn is None:
                continue
            try:
                h.update(inspect.getsource(fn).encode())
            except (OSError, TypeError):  # pragma: no cover
                h.update(repr(fn).encode())
        return h.hexdigest()[:16]
