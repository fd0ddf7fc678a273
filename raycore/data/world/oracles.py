"""Ex-ante oracles: the Bayes-optimal prediction given the world's latent state at prediction time.

A hindsight truth column (``defect_rate_per_1000``, ``expected_turnover``) conditions on noise drawn
after the moment a model predicts: the week's own line innovation, the quarter's demand shocks and
the stock path they produce. No model can know those, so a model's ratio to such an oracle
understates how close it is to the best possible forecast. The ex-ante columns built here condition
only on what the simulator knows when the prediction is made and take the expectation (or the
metric's optimal point) over everything drawn later:

    defect rate (Poisson deviance: the conditional mean is optimal), with z_lt = AR z_l,t-1 + e_lt,
    e_lt ~ N(0, s):   E[rate_lt | state through t-1, week t's covariates] = exp(ln rate_lt - e_lt + s**2 / 2)

    turnover (MAPE: the median of the label weighted by 1 / label is optimal): the quarter's 13
    weeks simulated ``n_paths`` times from the stock state at the quarter's start, with fresh demand
    shocks, negative binomial store demand and late purchase orders, through the same order-up-to
    policy the generator runs (``OrderUpToPolicy``, shared with ``inventory.py``).

The Monte Carlo draws from a stream of its own, so adding or resizing it changes no other value.

Example:
    >>> import numpy as np
    >>> mape_optimal_point(np.array([[1.0], [2.0], [4.0]]))  # weights 1, 1/2, 1/4
    array([1.])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OrderUpToPolicy",
    "QuarterStart",
    "ex_ante_defect_rate",
    "mape_optimal_point",
    "negative_binomial",
    "simulate_turnover",
    "turnover_paths",
]


def ex_ante_defect_rate(
    *, log_rate: np.ndarray, innovation: np.ndarray, noise_sd: float
) -> np.ndarray:
    """E[exp(ln rate) | everything but the week's own innovation e ~ N(0, noise_sd)].

    ``ln rate - e`` is known before the week's report (the AR(1) state of last week, the week's
    covariates); ``E[exp(e)] = exp(noise_sd**2 / 2)``.

    Example:
        >>> float(ex_ante_defect_rate(log_rate=np.array([0.1]), innovation=np.array([0.1]), noise_sd=0.0)[0])
        1.0
    """
    if np.shape(log_rate) != np.shape(innovation):
        raise ValueError(
            f"log_rate {np.shape(log_rate)} and innovation {np.shape(innovation)} must have one shape"
        )
    if noise_sd < 0:
        raise ValueError(f"noise_sd ({noise_sd}) must be >= 0")
    return np.exp(np.asarray(log_rate) - np.asarray(innovation) + noise_sd**2 / 2)


@dataclass(frozen=True)
class OrderUpToPolicy:
    """The weekly replenishment of one tracked product in one store (arrays broadcast over both).

    Order-up-to ``ceil(f * 2 * cover)`` against stock on hand plus on order; ``f`` is the planner's
    exponentially smoothed sales; an order arrives next week, or in two weeks when late.
    """

    cover: np.ndarray

    def step(
        self,
        *,
        on_hand_end: np.ndarray,
        forecast: np.ndarray,
        arriving: np.ndarray,
        arriving_next: np.ndarray,
        demand: np.ndarray,
        late: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """One week: returns (start, sold, order, on_hand_end, forecast, arriving, arriving_next).

        ``arriving`` is received at the start of this week, ``arriving_next`` a week later; ``late``
        (bool, broadcast against the stock arrays) sends this week's order two weeks ahead.

        Example:
            >>> p = OrderUpToPolicy(cover=np.array([1.0]))
            >>> z = np.zeros(1)
            >>> [float(a[0]) for a in p.step(on_hand_end=np.array([3.0]), forecast=np.array([2.0]),
            ...     arriving=z, arriving_next=z, demand=np.array([5.0]), late=np.array([False]))]
            [3.0, 3.0, 5.0, 0.0, 2.25, 5.0, 0.0]
        """
        start = on_hand_end + arriving
        sold = np.minimum(demand, start)
        on_hand_end = start - sold
        forecast = 0.75 * forecast + 0.25 * sold
        order = np.maximum(0.0, np.ceil(forecast * 2 * self.cover) - on_hand_end - arriving_next)
        on_time = np.where(late, 0.0, order)
        return (
            start,
            sold,
            order,
            on_hand_end,
            forecast,
            arriving_next + on_time,
            order - on_time,
        )


@dataclass(frozen=True)
class QuarterStart:
    """Stock state of every tracked product x store when each quarter starts: arrays (Q, P, S)."""

    on_hand_end: np.ndarray  # stock at the end of the week before the quarter
    forecast: np.ndarray  # planner's smoothed sales then
    arriving: np.ndarray  # received in the quarter's first week
    arriving_next: np.ndarray  # received in its second week (last week's late order)


def simulate_turnover(
    *,
    policy: OrderUpToPolicy,
    state: QuarterStart,
    demand: Iterable[np.ndarray],
    late: np.ndarray,
    week_valid: np.ndarray,
) -> np.ndarray:
    """Turnover label of given demand and lateness paths: weeks x mean sold / mean on hand at week start.

    ``demand`` yields one (R, Q, P, S) array per week of the quarter, ``late`` is (R, Q, W, P)
    and ``week_valid`` (Q, W) masks weeks past the world's end (a partial last quarter). Returns
    (R, Q, P): the label as the feature view computes it from a complete store_inventory_weekly.

    Example:
        >>> pol = OrderUpToPolicy(cover=np.ones((1, 1)))
        >>> st = QuarterStart(*(np.full((1, 1, 1), v) for v in (4.0, 2.0, 0.0, 0.0)))
        >>> d = np.full((2, 1, 1, 1, 1), 2.0)  # weeks first
        >>> simulate_turnover(policy=pol, state=st, demand=d, late=np.zeros((1, 1, 2, 1), bool),
        ...                   week_valid=np.ones((1, 2), bool)).ravel()
        array([1.])
    """
    n_weeks = week_valid.shape[1]
    if late.shape[1:3] != week_valid.shape:
        raise ValueError(
            f"late {late.shape} must be (R, Q, W, P) with (Q, W) = week_valid {week_valid.shape}"
        )
    oh, f, a0, a1 = state.on_hand_end, state.forecast, state.arriving, state.arriving_next
    sold_sum = np.zeros(late.shape[:2] + late.shape[3:])
    start_sum = np.zeros_like(sold_sum)
    weeks = 0
    for w, week_demand in enumerate(
        demand
    ):  # loop over weeks, vectorised over paths x quarters x products x stores
        if w >= n_weeks:
            raise ValueError(f"demand has more weeks than week_valid ({n_weeks})")
        start, sold, _, oh, f, a0, a1 = policy.step(
            on_hand_end=oh,
            forecast=f,
            arriving=a0,
            arriving_next=a1,
            demand=week_demand,
            late=late[:, :, w, :, None],
        )
        valid = week_valid[None, :, w, None]
        sold_sum += np.where(valid, sold.sum(axis=-1), 0.0)
        start_sum += np.where(valid, start.sum(axis=-1), 0.0)
        weeks += 1
    if weeks != n_weeks:
        raise ValueError(f"demand has {weeks} weeks, week_valid {n_weeks}")
    return week_valid.sum(axis=1)[None, :, None] * sold_sum / np.maximum(start_sum, 1e-9)


def turnover_paths(
    *,
    policy: OrderUpToPolicy,
    state: QuarterStart,
    expected_units: np.ndarray,
    store_weight: np.ndarray,
    affinity: np.ndarray,
    q_late: np.ndarray,
    week_valid: np.ndarray,
    shock_sigma: float,
    nb_k: float,
    n_paths: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Simulated turnover labels (R, Q, P) from each quarter's start, with demand drawn as the world does.

    ``expected_units`` (Q, W, P) is the national expected demand without its shock, ``q_late``
    (Q, W, P) the probability that the week's purchase order is late. Store demand is
    NegBin(mean expected_units * shock * weight_s * affinity_ps, dispersion nb_k), shock
    lognormal with mean 1 and log-sd ``shock_sigma``, independent per product-week. Quarters share
    the exponential draws behind the store demand (common random numbers: each quarter's paths are
    still independent draws of its own law, at a twelfth of the draws).

    Example:
        >>> pol = OrderUpToPolicy(cover=np.ones((1, 1)))
        >>> st = QuarterStart(*(np.full((1, 1, 1), v) for v in (4.0, 2.0, 0.0, 0.0)))
        >>> turnover_paths(policy=pol, state=st, expected_units=np.full((1, 2, 1), 2.0),
        ...     store_weight=np.ones(1), affinity=np.ones((1, 1)), q_late=np.zeros((1, 2, 1)),
        ...     week_valid=np.ones((1, 2), bool), shock_sigma=0.1, nb_k=6.0, n_paths=8,
        ...     rng=np.random.default_rng(0)).shape
        (8, 1, 1)
    """
    if n_paths < 1:
        raise ValueError(f"n_paths ({n_paths}) must be >= 1")
    if nb_k <= 0 or nb_k != round(nb_k):
        raise ValueError(
            f"nb_k ({nb_k}) must be a whole number >= 1: demand is drawn as a sum of nb_k geometric counts"
        )
    shape = (n_paths, *expected_units.shape)
    shock = np.exp(rng.normal(0.0, shock_sigma, shape) - shock_sigma**2 / 2)
    late = rng.random(shape) < q_late[None]
    n_weeks = expected_units.shape[1]
    exposures = rng.standard_exponential(
        (n_weeks, int(nb_k), n_paths, 1, *affinity.shape), dtype=np.float32
    )
    scale = (store_weight[None, :] * affinity).astype(np.float64)

    def weekly_demand() -> Iterator[np.ndarray]:
        for w in range(n_weeks):
            mu = (expected_units[None, :, w] * shock[:, :, w])[..., None] * scale
            yield negative_binomial(mean=mu, k=nb_k, exponentials=exposures[w])

    return simulate_turnover(
        policy=policy, state=state, demand=weekly_demand(), late=late, week_valid=week_valid
    )


