"""Model adapters behind one Estimator protocol.

LightGBM is imported eagerly (the default family); the XGBoost, scikit-learn
and PyTorch adapters are imported on first use, so ``import raycore.models``
does not pull in torch or xgboost.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from raycore.models.base import Estimator
from raycore.models.lightgbm_model import LightGBMEstimator

__all__ = [
    "Estimator",
    "LightGBMEstimator",
    "SklearnEstimator",
    "TorchEstimator",
    "XGBoostEstimator",
    "estimator_class",
    "load_estimator",
]

# family -> (module, class); imported lazily.
_FAMILIES: dict[str, tuple[str, str]] = {
    "lightgbm": ("raycore.models.lightgbm_model", "LightGBMEstimator"),
    "xgboost": ("raycore.models.xgboost_model", "XGBoostEstimator"),
    "sklearn": ("raycore.models.sklearn_model", "SklearnEstimator"),
    "torch": ("raycore.models.torch_model", "TorchEstimator"),
}
_LAZY = {cls: module for module, cls in _FAMILIES.values()}


def estimator_class(family: str) -> Any:
    """The adapter class for ``family`` (imports its library on first use)."""
    from raycore.errors import RegistryError

    try:
        module, name = _FAMILIES[family]
    except KeyError:
        raise RegistryError(
            f"no estimator adapter for family '{family}'",
            hint=f"known families: {', '.join(sorted(_FAMILIES))}",
        ) from None
    return getattr(importlib.import_module(module), name)


def load_estimator(family: str, folder: Path) -> Estimator:
    """Load a saved estimator of ``family`` from ``folder``."""
    loaded: Estimator = estimator_class(family).load(folder)
    return loaded


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raycore.models' has no attribute {name!r}")
