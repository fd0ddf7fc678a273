"""The feature views (and their tables) the foundry knows, by name.

Views come from two places, and a name may be used once across both:

- every module of ``raycore.features.views``, imported on first use: each
  module-level ``FeatureView`` (and ``FeatureTable``) in it is registered;
- YAML declarations (:mod:`raycore.features.declared`): the shipped ones in
  ``raycore/features/declarations/`` and a user's own under
  ``$FOUNDRY_FEATURES_DIR`` (folders separated by ``os.pathsep``). A declaration
  may name a table of a Python module by its name alone.

Adding a view is adding a module, a view to an existing one, or a YAML file.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from raycore.errors import SpecError
from raycore.features.declared import DECLARED_DIR, load_view_files
from raycore.features.table import FeatureTable
from raycore.features.view import FeatureView

__all__ = ["FEATURES_DIR_ENV", "feature_tables", "feature_views", "get_feature_view"]

FEATURES_DIR_ENV = "FOUNDRY_FEATURES_DIR"
_VIEWS: dict[str, FeatureView] = {}
_LOADED_WITH: list[str | None] = []  # the FOUNDRY_FEATURES_DIR value _VIEWS was loaded with


def _declaration_folders(extra: str | None) -> list[Path]:
    folders = [DECLARED_DIR]
    if extra:
        folders += [Path(p).expanduser() for p in extra.split(os.pathsep) if p]
    return folders


def _load() -> dict[str, FeatureView]:
    extra = os.environ.get(FEATURES_DIR_ENV) or None
    if _VIEWS and _LOADED_WITH == [extra]:
        return _VIEWS
    import raycore.features.views as pkg

    found: dict[str, tuple[FeatureView, str]] = {}
    tables: dict[str, FeatureTable] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, FeatureTable):
                tables[value.name] = value
            if not isinstance(value, FeatureView):
                continue
            if value.name in found and found[value.name][0] is not value:
                raise SpecError(
                    f"feature view '{value.name}' is defined in both {found[value.name][1]} and {module.__name__}",
                    field="features",
                    hint="give every feature view a unique name",
                )
            found[value.name] = (value, module.__name__)
            tables.update({t.name: t for t in value.tables})
    for name, (view, path) in load_view_files(
        _declaration_folders(extra), known_tables=tables
    ).items():
        if name in found:
            raise SpecError(
                f"feature view '{name}' is defined in both {found[name][1]} and {path}",
                field="features",
                hint="give every feature view a unique name",
            )
        found[name] = (view, path)
    _VIEWS.clear()
    _VIEWS.update({name: view for name, (view, _) in found.items()})
    _LOADED_WITH[:] = [extra]
    return _VIEWS


def feature_views() -> dict[str, FeatureView]:
    return dict(_load())


def feature_tables() -> dict[str, FeatureTable]:
    """Every feature table used by a known view, by name."""
    return {t.name: t for v in _load().values() for t in v.tables}


def get_feature_view(name: str) -> FeatureView:
    views = _load()
    try:
        return views[name]
    except KeyError:
        raise SpecError(
            f"unknown feature view '{name}'",
            field="features",
            hint=f"use one of: {', '.join(sorted(views))}",
        ) from None
