"""Customer events: order and feedback rows expanded from the weekly counts of ``customers.py``.

``customers.py`` decides, per customer and week, how many orders (online, late) and feedback
items (per sentiment class) happen; this module turns the counts into rows, in time order,
drawing every per-row attribute from one fixed-width block of uniforms so the rows before a
drift start never change:

    ordered_at  = week start + U(0, 7 days)
    amount      = basket_i * exp(AMOUNT_SIGMA * z - AMOUNT_SIGMA**2 / 2),  z ~ N(0, 1)
    category    ~ pref_i;  discount = amount * U(5%, 30%) w.p. discount_affinity_i, else 0
    n_items     = 1 + floor(Exp(1) * amount / 30)
    delay_days  = 3 + floor(Exp(1) * 2) for late deliveries, else 0 (72%), 1 (26%) or 2 (2%)
    feedback    text from ``feedback.compose`` for the item's class, created_at = week start + U(0, 7 days)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from raycore.data.world import feedback
from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.drift import NEW_CATEGORY, DriftSpec, active, record_drift
from raycore.data.world.mess import MessRates, make_messy
from raycore.data.world.products import CATEGORIES

__all__ = ["AMOUNT_SIGMA", "FEEDBACK_MESS", "ORDERS_MESS", "expand_counts", "feedback_rows", "order_rows"]

AMOUNT_SIGMA = 0.30
FEEDBACK_CHANNELS = ("app", "web", "email", "store")
ORDERS_MESS = MessRates(
    missing=0.01, outlier=0.003, malformed=0.002, unknown_category=0.005, late=0.02, duplicate=0.01
)
FEEDBACK_MESS = MessRates(
    missing=0.01, malformed=0.005, unknown_category=0.01, late=0.02, duplicate=0.01
)


def _stream(config: WorldConfig, name: str) -> np.random.Generator:
    """A sub-stream of the customers domain for draws whose size depends on earlier draws."""
    return domain_rng(config, f"customers/{name}")


def expand_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a (week x customer) count matrix, in time order: week, customer, rank within the cell."""
    t_idx, c_idx = np.nonzero(counts)
    per_cell = counts[t_idx, c_idx]
    starts = np.cumsum(per_cell) - per_cell
    rank = np.arange(int(per_cell.sum())) - np.repeat(starts, per_cell)
    return np.repeat(t_idx, per_cell), np.repeat(c_idx, per_cell), rank


