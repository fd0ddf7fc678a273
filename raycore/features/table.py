"""Feature tables: entity features materialised from a gold/world table.

A feature table turns a source table into rows of ``entity keys, event time,
available_at, fields``: the value of each field for an entity as of an event
time, and the moment that value could first have been known (the latest
availability among every source row it was computed from). Training reads it
through a point-in-time join; serving reads the latest row per entity from the
online store. Both read the same materialised rows.

Example:
    >>> rows = STORE_WEEKLY_STATS.materialize(sales)          # doctest: +SKIP
    >>> rows.columns[:3].tolist()                             # doctest: +SKIP
    ['store_id', 'origin_week', 'available_at']
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from raycore.errors import DataError

__all__ = ["AVAILABLE_AT", "FeatureField", "FeatureTable", "FieldDtype"]

AVAILABLE_AT = "available_at"
FieldDtype = Literal["int", "float", "date", "str"]


@dataclass(frozen=True)
class FeatureField:
    """One typed value of a feature table or one raw input of a request."""

    name: str
    dtype: FieldDtype
    description: str
    ge: float | None = None
    le: float | None = None

    def as_schema(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class FeatureTable:
    """Entity features computed from one source table, with availability times."""

    name: str
    version: int
    entity: tuple[str, ...]
    event_time: str
    source: str
    fields: tuple[FeatureField, ...]
    compute: Callable[[pd.DataFrame], pd.DataFrame]
    ttl: pd.Timedelta | None = None
    description: str = ""

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def store_name(self) -> str:
        """Name in the online store: changes with the version so versions never mix."""
        return f"{self.name}_v{self.version}"

    def materialize(self, source: pd.DataFrame) -> pd.DataFrame:
        """All feature rows of the source: entity, event time, available_at, fields."""
        out = self.compute(source)
        expected = [*self.entity, self.event_time, AVAILABLE_AT, *self.field_names]
        missing = [c for c in expected if c not in out.columns]
        if missing:
            raise DataError(
                f"feature table '{self.name}' did not produce column(s): {', '.join(missing)}",
                hint="fix the table's compute function or its declared fields",
            )
        return out.loc[:, list(dict.fromkeys(expected))].reset_index(drop=True)

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.name}:{self.version}:{self.entity}:{self.event_time}:{self.source}:{self.ttl}".encode())
        h.update(repr([f.as_schema() for f in self.fields]).encode())
        try:
            h.update(inspect.getsource(self.compute).encode())
        except (OSError, TypeError):  # pragma: no cover
            h.update(repr(self.compute).encode())
        return h.hexdigest()[:16]
