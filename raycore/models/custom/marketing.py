"""Marketing estimators: noisy-or conversion model, adstock + saturation media mix, budget allocator.

``NoisyOrConversion`` (factory ``noisy_or_conversion``): a journey converts
unless every touch fails to convert it, ``P(convert) = 1 - exp(b0 + sum_c b_c
k_c)`` with ``b <= 0`` (``k_c`` touches by channel ``c``), fitted by maximum
likelihood. It is the conversion model behind journey attribution, where the
Shapley value of each channel is computed over channel subsets.

``AdstockHillMMM`` (factory ``adstock_hill_mmm``): weekly sales of a region are
a seasonal, trending base plus one saturating contribution per channel::

    y_rt   = s_r [ m_r (1 + a1 sin + a2 cos + h holiday) e^(g t) + sum_c beta_c A_crt / (A_crt + K_c) ]
    A_crt  = sum_{l=0..L} lambda_c^l x_cr,t-l / s_r          (geometric adstock, spend per region size)

``s_r`` is the region's mean label on the training rows (its size); the adstock
decay ``lambda_c``, half saturation ``K_c`` and ceiling ``beta_c`` of every
channel, the region levels ``m_r`` and the calendar terms are fitted jointly by
non-linear least squares on relative errors, from several starting decays (the
best fit wins). Two refinements, both maximum a posteriori:

- ``week_shrinkage``: a week's national shock moves every region at once; a
  week effect per training week (prior variance = residual variance /
  ``week_shrinkage``) is profiled out of the residuals, so the media effects are
  learnt mostly from differences between regions within a week (the spend is
  flighted region by region). Predictions leave it out (it is unknown ahead).
- ``saturation_pooling_sd`` / ``decay_pooling_sd``: one channel's half
  saturation (relative to its typical weekly spend) or decay is weakly
  identified when it runs saturated; partial pooling draws each towards the
  channels' mean on the log / logit scale with this spread.

``response_curves`` returns, per channel and region, the
steady-state weekly response to a constant weekly spend ``x``:
``a x / (x + k)`` with ``a = s_r beta_c`` and ``k = s_r K_c / sum_l lambda_c^l``;
``allocate_budget`` splits a budget over such curves optimally.

Example:
    >>> import numpy as np
    >>> allocate_budget(np.array([10.0, 10.0]), np.array([1.0, 1.0]), budget=4.0).round(6).tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, minimize

from raycore.errors import DataError
from raycore.models.factories import sklearn_factory

__all__ = ["AdstockHillMMM", "NoisyOrConversion", "allocate_budget", "shapley_values"]

CHANNELS = ("search", "social", "display", "email", "video", "affiliate")


# --------------------------------------------------------------------------- attribution


class NoisyOrConversion:
    """P(convert | touches) = 1 - exp(b0 + sum_c b_c k_c), every b <= 0; maximum likelihood."""

    def __init__(self, l2: float = 0.0) -> None:
        self.l2 = l2

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> NoisyOrConversion:
        k = np.asarray(X, dtype="float64")
        target = np.asarray(y, dtype="float64")
        design = np.column_stack([np.ones(len(k)), k])

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            b = -np.exp(
                theta
            )  # every log-survival coefficient is negative: a touch never lowers P(convert)
            eta = np.minimum(design @ b, -1e-9)
            p = -np.expm1(eta)  # 1 - e^eta
            log_p, log_q = np.log(p), eta
            nll = -np.sum(target * log_p + (1 - target) * log_q) / len(k) + self.l2 * np.sum(
                theta**2
            )
            # d nll / d eta, then chain through b = -exp(theta)
            d_eta = -(target * (np.exp(eta) * -1.0 / p) + (1 - target)) / len(k)
            grad = (design.T @ d_eta) * b + 2 * self.l2 * theta
            return float(nll), grad

        start = np.log(np.r_[0.01, np.full(k.shape[1], 0.03)])
        result = minimize(loss, start, jac=True, method="L-BFGS-B")
        self.coef_ = -np.exp(result.x)
        self.feature_names_in_ = list(X.columns) if isinstance(X, pd.DataFrame) else None
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        k = np.asarray(X, dtype="float64")
        p = -np.expm1(self.coef_[0] + k @ self.coef_[1:])
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("int64")


def shapley_values(value: np.ndarray) -> np.ndarray:
    """Exact Shapley values from a value function over all player subsets.

    ``value[:, s]`` is the value of subset ``s`` (bit ``c`` of ``s`` set: player ``c``
    in) for each row; ``value[:, 0]`` the empty set. Returns (rows, players).

    Example:
        >>> v = np.array([[0.0, 1.0, 2.0, 4.0]])  # players 0 and 1; together worth 4
        >>> shapley_values(v).tolist()
        [[1.5, 2.5]]
    """
    n_sets = value.shape[1]
    n = n_sets.bit_length() - 1
    if 2**n != n_sets:
        raise DataError(
            f"value has {n_sets} subsets, not a power of two",
            hint="pass every subset of the players",
        )
    masks = (np.arange(n_sets)[:, None] >> np.arange(n)[None, :]) & 1
    size = masks.sum(axis=1)
    fact = np.array([float(np.prod(np.arange(1, i + 1))) for i in range(n + 1)])
    weights = fact[:n] * fact[n - 1 - np.arange(n)] / fact[n]  # |S|! (n-|S|-1)! / n!
    out = np.zeros((value.shape[0], n))
    for c in range(n):
        without = np.flatnonzero(masks[:, c] == 0)
        out[:, c] = (value[:, without + 2**c] - value[:, without]) @ weights[size[without]]
    return out


# --------------------------------------------------------------------------- media mix


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


class AdstockHillMMM:
    """Adstock + Hill (shape 1) media mix model per region and week; see the module docstring."""

    def __init__(
        self,
        channels: Sequence[str] = CHANNELS,
        lags: int = 12,
        start_decays: Sequence[float] = (0.3, 0.6),
        max_nfev: int = 400,
        week_shrinkage: float | None = 1.0,
        decay_pooling_sd: float | None = None,
        saturation_pooling_sd: float | None = None,
        region_column: str = "region_id",
        spend_format: str = "spend_{channel}_lag_{lag}",
        calendar: Sequence[str] = ("season_sin", "season_cos", "holiday_peak", "trend_years"),
    ) -> None:
        self.channels = tuple(channels)
        self.lags = lags
        self.start_decays = tuple(start_decays)
        self.max_nfev = max_nfev
        self.week_shrinkage = week_shrinkage
        self.decay_pooling_sd = decay_pooling_sd
        self.saturation_pooling_sd = saturation_pooling_sd
        self.region_column = region_column
        self.spend_format = spend_format
        self.calendar = tuple(calendar)

    # -- inputs
    def _spend(self, X: pd.DataFrame) -> np.ndarray:
        cols = [
            self.spend_format.format(channel=c, lag=lag)
            for c in self.channels
            for lag in range(self.lags + 1)
        ]
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise DataError(
                f"AdstockHillMMM needs spend columns, missing {missing[:3]}...",
                hint="check the view",
            )
        return X[cols].to_numpy(dtype="float64").reshape(len(X), len(self.channels), self.lags + 1)

    def _region_index(self, X: pd.DataFrame) -> np.ndarray:
        codes = X[self.region_column].to_numpy(dtype="float64")
        idx = np.searchsorted(self.regions_, codes)
        idx = np.clip(idx, 0, len(self.regions_) - 1)
        unknown = self.regions_[idx] != codes
        if unknown.any():
            raise DataError(
                f"region {codes[unknown][0]:g} was not in the training data of the media mix model",
                hint=f"known regions: {', '.join(f'{r:g}' for r in self.regions_)}",
            )
        return idx

    # -- model
    def _slices(self) -> dict[str, slice]:
        n_r, n_c = len(self.regions_), len(self.channels)
        out, i = {}, 0
        for name, size in (
            ("log_m", n_r),
            ("cal", len(self.calendar)),
            ("logit_decay", n_c),
            ("log_k", n_c),
            ("log_beta", n_c),
        ):
            out[name] = slice(i, i + size)
            i += size
        return out

    def _unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        return {name: theta[sl] for name, sl in self._slices().items()}

    def _normalised(
        self, p: dict[str, np.ndarray], spend_n: np.ndarray, cal: np.ndarray, r: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        decay = 1 / (1 + np.exp(-p["logit_decay"]))
        powers = decay[:, None] ** np.arange(self.lags + 1)[None, :]  # (C, L+1)
        adstock = np.einsum("ncl,cl->nc", spend_n, powers)
        k, beta = np.exp(p["log_k"]), np.exp(p["log_beta"])
        contrib = beta[None, :] * adstock / (adstock + k[None, :])
        season = 1 + cal[:, :3] @ p["cal"][:3]
        trend = np.exp(p["cal"][3] * (cal[:, 3] - self.trend_center_))  # constant growth rate
        base = np.exp(p["log_m"])[r] * season * trend
        return base, contrib

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> AdstockHillMMM:
        target = np.asarray(y, dtype="float64")
        codes = X[self.region_column].to_numpy(dtype="float64")
        self.regions_ = np.unique(codes)
        r = np.searchsorted(self.regions_, codes)
        self.scale_ = np.array([target[r == i].mean() for i in range(len(self.regions_))])
        spend_n = self._spend(X) / self.scale_[r][:, None, None]
        cal = X[list(self.calendar)].to_numpy(dtype="float64")
        self.trend_center_ = float(cal[:, 3].mean())
        y_n = target / self.scale_[r]
        n_r, n_c = len(self.regions_), len(self.channels)
        lag0 = spend_n[:, :, 0]
        typical = np.array(
            [
                np.median(lag0[lag0[:, c] > 0, c]) if (lag0[:, c] > 0).any() else 1.0
                for c in range(n_c)
            ]
        )

        # Weeks share a national shock (every region moves together): a week effect per training
        # week, shrunk towards zero, is profiled out of the residuals (exact for a quadratic penalty).
        week = np.unique(cal[:, 3], return_inverse=True)[1]
        per_week = np.bincount(week).astype("float64")

        def data_residuals(theta: np.ndarray) -> np.ndarray:
            base, contrib = self._normalised(self._unpack(theta), spend_n, cal, r)
            res = base + contrib.sum(axis=1) - y_n
            if self.week_shrinkage is None:
                return res
            effect = np.bincount(week, weights=res) / (per_week + self.week_shrinkage)
            return np.r_[res - effect[week], np.sqrt(self.week_shrinkage) * effect]

        def fit_from(starts: Sequence[float], residuals: Any) -> Any:
            best = None
            for d0 in starts:
                theta0 = np.r_[
                    np.full(n_r, np.log(0.8)),
                    np.zeros(len(self.calendar)),
                    np.full(n_c, _logit(np.array(d0))),
                    np.log(typical / (1 - d0)),
                    np.full(n_c, np.log(0.05)),
                ]
                fit = least_squares(
                    residuals, theta0, method="trf", max_nfev=self.max_nfev, x_scale="jac"
                )
                if best is None or fit.cost < best.cost:
                    best = fit
            assert best is not None
            return best

        best = fit_from(self.start_decays, data_residuals)
        if self.decay_pooling_sd is not None or self.saturation_pooling_sd is not None:
            # Partial pooling of the weakly identified curve shapes across channels: each channel's
            # logit decay, and its half saturation relative to its typical weekly spend, is drawn
            # towards the channels' mean (profiled out) with the given spread, in units of the
            # residual noise of the unpooled fit (maximum a posteriori).
            sigma = float(np.sqrt(2 * best.cost / len(y_n)))
            sl = self._slices()
            log_typical = np.log(typical)

            def residuals(theta: np.ndarray) -> np.ndarray:
                extra = []
                if self.decay_pooling_sd is not None:
                    d = theta[sl["logit_decay"]]
                    extra.append((d - d.mean()) / self.decay_pooling_sd)
                if self.saturation_pooling_sd is not None:
                    k = theta[sl["log_k"]] - log_typical
                    extra.append((k - k.mean()) / self.saturation_pooling_sd)
                return np.r_[data_residuals(theta), sigma * np.concatenate(extra)]

            best = fit_from(self.start_decays, residuals)
        self.theta_ = best.x
        self.cost_ = float(best.cost)
        p = self._unpack(self.theta_)
        self.decay_ = 1 / (1 + np.exp(-p["logit_decay"]))
        self.half_saturation_ = np.exp(p["log_k"])
        self.beta_ = np.exp(p["log_beta"])
        return self

    def _parts(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = self._region_index(X)
        spend_n = self._spend(X) / self.scale_[r][:, None, None]
        cal = X[list(self.calendar)].to_numpy(dtype="float64")
        base, contrib = self._normalised(self._unpack(self.theta_), spend_n, cal, r)
        return base, contrib, self.scale_[r]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        base, contrib, scale = self._parts(X)
        return scale * (base + contrib.sum(axis=1))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each channel's contribution to every row's prediction (label units)."""
        _, contrib, scale = self._parts(X)
        return pd.DataFrame(contrib * scale[:, None], columns=list(self.channels), index=X.index)

    def response_curves(self) -> pd.DataFrame:
        """Per channel and region: steady-state weekly response ``a x / (x + k)`` to a constant weekly spend x."""
        carry = (self.decay_[:, None] ** np.arange(self.lags + 1)[None, :]).sum(axis=1)
        rows = [
            {
                "channel": c,
                "region_id": float(region),
                "a": float(self.scale_[j] * self.beta_[i]),
                "k": float(self.scale_[j] * self.half_saturation_[i] / carry[i]),
                "decay": float(self.decay_[i]),
            }
            for i, c in enumerate(self.channels)
            for j, region in enumerate(self.regions_)
        ]
        return pd.DataFrame(rows)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "lags": self.lags,
            "start_decays": self.start_decays,
            "max_nfev": self.max_nfev,
            "week_shrinkage": self.week_shrinkage,
            "decay_pooling_sd": self.decay_pooling_sd,
            "saturation_pooling_sd": self.saturation_pooling_sd,
            "region_column": self.region_column,
            "spend_format": self.spend_format,
            "calendar": self.calendar,
        }


