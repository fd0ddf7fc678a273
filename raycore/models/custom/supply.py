"""Supply-chain estimators: route solvers for delivery runs, and stock levels from censored sales.

Routes (mdl-022):
A run starts at its depot (node 0) and visits every stop (nodes 1..n) once, on an
open path (the vehicle does not have to return). ``cost[i, j]`` is the cost of
driving from node ``i`` to node ``j`` (minutes from the ETA model, or km); it may
be asymmetric. :class:`RouteSolver` orders the stops by nearest neighbour and
improves the order with 2-opt reversals and or-opt moves (a segment of 1-3 stops
moved elsewhere) until none helps, restarting from the few stops nearest the
depot; :func:`held_karp` finds
the exact optimum by dynamic programming over subsets (O(2^n n^2), fine for
n <= 12), which is what the solver is gated against.

Stock levels (mdl-019): :class:`CensoredDemandQuantile`, a demand quantile
fitted on sales that stock-outs cut off (see its docstring); factory
``censored_demand_quantile``.

Example:
    >>> import numpy as np
    >>> xy = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [2.0, 0.0]])
    >>> cost = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    >>> RouteSolver().solve(cost)
    [1, 3, 2]
    >>> held_karp(cost)[0]
    3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import betainc
from scipy.stats import beta, nbinom

from raycore.models.factories import sklearn_factory

__all__ = [
    "CensoredDemandQuantile",
    "RouteSolver",
    "held_karp",
    "nearest_neighbour",
    "path_cost",
    "two_opt",
]

MAX_EXACT_STOPS = 14


def _check(cost: np.ndarray) -> np.ndarray:
    cost = np.asarray(cost, dtype="float64")
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] < 1:
        raise ValueError(f"cost must be a square (n + 1) x (n + 1) matrix, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost must be finite everywhere")
    return cost


def path_cost(cost: np.ndarray, order: Sequence[int]) -> float:
    """Cost of the open path depot (node 0) -> order[0] -> ... -> order[-1]."""
    nodes = np.r_[0, np.asarray(order, dtype="int64")]
    return float(np.asarray(cost)[nodes[:-1], nodes[1:]].sum())


def nearest_neighbour(cost: np.ndarray, *, first: int | None = None) -> list[int]:
    """From the depot (through ``first``, if given), always drive to the nearest stop not yet visited."""
    cost = _check(cost)
    n = cost.shape[0] - 1
    left = set(range(1, n + 1))
    here, order = 0, []
    if first is not None:
        order.append(first)
        left.remove(first)
        here = first
    while left:
        nxt = min(left, key=lambda j: (cost[here, j], j))
        order.append(nxt)
        left.remove(nxt)
        here = nxt
    return order


def _moves(n: int) -> list[tuple[str, int, int, int]]:
    """Every 2-opt reversal (i..j) and every or-opt move of a segment of 1-3 stops to position k."""
    moves = [("reverse", i, j, 0) for i in range(n - 1) for j in range(i + 1, n)]
    for length in (1, 2, 3):
        for i in range(n - length + 1):
            for k in range(n - length + 1):
                if k != i:
                    moves.append(("move", i, i + length, k))
    return moves


def _apply(order: list[int], move: tuple[str, int, int, int]) -> list[int]:
    kind, i, j, k = move
    if kind == "reverse":
        return order[:i] + order[i : j + 1][::-1] + order[j + 1 :]
    segment, rest = order[i:j], order[:i] + order[j:]
    return rest[:k] + segment + rest[k:]


def two_opt(cost: np.ndarray, order: Sequence[int], *, max_passes: int = 50) -> list[int]:
    """Improve the path by 2-opt reversals and or-opt segment moves until none helps (a local optimum)."""
    cost = _check(cost)
    best = list(order)
    best_cost = path_cost(cost, best)
    moves = _moves(len(best))
    for _ in range(max_passes):
        improved = False
        for move in moves:
            candidate = _apply(best, move)
            c = path_cost(cost, candidate)
            if c < best_cost - 1e-12:
                best, best_cost, improved = candidate, c, True
        if not improved:
            break
    return best


def held_karp(cost: np.ndarray) -> tuple[float, list[int]]:
    """The exact cheapest open path from the depot through every stop, and its order."""
    cost = _check(cost)
    n = cost.shape[0] - 1
    if n == 0:
        return 0.0, []
    if n > MAX_EXACT_STOPS:
        raise ValueError(f"held_karp is exponential: at most {MAX_EXACT_STOPS} stops, got {n}")
    c = cost[1:, 1:]
    full = 1 << n
    dp = np.full((full, n), np.inf)
    parent = np.full((full, n), -1, dtype="int64")
    for j in range(n):
        dp[1 << j, j] = cost[0, j + 1]
    bits = 1 << np.arange(n)
    for mask in range(1, full):
        row = dp[mask]
        if not np.isfinite(row).any():
            continue
        # cand[k] = min over j of dp[mask, j] + c[j, k]
        total = row[:, None] + c
        best_j = np.argmin(total, axis=0)
        cand = total[best_j, np.arange(n)]
        for k in np.flatnonzero((mask & bits) == 0):
            nxt = mask | int(bits[k])
            if cand[k] < dp[nxt, k]:
                dp[nxt, k] = cand[k]
                parent[nxt, k] = best_j[k]
    last = int(np.argmin(dp[full - 1]))
    total_cost = float(dp[full - 1, last])
    order, mask = [], full - 1
    while last >= 0:
        order.append(last + 1)
        prev = int(parent[mask, last])
        mask ^= 1 << last
        last = prev
    return total_cost, order[::-1]


@dataclass(frozen=True)
class RouteSolver:
    """Nearest neighbour + 2-opt / or-opt, restarted from the ``starts`` stops nearest the depot (picklable)."""

    starts: int = 3
    max_passes: int = 50

    def solve(self, cost: np.ndarray) -> list[int]:
        """The visiting order of stops 1..n (node 0 is the depot)."""
        cost = _check(cost)
        n = cost.shape[0] - 1
        if n == 0:
            return []
        firsts = [int(j) + 1 for j in np.argsort(cost[0, 1:], kind="stable")[: max(self.starts, 1)]]
        routes = [two_opt(cost, nearest_neighbour(cost, first=f), max_passes=self.max_passes) for f in firsts]
        return min(routes, key=lambda r: path_cost(cost, r))


# ---------------------------------------------------------------------------------------------
# Stock for a service level from censored sales (mdl-019)
# ---------------------------------------------------------------------------------------------


Objective = Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]


def _negbin_objective(y: np.ndarray, stock: np.ndarray, k: float) -> Objective:
    """Gradient and hessian of the negative log-likelihood of NegBin(mean e^f, shape k) under censoring.

    A week that sold its whole stock (``y >= stock``) only says demand >= stock:
    its likelihood is P(D >= stock) = I_x(stock, k) with x = mu / (k + mu).
    """
    sold_out = np.isfinite(stock) & (y >= stock) & (stock > 0)

    def objective(f: np.ndarray, _data: object) -> tuple[np.ndarray, np.ndarray]:
        mu = np.exp(f)
        grad = -k * (y - mu) / (k + mu)
        hess = k * mu / (k + mu)  # Fisher information of log mu
        if sold_out.any():
            m = mu[sold_out]
            x = m / (k + m)
            a = stock[sold_out]
            tail = np.maximum(betainc(a, k, x), 1e-300)
            dll = beta.pdf(x, a, k) * k / (k + m) ** 2 * m / tail  # d log P(D >= a) / d f
            grad[sold_out] = -dll
            hess[sold_out] = np.maximum(dll**2, 1e-6)  # outer-product approximation
        return grad, hess

    return objective


def _censored_loglik(y: np.ndarray, stock: np.ndarray, mu: np.ndarray, k: float) -> float:
    sold_out = np.isfinite(stock) & (y >= stock) & (stock > 0)
    p = k / (k + mu)
    ll = nbinom.logpmf(y, k, p)
    ll[sold_out] = np.log(np.maximum(betainc(stock[sold_out], k, (mu / (k + mu))[sold_out]), 1e-300))
    return float(ll.sum())


class CensoredDemandQuantile:
    """Weekly demand from censored sales, and the stock that covers it with a given probability.

    Sales are demand cut off at the stock on hand: a week that sold everything
    only says demand was at least the stock. A quantile regression on sales
    therefore under-covers demand. This estimator fits LightGBM on the
    *censored* negative-binomial likelihood of demand (mean ``exp(offset + f(x))``,
    shape ``k``), profiles ``k`` on a held-out share of the rows (so it also
    carries the uncertainty of the mean), and predicts the ``quantile`` of that
    predictive distribution: the stock for a ``quantile`` service level.

    ``censor_column`` (the stock at week start) is used only in ``fit``, never as
    a split feature; ``offset_column`` is the log demand level the model corrects.

    Example:
        >>> est = CensoredDemandQuantile(quantile=0.95, num_boost_round=50)   # doctest: +SKIP
        >>> est.fit(features, units_sold).predict(features)[:3]               # doctest: +SKIP
        array([12., 31.,  4.])
    """

    def __init__(
        self,
        *,
        quantile: float = 0.95,
        censor_column: str = "stock_on_hand",
        offset_column: str = "log_level",
        num_boost_round: int = 200,
        dispersion_share: float = 0.2,
        initial_shape: float = 4.0,
        seed: int = 7,
        **lgb_params: object,
    ) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {quantile}")
        if not 0.0 < dispersion_share < 0.5:
            raise ValueError(f"dispersion_share must be in (0, 0.5), got {dispersion_share}")
        self.quantile = quantile
        self.censor_column = censor_column
        self.offset_column = offset_column
        self.num_boost_round = num_boost_round
        self.dispersion_share = dispersion_share
        self.initial_shape = initial_shape
        self.seed = seed
        self.lgb_params = dict(lgb_params)

    def _split(self, x: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        features = x.drop(columns=[self.censor_column])
        offset = x[self.offset_column].to_numpy(dtype="float64")
        stock = x[self.censor_column].to_numpy(dtype="float64")
        return features, offset, np.where(np.isnan(stock), np.inf, stock)

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> CensoredDemandQuantile:
        features, offset, stock = self._split(x)
        y = np.asarray(y, dtype="float64")
        held = np.random.default_rng(self.seed).random(len(y)) < self.dispersion_share
        fit = ~held
        params = {"verbose": -1, "seed": self.seed, "num_threads": 1, **self.lgb_params}
        params["objective"] = _negbin_objective(y[fit], stock[fit], self.initial_shape)
        data = lgb.Dataset(features[fit], y[fit], init_score=offset[fit], free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=self.num_boost_round)
        mu = np.exp(booster.predict(features[held], raw_score=True) + offset[held])
        best = minimize_scalar(
            lambda log_k: -_censored_loglik(y[held], stock[held], mu, float(np.exp(log_k))),
            bounds=(np.log(0.2), np.log(200.0)),
            method="bounded",
        )
        self.shape_ = float(np.exp(best.x))
        self.model_ = booster.model_to_string()  # the booster's params hold the objective closure
        self.feature_names_ = list(features.columns)
        return self

    def _booster(self) -> lgb.Booster:
        if getattr(self, "_cached", None) is None:
            self._cached = lgb.Booster(model_str=self.model_)
        return self._cached

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_cached"}

    def predict_mean(self, x: pd.DataFrame) -> np.ndarray:
        """Expected demand (uncensored)."""
        features, offset, _ = self._split(x)
        raw = self._booster().predict(features[self.feature_names_].to_numpy(dtype="float64"), raw_score=True)
        return np.exp(raw + offset)

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        """The ``quantile`` of predicted demand: the stock for that service level."""
        mu = self.predict_mean(x)
        k = self.shape_
        return nbinom.ppf(self.quantile, k, k / (k + mu)).astype("float64")


@sklearn_factory("censored_demand_quantile")
def _censored_demand_quantile(params: dict[str, Any]) -> CensoredDemandQuantile:
    return CensoredDemandQuantile(**params)
