"""Dataset specs: what a table must look like before it may enter silver and gold.

A :class:`DatasetSpec` declares one table once: where its rows come from, its
columns (type, nullability, range, allowed values, uniqueness, pattern), its
primary key, event and availability time, foreign keys, partitioning and the
quality gate that a batch must pass to be promoted to gold. A :class:`GoldSpec`
declares one gold (entity x time) table as a base silver table plus joins.

Example:
    >>> spec = DatasetSpec(
    ...     name="regions",
    ...     source={"table": "regions"},
    ...     columns=[{"name": "region_id", "dtype": "int", "min": 1}, {"name": "region", "dtype": "str"}],
    ...     primary_key=["region_id"],
    ... )
    >>> spec.column("region_id").dtype
    'int'
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from raycore.specs.base import FrozenSpec
from raycore.specs.model import DataSourceSpec

__all__ = [
    "ColumnSpec",
    "DType",
    "DatasetSpec",
    "ForeignKeySpec",
    "GoldJoinSpec",
    "GoldSpec",
    "QualityGateSpec",
]

DType = Literal["int", "float", "str", "bool", "datetime", "date"]
Bound = int | float | datetime | date | str
AllowedValue = bool | int | float | str

_NAME = r"^[a-z_][a-z0-9_]{0,62}$"
_NUMERIC = ("int", "float")
_TEMPORAL = ("datetime", "date")


def _as_list(value: Any) -> Any:
    """Accept a single column name where a list of names is expected."""
    return [value] if isinstance(value, str) else value


class ColumnSpec(FrozenSpec):
    """One declared column and the rules every silver value of it obeys."""

    name: str = Field(pattern=_NAME, description="Column name (lower snake case).")
    dtype: DType = Field(description="Logical type: int, float, str, bool, datetime or date.")
    nullable: bool = Field(default=False, description="Whether nulls are allowed.")
    required: bool = Field(
        default=True,
        description="Whether the column must be present in every input batch; "
        "an optional column that is missing is filled with nulls.",
    )
    min: Bound | None = Field(default=None, description="Smallest allowed value (numbers, dates).")
    max: Bound | None = Field(default=None, description="Largest allowed value (numbers, dates).")
    allowed: list[AllowedValue] | None = Field(
        default=None, min_length=1, description="The only values allowed (categories)."
    )
    unique: bool = Field(default=False, description="No two rows may share a value.")
    regex: str | None = Field(default=None, description="str values must fully match this pattern.")
    description: str = Field(default="", description="What the column means.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex {value!r} does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if not self.required and not self.nullable:
            raise ValueError(
                f"column '{self.name}' is optional (required: false) so it must be nullable "
                "(a missing optional column is filled with nulls); set nullable: true"
            )
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                continue
            if self.dtype in _NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"column '{self.name}' ({self.dtype}): {bound} must be a number, got {value!r}")
            if self.dtype in _TEMPORAL:
                _to_datetime(value, f"column '{self.name}' ({self.dtype}): {bound}")
            if self.dtype not in _NUMERIC + _TEMPORAL:
                raise ValueError(
                    f"column '{self.name}' ({self.dtype}): {bound} applies only to numbers and dates, got {value!r}"
                )
        if self.min is not None and self.max is not None and self.bounds()[0] > self.bounds()[1]:  # type: ignore[operator]
            raise ValueError(f"column '{self.name}': min ({self.min!r}) must be <= max ({self.max!r})")
        if self.regex is not None and self.dtype != "str":
            raise ValueError(f"column '{self.name}' ({self.dtype}): regex applies only to str columns")
        if self.allowed is not None:
            for value in self.allowed:
                if not _fits(value, self.dtype):
                    raise ValueError(
                        f"column '{self.name}' ({self.dtype}): allowed value {value!r} is not a {self.dtype}"
                    )
        return self

    def bounds(self) -> tuple[Any, Any]:
        """(min, max) in the column's value space: numbers, or datetimes for dates."""
        if self.dtype in _TEMPORAL:
            lo = _to_datetime(self.min, "min") if self.min is not None else None
            hi = _to_datetime(self.max, "max") if self.max is not None else None
            return lo, hi
        return self.min, self.max


class ForeignKeySpec(FrozenSpec):
    """A column whose values must exist in another dataset's silver column."""

    column: str = Field(description="Column of this dataset.")
    references: str = Field(
        pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
        description="'<dataset>.<column>' that the values must exist in.",
    )

    @property
    def dataset(self) -> str:
        return self.references.split(".", 1)[0]

    @property
    def ref_column(self) -> str:
        return self.references.split(".", 1)[1]


class QualityGateSpec(FrozenSpec):
    """The share of rows that must pass every rule for a batch to be promoted to gold."""

    min_pass_rate: float = Field(default=0.95, ge=0.0, le=1.0, description="Between 0 and 1.")