def order_rows(
    config: WorldConfig,
    world: World,
    *,
    mats: dict[str, np.ndarray],
    week_ns: np.ndarray,
    basket: np.ndarray,
    discount_affinity: np.ndarray,
    pref_cdf: np.ndarray,
    home_store: np.ndarray,
    drift: DriftSpec | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The orders table (messy) and orders_truth from the weekly order counts of ``customers.py``."""
    row_t, row_c, rank = expand_counts(mats["orders"])
    is_online = rank < mats["online"][row_t, row_c]
    is_late = rank < mats["late"][row_t, row_c]
    m = len(row_t)
    u = _stream(config, "orders").random((m, 8))  # one fixed block per row: drift-stable
    ordered_ns = week_ns[row_t] + (u[:, 0] * 7 * 86400).astype(np.int64) * 10**9
    order = np.argsort(ordered_ns, kind="stable")
    row_t, row_c, is_online, is_late, ordered_ns, u = (
        a[order] for a in (row_t, row_c, is_online, is_late, ordered_ns, u)
    )
    amount = basket[row_c] * np.exp(
        AMOUNT_SIGMA * ndtri(np.clip(u[:, 1], 1e-12, 1 - 1e-12)) - AMOUNT_SIGMA**2 / 2
    )
    drifted = np.zeros(m, dtype=bool)
    channel = np.where(is_online, "online", "store").astype(object)
    if d := active(drift, "orders", "amount"):
        drifted = d.after(ordered_ns.astype("datetime64[ns]"))
        amount = np.where(drifted, amount * (1 + d.magnitude), amount)
        record_drift(world, d, table="orders", column="amount", rows_affected=int(drifted.sum()))
    if d := active(drift, "orders", "channel"):
        hit = d.after(ordered_ns.astype("datetime64[ns]")) & (
            _stream(config, "orders/drift").random(m) < d.magnitude
        )
        channel[hit] = NEW_CATEGORY[("orders", "channel")]
        drifted = drifted | hit
        record_drift(world, d, table="orders", column="channel", rows_affected=int(hit.sum()))
    category = np.minimum((u[:, 2, None] > pref_cdf[row_c]).sum(axis=1), len(CATEGORIES) - 1)
    discount = np.where(u[:, 3] < discount_affinity[row_c], amount * (0.05 + 0.25 * u[:, 4]), 0.0)
    n_items = 1 + np.floor(-np.log1p(-u[:, 5]) * amount / 30.0).astype(np.int64)
    delay = np.where(
        is_late,
        3 + np.floor(-np.log1p(-u[:, 6]) * 2.0),
        (u[:, 7] < 0.28).astype(float) + (u[:, 7] < 0.02),
    )
    order_id = np.arange(1, m + 1, dtype="int64")
    clean = pd.DataFrame(
        {
            "order_id": order_id,
            "customer_id": row_c.astype("int64") + 1,
            "store_id": home_store[row_c],
            "channel": channel,
            "ordered_at": ordered_ns.astype("datetime64[ns]"),
            "category": np.asarray(CATEGORIES, dtype=object)[category],
            "amount": np.round(amount, 2),
            "discount_amount": np.round(discount, 2),
            "n_items": n_items,
            "delivery_delay_days": np.where(is_online, delay, np.nan),
        }
    )
    truth = pd.DataFrame(
        {
            "order_id": order_id,
            "customer_id": clean["customer_id"],
            "ordered_at": clean["ordered_at"],
            "amount": clean["amount"],
            "is_late_delivery": is_late,
            "drifted": drifted,
        }
    )
    messy = make_messy(
        clean,
        config=config,
        table="orders",
        rates=ORDERS_MESS,
        event_column="ordered_at",
        missing=["category", "discount_amount"],
        outlier=["amount"],
        malformed=["amount"],
        unknown=["category"],
    )
    return messy, truth


def feedback_rows(
    config: WorldConfig, *, mats: dict[str, np.ndarray], week_ns: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feedback table (messy) and feedback_truth from the weekly class counts of ``customers.py``."""
    neg, neu = mats["negative"], mats["neutral"]
    row_t, row_c, rank = expand_counts(neg + neu + mats["positive"])
    n_neg, n_neu = neg[row_t, row_c], neu[row_t, row_c]
    cls = (rank >= n_neg).astype(np.int64) + (rank >= n_neg + n_neu)
    m = len(row_t)
    sat = mats["sat"][row_t, row_c].astype("float64")
    prior = feedback.class_shares(feedback.sentiment_probabilities(sat, mats["late"][row_t, row_c]))
    composed = feedback.compose(classes=cls, prior=prior, rng=_stream(config, "feedback/text"))
    u = _stream(config, "feedback/rows").random((m, 2))
    created_ns = week_ns[row_t] + (u[:, 0] * 7 * 86400).astype(np.int64) * 10**9
    order = np.argsort(created_ns, kind="stable")
    fid = np.arange(1, m + 1, dtype="int64")
    labels = np.asarray(feedback.SENTIMENTS, dtype=object)
    clean = pd.DataFrame(
        {
            "feedback_id": fid,
            "customer_id": row_c[order].astype("int64") + 1,
            "created_at": created_ns[order].astype("datetime64[ns]"),
            "channel": np.asarray(FEEDBACK_CHANNELS, dtype=object)[
                np.minimum((u[order, 1] * 4).astype(int), 3)
            ],
            "text": composed.text[order],
            "sentiment": labels[cls[order]],
        }
    )
    post = composed.posterior[order]
    truth = pd.DataFrame(
        {
            "feedback_id": fid,
            "true_sentiment": labels[cls[order]],
            "p_negative": post[:, 0],
            "p_neutral": post[:, 1],
            "p_positive": post[:, 2],
            "is_ambiguous": composed.ambiguous[order],
            "satisfaction": sat[order],
        }
    )
    messy = make_messy(
        clean,
        config=config,
        table="feedback",
        rates=FEEDBACK_MESS,
        event_column="created_at",
        base_lag=pd.Timedelta(minutes=10),
        missing=["text", "sentiment"],
        malformed=["text"],
        unknown=["channel"],
    )
    return messy, truth
