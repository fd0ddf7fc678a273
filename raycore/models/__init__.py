"""Model adapters behind one Estimator protocol."""

from raycore.models.base import Estimator
from raycore.models.lightgbm_model import LightGBMEstimator

__all__ = ["Estimator", "LightGBMEstimator", "load_estimator"]

_FAMILIES = {"lightgbm": LightGBMEstimator}


def load_estimator(family: str, folder):  # type: ignore[no-untyped-def]
    """Load a saved estimator of ``family`` from ``folder``."""
    from raycore.errors import RegistryError

    try:
        cls = _FAMILIES[family]
    except KeyError:
        raise RegistryError(
            f"no estimator adapter for family '{family}'",
            hint=f"known families: {', '.join(sorted(_FAMILIES))}",
        ) from None
    return cls.load(folder)