class DatasetSpec(FrozenSpec):
    """One table: source, declared schema, keys, time columns, partitioning, quality gate."""

    name: str = Field(pattern=_NAME, description="Dataset name; also its folder in every layer.")
    description: str = Field(default="", description="What one row is.")
    source: DataSourceSpec = Field(description="A data-world table, or a parquet/CSV file or folder.")
    columns: list[ColumnSpec] = Field(min_length=1, description="Declared columns, in order.")
    primary_key: list[str] = Field(default_factory=list, description="Columns that identify a row.")
    event_time: str | None = Field(default=None, description="When the event happened.")
    available_time: str | None = Field(
        default=None, description="When the row became known (for point-in-time joins)."
    )
    foreign_keys: list[ForeignKeySpec] = Field(default_factory=list, description="Referenced datasets.")
    partition_by: list[str] = Field(default_factory=list, description="Silver partition columns.")
    partition_granularity: Literal["value", "day", "month", "year"] = Field(
        default="value", description="How datetime/date partition columns are bucketed."
    )
    quality_gate: QualityGateSpec = Field(default_factory=QualityGateSpec, description="Promotion gate.")

    _as_lists = field_validator("primary_key", "partition_by", mode="before")(_as_list)

    @model_validator(mode="after")
    def _columns_exist(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"dataset '{self.name}': column '{name}' is declared twice")
            if name.startswith("_"):
                raise ValueError(
                    f"dataset '{self.name}': column '{name}' starts with '_', reserved for ingest metadata"
                )
            seen.add(name)
        declared = ", ".join(names)

        def check(role: str, column: str) -> ColumnSpec:
            if column not in seen:
                raise ValueError(
                    f"dataset '{self.name}': {role} column '{column}' is not declared; declared columns: {declared}"
                )
            return self.column(column)

        for column in self.primary_key:
            if check("primary_key", column).nullable:
                raise ValueError(f"dataset '{self.name}': primary_key column '{column}' must not be nullable")
        for role in ("event_time", "available_time"):
            column = getattr(self, role)
            if column is not None and check(role, column).dtype not in _TEMPORAL:
                raise ValueError(
                    f"dataset '{self.name}': {role} column '{column}' must be datetime or date, "
                    f"got {self.column(column).dtype}"
                )
        for fk in self.foreign_keys:
            check("foreign key", fk.column)
        for column in self.partition_by:
            if check("partition_by", column).nullable:
                raise ValueError(f"dataset '{self.name}': partition_by column '{column}' must not be nullable")
        return self

    def column(self, name: str) -> ColumnSpec:
        """The declared column ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"dataset '{self.name}' has no column '{name}'")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def depends_on(self) -> list[str]:
        """Datasets this one references through foreign keys (refine those first)."""
        return sorted({fk.dataset for fk in self.foreign_keys if fk.dataset != self.name})


class GoldJoinSpec(FrozenSpec):
    """Bring columns of another silver dataset into a gold table by key."""

    dataset: str = Field(pattern=_NAME, description="Silver dataset to join.")
    # Not 'on': YAML 1.1 reads a bare `on:` key as the boolean true.
    keys: list[str] = Field(min_length=1, description="Key columns, same name on both sides.")
    columns: list[str] = Field(min_length=1, description="Columns of the joined dataset to add.")
    how: Literal["left", "inner"] = Field(default="left", description="Join type.")

    _as_lists = field_validator("keys", "columns", mode="before")(_as_list)


class GoldSpec(FrozenSpec):
    """A gold entity x time table: a base silver dataset enriched by joins."""

    name: str = Field(pattern=_NAME, description="Gold table name.")
    description: str = Field(default="", description="What one row is.")
    base: str = Field(pattern=_NAME, description="Silver dataset with one row per entity and time.")
    entity: list[str] = Field(min_length=1, description="Entity key columns.")
    time: str = Field(description="Time column of the entity x time grain.")
    joins: list[GoldJoinSpec] = Field(default_factory=list, description="Joins, applied in order.")
    columns: list[str] | None = Field(default=None, description="Output columns; default all.")

    _as_lists = field_validator("entity", mode="before")(_as_list)

    @model_validator(mode="after")
    def _keys_kept(self) -> GoldSpec:
        if self.columns is not None:
            missing = [c for c in [*self.entity, self.time] if c not in self.columns]
            if missing:
                raise ValueError(
                    f"gold table '{self.name}': columns must keep the entity and time columns, missing {missing}"
                )
        return self

    @property
    def depends_on(self) -> list[str]:
        return [self.base, *(j.dataset for j in self.joins)]


def _fits(value: Any, dtype: str) -> bool:
    if dtype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if dtype == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype == "str":
        return isinstance(value, str)
    return isinstance(value, str | date)


def _to_datetime(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=None)
        except ValueError as exc:
            raise ValueError(f"{what} must be an ISO date or datetime, got {value!r}") from exc
    raise ValueError(f"{what} must be an ISO date or datetime, got {value!r}")
