"""IsolationForest with the foundry's anomaly contract: ``predict`` is a 0/1 flag (1 = anomaly).

Registered as the built-in sklearn factory ``isolation_forest``
(``raycore.models.factories``).

Example:
    >>> import numpy as np
    >>> X = np.r_[np.zeros((50, 1)), [[25.0]]]
    >>> IsolationFlagger(contamination=0.02).fit(X).predict(X)[-1]
    np.int64(1)
"""

from __future__ import annotations

from typing import Any

__all__ = ["IsolationFlagger"]


class IsolationFlagger:
    """sklearn's IsolationForest with a 0/1 anomaly flag (1 = anomaly) and an ``anomaly_score`` (higher = more anomalous)."""

    def __init__(self, **params: Any) -> None:
        from sklearn.ensemble import IsolationForest

        self.params = {"random_state": 7, "n_jobs": 1, **params}
        self.forest = IsolationForest(**self.params)

    def fit(self, X: Any, y: Any = None) -> IsolationFlagger:
        self.forest.fit(X)
        return self

    def predict(self, X: Any) -> Any:
        return (self.forest.predict(X) == -1).astype("int64")

    def anomaly_score(self, X: Any) -> Any:
        return -self.forest.score_samples(X)