def negative_binomial(*, mean: np.ndarray, k: float, exponentials: np.ndarray) -> np.ndarray:
    """NegBin draws with the given means and whole dispersion ``k`` (variance mean + mean**2 / k).

    The same law as the world's Poisson(mean * Gamma(k, 1 / k)), drawn as a sum of k geometric
    counts floor(E / ln(1 + k / mean)) from ``exponentials`` E ~ Exp(1) (k on axis 0, the rest
    broadcast against ``mean``): the exponentials do not depend on the mean, so they can be shared.

    Example:
        >>> e = np.random.default_rng(0).standard_exponential((6, 200_000))
        >>> d = negative_binomial(mean=np.full(200_000, 4.0), k=6.0, exponentials=e)
        >>> round(float(d.mean()), 1), round(float(d.var()), 0)
        (4.0, 7.0)
    """
    if exponentials.shape[0] != k:
        raise ValueError(f"exponentials has {exponentials.shape[0]} rows on axis 0, need k = {k}")
    mean = np.asarray(mean, dtype=np.float64)
    inv_rate = (1.0 / np.log1p(k / np.maximum(mean, 1e-300))).astype(np.float32)
    out = np.zeros(np.broadcast_shapes(mean.shape, exponentials.shape[1:]), dtype=np.float32)
    for (
        e
    ) in exponentials:  # failures before each of k successes, success probability k / (k + mean)
        out += np.floor(e * inv_rate)
    return np.where(mean > 0, out, 0.0).astype(np.float64)


def mape_optimal_point(labels: np.ndarray) -> np.ndarray:
    """The MAPE-optimal point of each column of simulated ``labels`` (paths on axis 0).

    E|y - p| / y is minimised by the median of y weighted by 1 / y; non-positive labels (rows the
    label view drops) are left out. A column without a positive label gives NaN.

    Example:
        >>> mape_optimal_point(np.array([[2.0, 3.0], [2.0, 3.0], [4.0, 0.0]]))
        array([2., 3.])
    """
    y = np.asarray(labels, dtype=np.float64)
    w = np.where(y > 0, 1.0 / np.where(y > 0, y, 1.0), 0.0)
    order = np.argsort(y, axis=0, kind="stable")
    ys = np.take_along_axis(y, order, axis=0)
    cw = np.cumsum(np.take_along_axis(w, order, axis=0), axis=0)
    total = cw[-1]
    idx = np.argmax(cw >= 0.5 * total[None], axis=0)
    point = np.take_along_axis(ys, idx[None], axis=0)[0]
    return np.where(total > 0, point, np.nan)