def allocate_budget(
    a: np.ndarray, k: np.ndarray, *, budget: float, upper: np.ndarray | None = None
) -> np.ndarray:
    """Spend per curve maximising ``sum a x / (x + k)`` with ``sum x = budget``, ``0 <= x <= upper``.

    The curves are concave, so the optimum equalises marginal returns
    ``a k / (x + k)^2`` across curves with spend strictly inside their bounds:
    bisection on that common marginal return (the Lagrange multiplier).
    """
    a, k = np.asarray(a, dtype="float64"), np.asarray(k, dtype="float64")
    hi_x = np.full_like(a, np.inf) if upper is None else np.asarray(upper, dtype="float64")
    if budget <= 0:
        return np.zeros_like(a)
    if np.sum(hi_x) <= budget:
        return hi_x.copy()

    def spend_at(mu: float) -> np.ndarray:
        return np.clip(np.sqrt(a * k / mu) - k, 0.0, hi_x)

    lo, hi = 1e-12, float(np.max(a / k)) * 2 + 1e-12  # marginal return at x = 0 is a / k
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if spend_at(mid).sum() > budget:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-12:
            break
    x = spend_at(np.sqrt(lo * hi))
    return x * (budget / x.sum()) if x.sum() > 0 else x


@sklearn_factory("noisy_or_conversion")
def _noisy_or(params: dict[str, Any]) -> NoisyOrConversion:
    return NoisyOrConversion(**params)


@sklearn_factory("adstock_hill_mmm")
def _adstock_hill(params: dict[str, Any]) -> AdstockHillMMM:
    return AdstockHillMMM(**params)
