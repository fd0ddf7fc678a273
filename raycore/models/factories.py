"""Named estimator factories for the ``sklearn`` family (fit as Ray tasks).

A factory turns a spec's ``algorithm.params`` into an unfitted estimator with
scikit-learn's ``fit(X, y)`` / ``predict(X)`` (and ``predict_proba`` for
classifiers). Catalog YAML names a factory with ``algorithm.objective``.
Project-specific estimators (T-learner, adstock ridge, ...) live in
``raycore.models.custom`` modules and register themselves on import.

Example:
    >>> from raycore.models.factories import make_sklearn
    >>> est = make_sklearn("ridge", {"alpha": 1.0})
    >>> type(est).__name__
    'Ridge'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raycore.errors import SpecError
from raycore.plugins import PluginRegistry

__all__ = ["make_sklearn", "sklearn_factories", "sklearn_factory"]

Factory = Callable[[dict[str, Any]], Any]
_REGISTRY: PluginRegistry[Factory] = PluginRegistry("sklearn estimator", "raycore.models.custom")
sklearn_factory = _REGISTRY.register
sklearn_factories = _REGISTRY.all


def make_sklearn(name: str, params: dict[str, Any]) -> Any:
    """An unfitted estimator from factory ``name`` and ``params``."""
    factory = _REGISTRY.get(name, field="algorithm.objective")
    try:
        return factory(dict(params))
    except TypeError as exc:
        raise SpecError(
            f"bad parameters for sklearn estimator '{name}': {exc}",
            field="algorithm.params",
            hint="check the parameter names against the estimator's documentation",
        ) from exc


@sklearn_factory("ridge")
def _ridge(params: dict[str, Any]) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(**params)


@sklearn_factory("logistic_regression")
def _logreg(params: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"max_iter": 1000, **params})


@sklearn_factory("linear_regression")
def _linreg(params: dict[str, Any]) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression(**params)


@sklearn_factory("random_forest_regressor")
def _random_forest_regressor(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(**{"n_jobs": 1, "random_state": 7, **params})


@sklearn_factory("random_forest_classifier")
def _random_forest_classifier(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(**{"n_jobs": 1, "random_state": 7, **params})


@sklearn_factory("hist_gradient_boosting_regressor")
def _hist_gradient_boosting_regressor(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**{"random_state": 7, **params})


@sklearn_factory("hist_gradient_boosting_classifier")
def _hist_gradient_boosting_classifier(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**{"random_state": 7, **params})


@sklearn_factory("kmeans")
def _kmeans(params: dict[str, Any]) -> Any:
    """KMeans; ``fit(X, y)`` ignores ``y`` (clustering is unsupervised), ``predict`` gives cluster ids."""
    from sklearn.cluster import KMeans

    return KMeans(**{"n_init": 10, "random_state": 7, **params})


@sklearn_factory("gaussian_mixture")
def _gaussian_mixture(params: dict[str, Any]) -> Any:
    """GaussianMixture; ``fit(X, y)`` ignores ``y``, ``predict`` gives component ids."""
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(**{"random_state": 7, **params})


@sklearn_factory("isolation_forest")
def _isolation_forest(params: dict[str, Any]) -> Any:
    """IsolationForest whose ``predict`` is the foundry's anomaly flag: 1 = anomaly, 0 = normal.

    sklearn's own ``predict`` says -1/+1; ``fit(X, y)`` ignores ``y``.
    """
    from raycore.models.custom.isolation_flag import IsolationFlagger

    return IsolationFlagger(**params)
