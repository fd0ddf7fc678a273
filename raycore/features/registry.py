"""The feature views (and their tables) the foundry knows, by name.

Every module of ``raycore.features.views`` is imported on first use; each
module-level ``FeatureView`` in it is registered. Adding a view is adding a
module (or a view to an existing one); nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from raycore.errors import SpecError
from raycore.features.table import FeatureTable
from raycore.features.view import FeatureView

__all__ = ["feature_tables", "feature_views", "get_feature_view"]

_VIEWS: dict[str, FeatureView] = {}


def _load() -> dict[str, FeatureView]:
    if _VIEWS:
        return _VIEWS
    import raycore.features.views as pkg

    found: dict[str, tuple[FeatureView, str]] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, FeatureView):
                continue
            if value.name in found and found[value.name][0] is not value:
                raise SpecError(
                    f"feature view '{value.name}' is defined in both {found[value.name][1]} and {module.__name__}",
                    field="features",
                    hint="give every feature view a unique name",
                )
            found[value.name] = (value, module.__name__)
    _VIEWS.update({name: view for name, (view, _) in found.items()})
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
