"""Next-best-action offers: an offer catalog and the sessions in which customers saw offers.

Offer o has a type, a product category and a discount. A session shows OFFERS_PER_SESSION
distinct offers (uniform random subset, random positions) to a customer who has signed up.
Acceptance of offer o by customer i at position k (traits from ``customers_truth``):

    u_io = ACCEPT_INTERCEPT + alpha_o + TYPE_AFFINITY[segment_i, type_o]
           + PREF_COEF * (pref_i[category_o] - 1/6) + DISCOUNT_COEF * discount_affinity_i * discount_o / 10
           - POSITION_COEF * (k - 1)
    accepted ~ Bernoulli(sigmoid(u_io)),   alpha_o ~ N(0, 0.3)

``offer_impressions_truth.accept_probability`` = sigmoid(u_io) is the oracle ranking score:
ranking a session's offers by it gives the oracle NDCG@3. Everything a model needs is
observable: the segment through behaviour, the category preference through past orders,
the discount affinity through past discount use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.customers import SEGMENTS
from raycore.data.world.mess import MessRates, make_messy
from raycore.data.world.products import CATEGORIES

__all__ = ["IMPRESSIONS_MESS", "OFFER_TYPES", "generate_offers"]

OFFER_TYPES = ("percent_off", "free_shipping", "bundle", "loyalty_points", "new_arrival")
N_OFFERS, OFFERS_PER_SESSION = 18, 6
TYPE_AFFINITY = np.array(  # rows: SEGMENTS, columns: OFFER_TYPES
    [
        [1.8, 0.4, 0.7, -0.6, -1.5],
        [-0.3, 0.3, 0.3, 1.8, 0.4],
        [-1.5, 0.7, -0.6, 0.3, 1.8],
        [0.7, 1.2, 0.0, -0.9, 0.0],
    ]
)
ACCEPT_INTERCEPT, PREF_COEF, DISCOUNT_COEF, POSITION_COEF = -2.7, 8.0, 0.8, 0.12
IMPRESSIONS_MESS = MessRates(missing=0.005, late=0.02, duplicate=0.01)


def generate_offers(config: WorldConfig, world: World) -> None:
    """Add offers and offer_impressions (+ truth) to ``world``.

    Example:
        >>> generate_offers(WorldConfig(), world)  # doctest: +SKIP  (after customers)
    """
    rng = domain_rng(config, "offers")
    otype = np.arange(N_OFFERS) % len(OFFER_TYPES)
    ocat = rng.integers(0, len(CATEGORIES), N_OFFERS)
    discount = np.where(np.isin(otype, (0, 2)), rng.choice([10, 15, 20, 25, 30], N_OFFERS), 0)
    alpha = rng.normal(0.0, 0.3, N_OFFERS)
    offers = pd.DataFrame(
        {
            "offer_id": np.arange(1, N_OFFERS + 1, dtype="int64"),
            "offer_type": np.asarray(OFFER_TYPES, dtype=object)[otype],
            "category": np.asarray(CATEGORIES, dtype=object)[ocat],
            "discount_pct": discount.astype("float64"),
            "channel": np.asarray(("app", "email", "web"), dtype=object)[
                rng.integers(0, 3, N_OFFERS)
            ],
        }
    )

    cust = world.truth["customers_truth"]
    signup = (
        world.tables["customers"]
        .drop_duplicates("customer_id")
        .set_index("customer_id")["signup_at"]
    )
    n = config.size("n_offer_sessions")
    n_days = config.size("n_weeks") * 7
    start_ns = pd.Timestamp(config.start).value
    shown_ns = np.sort(start_ns + (rng.uniform(0, n_days, n) * 86400).astype(np.int64) * 10**9)
    # a session goes to a customer who had signed up by then (draw, then redraw the few who had not)
    ci = rng.integers(0, len(cust), n)
    signed = (
        signup.reindex(cust["customer_id"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
    )
    for _ in range(5):  # a few redraws, vectorised over sessions
        bad = signed[ci] > shown_ns
        ci = np.where(bad, rng.integers(0, len(cust), n), ci)
    keys = rng.random((n, N_OFFERS))
    shown = np.argsort(keys, axis=1)[
        :, :OFFERS_PER_SESSION
    ]  # (n, 6) offer indices in position order
    seg = pd.Categorical(cust["segment"], categories=list(SEGMENTS)).codes[ci]
    pref = cust[[f"pref_{c}" for c in CATEGORIES]].to_numpy()[ci]
    disc_aff = cust["discount_affinity"].to_numpy()[ci]
    pos = np.arange(OFFERS_PER_SESSION)[None, :]
    util = (
        ACCEPT_INTERCEPT
        + alpha[shown]
        + TYPE_AFFINITY[seg[:, None], otype[shown]]
        + PREF_COEF * (np.take_along_axis(pref, ocat[shown], axis=1) - 1 / len(CATEGORIES))
        + DISCOUNT_COEF * disc_aff[:, None] * discount[shown] / 10
        - POSITION_COEF * pos
    )
    p = expit(util)
    accepted = rng.random(p.shape) < p
    m = n * OFFERS_PER_SESSION
    imp_id = np.arange(1, m + 1, dtype="int64")
    impressions = pd.DataFrame(
        {
            "impression_id": imp_id,
            "session_id": np.repeat(np.arange(1, n + 1, dtype="int64"), OFFERS_PER_SESSION),
            "customer_id": np.repeat(cust["customer_id"].to_numpy()[ci], OFFERS_PER_SESSION).astype(
                "int64"
            ),
            "offer_id": shown.ravel().astype("int64") + 1,
            "shown_at": np.repeat(shown_ns, OFFERS_PER_SESSION).astype("datetime64[ns]"),
            "position": np.tile(np.arange(1, OFFERS_PER_SESSION + 1, dtype="int64"), n),
            "accepted": accepted.ravel().astype("int8"),
        }
    )
    world.tables["offers"] = offers
    world.tables["offer_impressions"] = make_messy(
        impressions,
        config=config,
        table="offer_impressions",
        rates=IMPRESSIONS_MESS,
        event_column="shown_at",
        base_lag=pd.Timedelta(minutes=15),
        missing=["position"],
    )
    world.truth["offer_impressions_truth"] = pd.DataFrame(
        {"impression_id": imp_id, "accept_probability": p.ravel()}
    )
