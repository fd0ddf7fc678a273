"""Estimators and the price policy of the product models (scikit-learn interface, picklable).

- :class:`SeasonalDecomposition` (mdl-010, factory ``seasonal_decomposition``):
  the seasonal index of a product-week from a classical decomposition of weekly
  units: each week divided by the product's centred 52-week level (promotion
  weeks, launch ramp and peak-season weeks left out of the level), then a
  harmonic + peak-week regression of those ratios per category.
- :class:`LogLogElasticity` (mdl-012, factory ``loglog_elasticity``): own-price
  elasticity per product from a log-log regression of weekly units on price with
  controls (competitor price, promotion display / feature, trend) and
  category x week fixed effects, shrunk towards the category mean (empirical Bayes).
- :class:`TLearner` (mdl-016, factory ``t_learner``): two gradient-boosted
  regressors, one on promoted weeks and one on the others; the uplift of a
  promotion is the difference of their predictions.
- :func:`recommend_price` (mdl-011): the constrained price search over a fitted
  demand model (revenue-maximising multiple of the list price within bounds).

Example:
    >>> from raycore.models.factories import make_sklearn
    >>> type(make_sklearn("t_learner", {"max_iter": 50})).__name__
    'TLearner'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from raycore.models.factories import sklearn_factory

__all__ = [
    "LogLogElasticity",
    "SeasonalDecomposition",
    "TLearner",
    "recommend_price",
]

WEEKS_PER_YEAR = 52.18


# --------------------------------------------------------------------------- seasonal decomposition (mdl-010)


class SeasonalDecomposition:
    """Seasonal index per product-week: ratio to a centred 52-week level, smoothed per category.

    ``fit(X, y)``: ``X`` holds ``product_id``, ``category_code``, ``week_index``,
    ``week_of_year``, ``age_weeks``, ``on_promo``; ``y`` the weekly units. The
    level of a product at week t is the mean of its units over the 52 weeks
    centred on t, counting only regular weeks (no promotion, past the launch
    ramp, outside the peak season); a week's ratio is its units over that level.
    Per category the ratios of non-promoted weeks are regressed on
    ``harmonics`` sine/cosine pairs of the week of year plus one effect per
    peak-season week, so the index averages about 1 over regular weeks.
    ``predict(X)`` evaluates that curve at each row's category and week of year
    (the pooled curve for a category not seen in training).
    """

    def __init__(
        self,
        *,
        window: int = 52,
        min_coverage: float = 0.9,
        ramp_weeks: float = 12.0,
        harmonics: int = 2,
        peak_weeks: tuple[int, ...] | list[int] = (46, 47, 48, 49, 50, 51, 52),
        ridge: float = 1.0,
    ) -> None:
        self.window = window
        self.min_coverage = min_coverage
        self.ramp_weeks = ramp_weeks
        self.harmonics = harmonics
        self.peak_weeks = tuple(peak_weeks)
        self.ridge = ridge

    def _design(self, woy: np.ndarray) -> np.ndarray:
        angle = 2.0 * np.pi * woy / WEEKS_PER_YEAR
        cols = [np.ones_like(angle)]
        for k in range(1, self.harmonics + 1):
            cols += [np.sin(k * angle), np.cos(k * angle)]
        cols += [(woy == w).astype("float64") for w in self.peak_weeks]
        return np.column_stack(cols)

    def _solve(self, woy: np.ndarray, ratio: np.ndarray) -> np.ndarray:
        a = self._design(woy)
        penalty = self.ridge * np.eye(a.shape[1])
        penalty[0, 0] = 0.0  # the level itself is not shrunk
        return np.linalg.solve(a.T @ a + penalty, a.T @ ratio)

    def ratios(self, x: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
        """Per usable row: product, category, week of year and units / centred level."""
        df = pd.DataFrame(
            {
                "product_id": x["product_id"].to_numpy(),
                "category_code": x["category_code"].to_numpy(),
                "week": np.round(x["week_index"].to_numpy()).astype("int64"),
                "woy": x["week_of_year"].to_numpy(),
                "units": np.asarray(y, dtype="float64"),
                "promo": x["on_promo"].to_numpy() > 0.5,
                "ramp": x["age_weeks"].to_numpy() < self.ramp_weeks,
            }
        ).drop_duplicates(["product_id", "week"])
        regular = ~df["promo"] & ~df["ramp"] & ~df["woy"].isin(self.peak_weeks)
        weeks = np.arange(df["week"].min(), df["week"].max() + 1)
        units = df.pivot(index="week", columns="product_id", values="units").reindex(weeks)
        reg = df[regular].pivot(index="week", columns="product_id", values="units").reindex(weeks)
        life = df[~df["ramp"]].pivot(index="week", columns="product_id", values="units").reindex(weeks).notna()
        # The window must lie within the product's observed life (after the ramp) for the level to be a year's mean.
        span = life.rolling(self.window, center=True, min_periods=self.window).sum()
        level = reg.rolling(self.window, center=True, min_periods=1).mean()
        level = level.where(span >= self.min_coverage * self.window)
        ratio = (units / level).stack(future_stack=True).rename("ratio").dropna().reset_index()
        out = df.merge(ratio, on=["week", "product_id"], how="inner")
        return out[~out["promo"] & ~out["ramp"] & np.isfinite(out["ratio"])]

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> SeasonalDecomposition:
        r = self.ratios(X, y)
        if r.empty:
            raise ValueError("no product has a full year of regular weeks to decompose; give a longer history")
        self.pooled_ = self._solve(r["woy"].to_numpy(), r["ratio"].to_numpy())
        self.coef_: dict[int, np.ndarray] = {}
        for code, g in r.groupby("category_code"):
            self.coef_[int(code)] = self._solve(g["woy"].to_numpy(), g["ratio"].to_numpy())
        self.n_ratios_ = len(r)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        woy = X["week_of_year"].to_numpy(dtype="float64")
        design = self._design(woy)
        codes = X["category_code"].to_numpy()
        out = design @ self.pooled_
        for code, coef in self.coef_.items():
            hit = codes == code
            out[hit] = design[hit] @ coef
        return np.clip(out, 0.05, None)


@sklearn_factory("seasonal_decomposition")
def _seasonal_decomposition(params: dict[str, Any]) -> SeasonalDecomposition:
    return SeasonalDecomposition(**params)


# --------------------------------------------------------------------------- log-log elasticity (mdl-012)


class LogLogElasticity:
    """Own-price elasticity per product: log-log regression with controls, partially pooled by category.

    Per product p and week t::

        log units_pt = a_p + e_p log price_pt + g_p log comp_pt + b_p t
                       + d_p display_pt + f_p feature_pt + FE[category, t] + noise

    The category x week fixed effects (season, holidays, anything common to a
    category) and the per-product regressions are fitted by alternating
    (backfitting) least squares; weeks of the launch ramp are left out. Every
    slope of a product is a random effect around its category's mean: each
    product's regression is a ridge regression towards the category means, with
    penalty ``sigma_p^2 / tau_c^2`` where ``tau_c^2`` (the between-product
    variance of that slope in the category) is estimated from the data by
    EM steps between the backfitting sweeps (empirical Bayes, ``tau >= min_tau``). So a product with little price
    variation borrows from its category, one with a lot keeps its own estimate.
    ``predict(X)`` returns the elasticity of each row's product (its category's
    mean for a product not seen in training, the overall mean for an unknown category).
    """

    controls = ("log_price", "log_comp_price", "trend", "promo_display", "promo_feature")

    def __init__(
        self,
        *,
        min_weeks: int = 8,
        ramp_weeks: float = 10.0,
        iterations: int = 20,
        pool: bool = True,
        min_tau: float = 0.02,
    ) -> None:
        self.min_weeks = min_weeks
        self.ramp_weeks = ramp_weeks
        self.iterations = iterations
        self.pool = pool
        self.min_tau = min_tau

    def _frame(self, X: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                "product_id": X["product_id"].to_numpy().astype("int64"),
                "category_code": X["category_code"].to_numpy().astype("int64"),
                "week": np.round(X["week_index"].to_numpy()).astype("int64"),
                "log_price": X["log_price"].to_numpy(dtype="float64"),
                "log_comp_price": X["log_comp_price"].to_numpy(dtype="float64"),
                "promo_display": X["promo_display"].to_numpy(dtype="float64"),
                "promo_feature": X["promo_feature"].to_numpy(dtype="float64"),
                "age": X["age_weeks"].to_numpy(dtype="float64"),
                "units": np.asarray(y, dtype="float64"),
            }
        )
        df = df[(df["age"] >= self.ramp_weeks) & (df["units"] > 0) & np.isfinite(df["log_price"])]
        df = df.assign(z=np.log(df["units"]), trend=df["week"] / 52.0)
        # Centre the regressors per product so intercepts carry the level and slopes are comparable.
        # A week without a competitor scrape takes the product's mean competitor price (no information).
        grouped = df.groupby("product_id")
        df["log_comp_price"] = df["log_comp_price"].fillna(grouped["log_comp_price"].transform("mean")).fillna(0.0)
        for col in ("log_price", "log_comp_price", "trend"):
            df[col] = df[col] - df.groupby("product_id")[col].transform("mean")
        counts = df.groupby("product_id")["z"].transform("size")
        return df[counts >= self.min_weeks].reset_index(drop=True)

    def _fit_products(
        self, df: pd.DataFrame, target: np.ndarray, prior: dict[int, np.ndarray], tau2: dict[int, np.ndarray]
    ) -> tuple[np.ndarray, pd.DataFrame]:
        """Ridge-to-prior regression per product: fitted values, and slopes with standard errors."""
        fitted = np.zeros(len(df))
        design = df[list(self.controls)].to_numpy()
        cats = df["category_code"].to_numpy()
        k = len(self.controls)
        rows = []
        for pid, idx in df.groupby("product_id").indices.items():
            a = np.column_stack([np.ones(len(idx)), design[idx]])
            z = target[idx]
            cat = int(cats[idx[0]])
            # Residual variance from plain OLS, so the penalty does not feed back into sigma^2.
            coef0, *_ = np.linalg.lstsq(a, z, rcond=None)
            dof = max(len(idx) - a.shape[1], 1)
            sigma2 = max(float(np.sum((z - a @ coef0) ** 2)) / dof, 1e-4)
            gram = a.T @ a
            rhs = a.T @ z
            if self.pool and cat in prior:
                lam = np.r_[0.0, sigma2 / tau2[cat]]
                gram = gram + np.diag(lam)
                rhs = rhs + lam * np.r_[0.0, prior[cat]]
            else:
                gram = gram + np.diag(np.r_[0.0, np.full(k, 1e-6)])
            inv = np.linalg.pinv(gram)
            coef = inv @ rhs
            fitted[idx] = a @ coef
            se = np.sqrt(np.maximum(np.diag(sigma2 * inv)[1:], 1e-12))
            rows.append((pid, cat, *coef[1:], *se))
        names = list(self.controls)
        return fitted, pd.DataFrame(rows, columns=["product_id", "category_code", *names, *[f"se_{n}" for n in names]])

    def _hyper(self, stats: pd.DataFrame) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Per category: mean and between-product variance of every slope (an EM step).

        With the products' posterior means ``b_p`` and variances ``s_p^2`` the
        update is ``m_c = mean(b_p)``, ``tau_c^2 = var(b_p) + mean(s_p^2)``.
        """
        names = list(self.controls)
        prior, tau2 = {}, {}
        for code, g in stats.groupby("category_code"):
            values = g[names].to_numpy()
            se2 = g[[f"se_{n}" for n in names]].to_numpy() ** 2
            prior[int(code)] = values.mean(axis=0)
            tau2[int(code)] = np.maximum(values.var(axis=0) + se2.mean(axis=0), self.min_tau**2)
        return prior, tau2

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LogLogElasticity:
        df = self._frame(X, y)
        if df.empty:
            raise ValueError(f"no product has {self.min_weeks} usable weeks; lower min_weeks or give more history")
        z = df["z"].to_numpy()
        cell = df.groupby(["category_code", "week"]).ngroup().to_numpy()
        fixed = np.zeros(len(df))
        prior: dict[int, np.ndarray] = {}
        tau2: dict[int, np.ndarray] = {}
        for _ in range(self.iterations):
            fitted, stats = self._fit_products(df, z - fixed, prior, tau2)
            resid = z - fitted
            fe = np.bincount(cell, weights=resid) / np.bincount(cell)
            fixed = fe[cell] - np.mean(fe[cell])
            prior, tau2 = self._hyper(stats)
        self.stats_ = stats
        self.category_mean_: dict[int, float] = {c: float(v[0]) for c, v in prior.items()}
        self.overall_mean_ = float(stats["log_price"].mean())
        self.elasticity_: dict[int, float] = dict(
            zip(stats["product_id"].astype(int), stats["log_price"].astype(float), strict=True)
        )
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        pid = X["product_id"].to_numpy().astype("int64")
        cat = X["category_code"].to_numpy()
        fallback = np.array([self.category_mean_.get(int(c), self.overall_mean_) for c in cat], dtype="float64")
        own = pd.Series(pid).map(self.elasticity_).to_numpy(dtype="float64")
        return np.where(np.isfinite(own), own, fallback)


