"""Feature views declared as data: a YAML file names the spec, Python functions do the math.

A declaration holds everything that is data — entity keys, request inputs,
feature tables (entity, event time, source table, TTL, typed fields), the
model features, version — and names its functions by import path
(``package.module:function``): ``transform`` (and optionally ``fit`` for fitted
state, ``check``, ``label_rows``) and each table's ``compute``. Loading a file
gives the same :class:`~raycore.features.view.FeatureView` a Python module
would build, so batch, online and training paths cannot tell them apart.

The registry reads the shipped declarations (``raycore/features/declarations/``)
and every ``*.yaml`` under ``$FOUNDRY_FEATURES_DIR`` (a user's own views).

Example file::

    name: store_sales_lags
    version: 3
    entity: [{name: store_id, dtype: int, description: Store id., ge: 1}]
    request:
      - {name: week_start, dtype: date, description: Monday of the target week.}
    tables:
      - name: store_weekly_stats          # a table another view declares, by name
    features: [horizon, fit_ratio, fit_resid_4]
    transform: raycore.features.views.store_sales:_transform

Example:
    >>> view = load_view_file(Path("store_sales_lags.yaml"))   # doctest: +SKIP
    >>> view.name
    'store_sales_lags'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from raycore.errors import SpecError
from raycore.features.table import FeatureField, FeatureTable
from raycore.features.view import FeatureView

__all__ = [
    "DECLARED_DIR",
    "ViewDeclaration",
    "load_view_file",
    "load_view_files",
    "resolve_function",
]

DECLARED_DIR = Path(__file__).resolve().parent / "declarations"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldDeclaration(_Strict):
    """One typed raw input or table field."""

    name: str = Field(min_length=1)
    dtype: Literal["int", "float", "date", "str"]
    description: str = ""
    ge: int | float | None = None  # an int bound stays an int: the view's digest reads it
    le: int | float | None = None

    def build(self) -> FeatureField:
        return FeatureField(self.name, self.dtype, self.description, ge=self.ge, le=self.le)


class TableDeclaration(_Strict):
    """A feature table: either a reference by ``name`` alone or a full declaration."""

    name: str = Field(min_length=1)
    version: int | None = Field(default=None, ge=1)
    entity: list[str] | None = None
    event_time: str | None = None
    source: str | None = None
    ttl: str | None = None
    fields: list[FieldDeclaration] | None = None
    compute: str | None = None
    description: str = ""

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            pd.Timedelta(value)
        except ValueError:
            raise ValueError(
                f"ttl {value!r} is not a duration; write e.g. '35D' or '48h'"
            ) from None
        return value

    @property
    def is_reference(self) -> bool:
        declared = (
            self.version,
            self.entity,
            self.event_time,
            self.source,
            self.fields,
            self.compute,
        )
        return all(v is None for v in declared)


class ViewDeclaration(_Strict):
    """The data of one feature view; functions are ``module:function`` import paths."""

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    description: str = ""
    entity: list[FieldDeclaration] = Field(min_length=1)
    request: list[FieldDeclaration] = Field(default_factory=list)
    tables: list[TableDeclaration] = Field(default_factory=list)
    features: list[str] = Field(min_length=1)
    transform: str
    fit: str | None = None
    check: str | None = None
    label_rows: str | None = None
    label_sources: list[str] = Field(default_factory=list)
    scale_column: str | None = None
    categorical: list[str] = Field(default_factory=list)


def resolve_function(path: str, *, where: str) -> Callable[..., Any]:
    """The function named by ``package.module:function``; a clear SpecError otherwise."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(
            f"{where}: {path!r} is not an import path",
            field=where,
            hint="write it as package.module:function",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(
            f"{where}: module '{module_name}' cannot be imported: {exc}",
            field=where,
            hint="install the package that defines it or fix the module path",
        ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise SpecError(
            f"{where}: '{module_name}' has no function '{attr}'",
            field=where,
            hint=f"define {attr} in {module_name} or fix the name",
        )
    return fn  # type: ignore[no-any-return]


def _table(
    decl: TableDeclaration, known: Mapping[str, FeatureTable], *, where: str
) -> FeatureTable:
    if decl.is_reference:
        if decl.name not in known:
            raise SpecError(
                f"{where}: feature table '{decl.name}' is not declared anywhere",
                field=where,
                hint=f"declare it in full here or use one of: {', '.join(sorted(known)) or '(none)'}",
            )
        return known[decl.name]
    missing = [
        k
        for k in ("version", "entity", "event_time", "source", "fields", "compute")
        if getattr(decl, k) is None
    ]
    if missing:
        raise SpecError(
            f"{where}: feature table '{decl.name}' is declared without {', '.join(missing)}",
            field=where,
            hint="give a full declaration (version, entity, event_time, source, fields, compute) or the name alone",
        )
    assert (
        decl.version is not None
        and decl.entity
        and decl.event_time
        and decl.source
        and decl.compute
    )
    return FeatureTable(
        name=decl.name,
        version=decl.version,
        entity=tuple(decl.entity),
        event_time=decl.event_time,
        source=decl.source,
        fields=tuple(f.build() for f in decl.fields or ()),
        compute=resolve_function(decl.compute, where=f"{where}.compute"),
        ttl=pd.Timedelta(decl.ttl) if decl.ttl else None,
        description=decl.description,
    )


def _optional(path: str | None, *, where: str) -> Callable[..., Any] | None:
    return None if path is None else resolve_function(path, where=where)


def build_view(
    decl: ViewDeclaration, *, known_tables: Mapping[str, FeatureTable], source: str
) -> FeatureView:
    """The FeatureView of a declaration; tables named alone come from ``known_tables``."""
    tables = tuple(
        _table(t, known_tables, where=f"{source}: tables[{i}]") for i, t in enumerate(decl.tables)
    )
    names = [f.name for f in (*decl.entity, *decl.request)] + [
        f.name for t in tables for f in t.fields
    ]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SpecError(
            f"{source}: raw input(s) {', '.join(duplicated)} are declared more than once",
            field="request",
            hint="give every entity key, request input and table field a unique name",
        )
    if decl.scale_column is not None and decl.scale_column not in names:
        raise SpecError(
            f"{source}: scale_column '{decl.scale_column}' is not a raw input of the view",
            field="scale_column",
            hint=f"use one of: {', '.join(names)}",
        )
    return FeatureView(
        name=decl.name,
        version=decl.version,
        description=decl.description,
        entity=tuple(f.build() for f in decl.entity),
        request=tuple(f.build() for f in decl.request),
        tables=tables,
        feature_names=tuple(decl.features),
        transform=resolve_function(decl.transform, where=f"{source}: transform"),
        fit=_optional(decl.fit, where=f"{source}: fit"),
        check=_optional(decl.check, where=f"{source}: check"),
        label_rows=_optional(decl.label_rows, where=f"{source}: label_rows"),
        label_sources=tuple(decl.label_sources),
        scale_column=decl.scale_column,
        categorical=tuple(decl.categorical),
    )


def read_declaration(path: Path) -> ViewDeclaration:
    """Parse and validate one declaration file; SpecError names the file and the bad field."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}", hint="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: a feature view declaration must be a mapping",
            hint="see raycore/features/declarations/",
        )
    try:
        return ViewDeclaration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SpecError(
            f"{path}: {loc}: {first['msg']}",
            field=loc,
            hint="see raycore/features/declarations/store_sales_lags.yaml for a complete declaration",
        ) from None


def load_view_file(
    path: Path, *, known_tables: Mapping[str, FeatureTable] | None = None
) -> FeatureView:
    """The FeatureView declared in ``path``."""
    return build_view(read_declaration(path), known_tables=known_tables or {}, source=str(path))


def load_view_files(
    folders: list[Path], *, known_tables: Mapping[str, FeatureTable]
) -> dict[str, tuple[FeatureView, str]]:
    """Every ``*.yaml`` declaration under ``folders`` (in name order): view and file, by view name."""
    found: dict[str, tuple[FeatureView, str]] = {}
    tables = dict(known_tables)
    for folder in folders:
        if not folder.is_dir():
            raise SpecError(
                f"feature view folder {folder} does not exist",
                field="FOUNDRY_FEATURES_DIR",
                hint="point FOUNDRY_FEATURES_DIR at a folder of *.yaml view declarations",
            )
        for path in sorted(folder.glob("*.yaml")):
            view = load_view_file(path, known_tables=tables)
            if view.name in found:
                raise SpecError(
                    f"feature view '{view.name}' is declared in both {found[view.name][1]} and {path}",
                    field="name",
                    hint="give every feature view a unique name",
                )
            found[view.name] = (view, str(path))
            tables.update({t.name: t for t in view.tables})
    return found
