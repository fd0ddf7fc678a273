"""Estimators of the customer and operations models (sklearn family), registered as factories.

- ``text_tf_logistic`` → :class:`TermLogisticText` (mdl-002): word 1-2 gram counts and a
  multinomial logistic regression. Raw term counts, not length-normalised: a feedback text's
  evidence for a class adds up over its cue phrases, so counts are the right scale.
- ``profile_isolation_forest`` → :class:`ProfileIsolationForest` (mdl-003): a learned daily
  profile and noise scale per stream (host x metric), an IsolationForest on the absolute
  standardised residuals, and an alarm threshold learned without labels.
- ``behaviour_gaussian_mixture`` → :class:`BehaviourGaussianMixture` (mdl-008): standardised
  behaviour features and a Gaussian mixture, cluster ids in a stable order.

Every class is a plain picklable object with ``fit(X, y) -> self`` and ``predict(X)``; the
unsupervised ones ignore ``y`` (the training backend passes zeros).

Example:
    >>> from raycore.models.factories import make_sklearn
    >>> type(make_sklearn("behaviour_gaussian_mixture", {"n_components": 4})).__name__
    'BehaviourGaussianMixture'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.models.factories import sklearn_factory

__all__ = ["BehaviourGaussianMixture", "ProfileIsolationForest", "TermLogisticText"]


class TermLogisticText:
    """Text classifier: (1..``ngram_max``)-gram term counts (optionally tf-idf) + logistic regression."""

    def __init__(
        self,
        *,
        text_column: str = "text",
        ngram_max: int = 2,
        min_df: int = 2,
        use_idf: bool = False,
        normalise: bool = False,
        C: float = 0.03,
        max_iter: int = 2000,
    ) -> None:
        if ngram_max < 1 or min_df < 1 or C <= 0:
            raise ValueError(
                f"ngram_max ({ngram_max}) and min_df ({min_df}) must be >= 1 and C ({C}) > 0"
            )
        self.text_column = text_column
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.use_idf = use_idf
        self.normalise = normalise
        self.C = C
        self.max_iter = max_iter

    def _texts(self, X: pd.DataFrame) -> pd.Series:
        if self.text_column not in X.columns:
            raise DataError(
                f"text column '{self.text_column}' is missing", hint="pass the view's text feature"
            )
        return X[self.text_column].fillna("").astype(str)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> TermLogisticText:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer_ = TfidfVectorizer(
            ngram_range=(1, self.ngram_max),
            min_df=self.min_df,
            use_idf=self.use_idf,
            norm="l2" if self.normalise else None,
            dtype=np.float32,
        )
        terms = self.vectorizer_.fit_transform(self._texts(X))
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(terms, np.asarray(y))
        return self

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model_.classes_)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self.vectorizer_.transform(self._texts(X))))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


class ProfileIsolationForest:
    """Anomalies of metric streams: IsolationForest on residuals from a learned daily profile.

    Fit (no labels): per stream (``host_id`` x ``metric_code``) a daily profile, linear in
    ``harmonics`` sine/cosine pairs of ``day_hour`` with its own weekend level and shape, by
    least squares repeated ``robust_passes`` times without the points beyond ``trim`` robust
    sigmas (so anomalies do not bend the profile); the noise scale is the residuals' MAD
    (x 1.4826). The forest isolates points by their absolute standardised residual ``|z|``,
    one scale-free number for every stream. The alarm threshold is the forest score that
    flags as many training points as lie beyond ``z_alarm`` robust sigmas: the forest ranks,
    the noise model sets how many alarms a normal week raises. (For heavy-tailed noise the
    MAD under-states the standard deviation by about 10%, so 5 robust sigmas is about 4.5
    standard deviations.)
    """

    def __init__(
        self,
        *,
        harmonics: int = 2,
        robust_passes: int = 3,
        trim: float = 4.0,
        z_alarm: float = 5.0,
        n_estimators: int = 200,
        max_samples: int = 256,
        random_state: int = 7,
    ) -> None:
        if harmonics < 1 or robust_passes < 1 or trim <= 0 or z_alarm <= 0:
            raise ValueError(
                f"harmonics ({harmonics}) and robust_passes ({robust_passes}) must be >= 1, "
                f"trim ({trim}) and z_alarm ({z_alarm}) > 0"
            )
        self.harmonics = harmonics
        self.robust_passes = robust_passes
        self.trim = trim
        self.z_alarm = z_alarm
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        angle = 2.0 * np.pi * X["day_hour"].to_numpy(dtype="float64") / 24.0
        cols = [np.ones(len(X))]
        for k in range(1, self.harmonics + 1):
            cols += [np.sin(k * angle), np.cos(k * angle)]
        base = np.column_stack(cols)
        weekend = X["weekend"].to_numpy(dtype="float64")[:, None]
        return np.hstack([base, base * weekend])

    @staticmethod
    def _streams(X: pd.DataFrame) -> np.ndarray:
        return X["host_id"].to_numpy(dtype="int64") * 100 + X["metric_code"].to_numpy(dtype="int64")

    def fit(self, X: pd.DataFrame, y: Any = None) -> ProfileIsolationForest:
        from sklearn.ensemble import IsolationForest

        del y  # unsupervised: the evaluation labels are never used
        design, value, streams = (
            self._design(X),
            X["value"].to_numpy(dtype="float64"),
            self._streams(X),
        )
        self.coef_: dict[int, np.ndarray] = {}
        self.scale_: dict[int, float] = {}
        for key in np.unique(streams):
            rows = streams == key
            A, v = design[rows], value[rows]
            keep = np.ones(len(v), dtype=bool)
            for _ in range(self.robust_passes):
                coef = np.linalg.lstsq(A[keep], v[keep], rcond=None)[0]
                resid = v - A @ coef
                scale = 1.4826 * float(np.median(np.abs(resid[keep] - np.median(resid[keep]))))
                keep = np.abs(resid) <= self.trim * max(scale, 1e-9)
            self.coef_[int(key)] = coef
            self.scale_[int(key)] = max(scale, 1e-9)
        feats = np.abs(self._features(X))
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(feats)),
            random_state=self.random_state,
        ).fit(feats)
        share = float(np.clip(np.mean(np.abs(feats[:, 0]) > self.z_alarm), 1e-4, 0.2))
        self.threshold_ = float(np.quantile(self.forest_.score_samples(feats), share))
        return self

    def _features(self, X: pd.DataFrame) -> np.ndarray:
        streams = self._streams(X)
        unknown = sorted(set(np.unique(streams).tolist()) - set(self.coef_))
        if unknown:
            host, metric = divmod(unknown[0], 100)
            raise DataError(
                f"no learned profile for host_id={host}, metric_code={metric} ({len(unknown)} unknown stream(s))",
                hint="retrain the model on data that includes the stream",
            )
        design = self._design(X)
        keys = np.array(sorted(self.coef_))
        coef = np.stack([self.coef_[int(k)] for k in keys])[np.searchsorted(keys, streams)]
        scale = np.array([self.scale_[int(k)] for k in keys])[np.searchsorted(keys, streams)]
        expected = np.einsum("ij,ij->i", design, coef)
        return ((X["value"].to_numpy(dtype="float64") - expected) / scale)[:, None]

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score per point: higher is more anomalous (0 at the alarm threshold)."""
        return np.asarray(self.threshold_ - self.forest_.score_samples(np.abs(self._features(X))))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 for an anomalous point, 0 otherwise."""
        return (self.score_samples(X) > 0).astype("int64")


class BehaviourGaussianMixture:
    """Segments from behaviour: standardised features and a Gaussian mixture (labels ignored).

    Cluster ids are ordered by the components' mean of the first feature, so a retrain on
    similar data gives the same id to the same kind of customer.
    """

    def __init__(
        self,
        *,
        n_components: int = 4,
        covariance_type: str = "diag",
        n_init: int = 5,
        random_state: int = 7,
    ) -> None:
        if n_components < 2:
            raise ValueError(f"n_components ({n_components}) must be >= 2")
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.random_state = random_state

    def _scaled(self, X: pd.DataFrame) -> np.ndarray:
        return (X.to_numpy(dtype="float64") - self.mean_) / self.std_

    def fit(self, X: pd.DataFrame, y: Any = None) -> BehaviourGaussianMixture:
        from sklearn.mixture import GaussianMixture

        del y  # unsupervised: the latent segments are never used
        values = X.to_numpy(dtype="float64")
        self.mean_ = values.mean(axis=0)
        self.std_ = np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
        self.mixture_ = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            n_init=self.n_init,
            random_state=self.random_state,
        ).fit(self._scaled(X))
        self.order_ = np.argsort(np.argsort(self.mixture_.means_[:, 0]))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        proba = self.mixture_.predict_proba(self._scaled(X))
        out = np.empty_like(proba)
        out[:, self.order_] = proba
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster id per row, 0..n_components-1."""
        return np.asarray(self.order_[self.mixture_.predict(self._scaled(X))], dtype="int64")


@sklearn_factory("text_tf_logistic")
def _text_tf_logistic(params: dict[str, Any]) -> TermLogisticText:
    return TermLogisticText(**params)


@sklearn_factory("profile_isolation_forest")
def _profile_isolation_forest(params: dict[str, Any]) -> ProfileIsolationForest:
    return ProfileIsolationForest(**params)


@sklearn_factory("behaviour_gaussian_mixture")
def _behaviour_gaussian_mixture(params: dict[str, Any]) -> BehaviourGaussianMixture:
    return BehaviourGaussianMixture(**params)
