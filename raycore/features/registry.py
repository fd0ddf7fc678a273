"""The feature views (and their tables) the foundry knows, by name."""

from __future__ import annotations

from raycore.errors import SpecError
from raycore.features.table import FeatureTable
from raycore.features.view import FeatureView
from raycore.features.views.store_sales import STORE_SALES_LAGS

__all__ = ["feature_tables", "feature_views", "get_feature_view"]

_VIEWS: dict[str, FeatureView] = {v.name: v for v in (STORE_SALES_LAGS,)}


def feature_views() -> dict[str, FeatureView]:
    return dict(_VIEWS)


def feature_tables() -> dict[str, FeatureTable]:
    """Every feature table used by a known view, by name."""
    return {t.name: t for v in _VIEWS.values() for t in v.tables}


def get_feature_view(name: str) -> FeatureView:
    try:
        return _VIEWS[name]
    except KeyError:
        raise SpecError(
            f"unknown feature view '{name}'",
            field="features",
            hint=f"use one of: {', '.join(sorted(_VIEWS))}",
        ) from None