@sklearn_factory("loglog_elasticity")
def _loglog_elasticity(params: dict[str, Any]) -> LogLogElasticity:
    return LogLogElasticity(**params)


# --------------------------------------------------------------------------- T-learner (mdl-016)


class TLearner:
    """Uplift of a treatment as the difference of two outcome models (treated vs control).

    ``X`` holds the ``treatment`` column (1 = treated) and the covariates;
    ``fit`` trains one ``HistGradientBoostingRegressor`` on the treated rows and
    one on the others, each on every column but ``treatment``. ``predict(X)``
    is ``mu1(X) - mu0(X)``: the effect of treating each row. Columns named in
    ``categorical`` are passed to the regressors as categorical (negative codes
    mean unknown).
    """

    def __init__(
        self,
        *,
        treatment: str = "on_promo",
        categorical: tuple[str, ...] | list[str] = (),
        learning_rate: float = 0.05,
        max_iter: int = 300,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        random_state: int = 7,
    ) -> None:
        self.treatment = treatment
        self.categorical = tuple(categorical)
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def _covariates(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.drop(columns=[self.treatment]).astype("float64")
        for col in self.categorical:
            out[col] = out[col].where(out[col] >= 0)
        return out

    def _regressor(self, columns: list[str]) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor

        mask = [c in self.categorical for c in columns]
        return HistGradientBoostingRegressor(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features=mask if any(mask) else None,
            random_state=self.random_state,
        )

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> TLearner:
        if self.treatment not in X.columns:
            raise ValueError(f"treatment column '{self.treatment}' is not among the features: {list(X.columns)}")
        treated = X[self.treatment].to_numpy() > 0.5
        if treated.all() or not treated.any():
            raise ValueError(f"the T-learner needs treated and control rows, got {int(treated.sum())} treated")
        cov = self._covariates(X)
        y = np.asarray(y, dtype="float64")
        self.feature_names_ = list(cov.columns)
        self.model_treated_ = self._regressor(self.feature_names_).fit(cov[treated], y[treated])
        self.model_control_ = self._regressor(self.feature_names_).fit(cov[~treated], y[~treated])
        return self

    def predict_outcomes(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(control outcome, treated outcome) of each row."""
        cov = self._covariates(X)
        return self.model_control_.predict(cov), self.model_treated_.predict(cov)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        mu0, mu1 = self.predict_outcomes(X)
        return mu1 - mu0


@sklearn_factory("t_learner")
def _t_learner(params: dict[str, Any]) -> TLearner:
    return TLearner(**params)


# --------------------------------------------------------------------------- price policy (mdl-011)


def recommend_price(
    predict_units: Callable[[pd.DataFrame], np.ndarray],
    rows: pd.DataFrame,
    *,
    lower: float = 0.8,
    upper: float = 1.2,
    grid: int = 21,
    method: str = "curve",
    list_column: str = "list_price",
) -> np.ndarray:
    """Revenue-maximising multiple of the list price for each row, within ``[lower, upper]``.

    ``predict_units`` maps raw rows (a feature view's inputs) to expected units.
    Each row is priced at an even grid of multiples (without a promotion) and:

    - ``method="grid"``: the multiple with the highest ``price x predicted units`` wins;
    - ``method="curve"`` (default): a constant-elasticity curve ``log units = a + e log m``
      is fitted to the predictions at the multiples ``<= 1`` (list price and below,
      where the training data hold the price cuts of promotions), and revenue
      ``m^(1 + e)`` is maximised over ``[lower, upper]``: ``lower`` when demand is
      elastic (``e < -1``), ``upper`` when it is not. A tree model's demand is a
      step function that stays flat beyond the highest price it has seen, so the
      plain grid search over-rates prices above list; the curve does not.

    Example:
        >>> rows = pd.DataFrame({"list_price": [10.0, 10.0], "elasticity": [-0.5, -2.0]})
        >>> units = lambda r: (r["list_price"] / 10.0) ** r["elasticity"]
        >>> recommend_price(units, rows, grid=5).tolist()
        [1.2, 0.8]
        >>> recommend_price(units, rows, grid=5, method="grid").tolist()
        [1.2, 0.8]
    """
    if not 0 < lower <= 1.0 <= upper:
        raise ValueError(f"bounds must satisfy 0 < lower <= 1 <= upper, got lower={lower}, upper={upper}")
    if grid < 3:
        raise ValueError(f"grid must have at least 3 points, got {grid}")
    if method not in ("curve", "grid"):
        raise ValueError(f"method must be 'curve' or 'grid', got {method!r}")
    multiples = np.unique(np.r_[np.linspace(lower, upper, grid), 1.0])
    if method == "curve":
        multiples = multiples[multiples <= 1.0]
        if len(multiples) < 2:  # lower == 1: no price cut to learn the slope from
            multiples = np.array([1.0, upper])
    base = rows.reset_index(drop=True)
    list_price = base[list_column].to_numpy(dtype="float64")
    candidates = []
    for m in multiples:
        cand = base.assign(**{list_column: list_price * m})
        if "discount_pct" in cand.columns:
            cand["discount_pct"] = 0.0
        if "promo_type" in cand.columns:
            cand["promo_type"] = "none"
        candidates.append(cand)
    units = np.asarray(predict_units(pd.concat(candidates, ignore_index=True)), dtype="float64")
    units = units.reshape(len(multiples), len(base))
    if method == "grid":
        revenue = units * multiples[:, None] * list_price[None, :]
        # Among (numerically) tied optima prefer the multiple closest to 1: no price move without a gain.
        closeness = -np.abs(multiples - 1.0)[:, None] * 1e-9 * np.abs(revenue).max(initial=1.0)
        return multiples[np.argmax(revenue + closeness, axis=0)]
    x = np.log(multiples) - np.log(multiples).mean()
    logu = np.log(np.maximum(units, 1e-9))
    slope = (x[:, None] * (logu - logu.mean(axis=0))).sum(axis=0) / (x**2).sum()
    return np.where(slope < -1.0, lower, np.where(slope > -1.0, upper, 1.0))
