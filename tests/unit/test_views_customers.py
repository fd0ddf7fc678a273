"""Customer and operations views (mdl-002/003/004/005/007/008): no leakage, train = serve, estimators.

Runs on a small synthetic business built here (80 customers over 60 weeks), so every
expected value can be counted by hand; no data world, no Ray.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raycore.features import (
    SqliteOnlineStore,
    assemble_online,
    get_feature_view,
    materialize_online,
)
from raycore.features.view import AS_OF, FeatureView
from raycore.features.views.customers import (
    CATEGORIES,
    CUSTOMER_ORDER_STATS,
    INFRA_METRICS,
    OFFER_TYPES,
    SENTIMENTS,
    churn_label_rows,
    value_label_rows,
)
from raycore.models.custom.customers import (
    BehaviourGaussianMixture,
    ProfileIsolationForest,
    TermLogisticText,
)
from raycore.models.factories import make_sklearn
from raycore.training.evaluation import EvalContext, get_evaluator
from raycore.training.evaluators.customers import best_threshold_f1

WEEK = pd.Timedelta(days=7)
ORIGIN = pd.Timestamp("2024-01-01")  # a Monday
N_CUSTOMERS, N_WEEKS = 80, 60


def _business(seed: int = 0) -> dict[str, pd.DataFrame]:
    """Customers, orders, feedback, closures, offers and impressions, with late rows."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, N_CUSTOMERS + 1)
    signup = ORIGIN + pd.to_timedelta(rng.uniform(-300, 150, N_CUSTOMERS), unit="D")
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_at": signup,
            "acquisition_channel": rng.choice(
                ["search", "social", "referral", "store", "email"], N_CUSTOMERS
            ),
            "email_opt_in": rng.integers(0, 2, N_CUSTOMERS),
            "available_at": signup + pd.Timedelta(minutes=5),
        }
    )
    n = 5000
    cust = rng.integers(1, N_CUSTOMERS + 1, n)
    start = np.maximum(
        customers.set_index("customer_id").loc[cust, "signup_at"].to_numpy(), np.datetime64(ORIGIN)
    )
    ordered = pd.to_datetime(start) + pd.to_timedelta(rng.uniform(0, N_WEEKS * 7, n), unit="D")
    keep = ordered < ORIGIN + N_WEEKS * WEEK
    late = rng.random(n) < 0.05
    orders = pd.DataFrame(
        {
            "order_id": np.arange(1, n + 1),
            "customer_id": cust,
            "channel": np.where(rng.random(n) < 0.4, "online", "store"),
            "ordered_at": ordered,
            "category": rng.choice(list(CATEGORIES), n),
            "amount": np.round(np.exp(rng.normal(3.5, 0.5, n)), 2),
            "discount_amount": np.where(rng.random(n) < 0.3, 2.0, 0.0),
            "delivery_delay_days": rng.choice([0.0, 1.0, 4.0], n, p=[0.7, 0.2, 0.1]),
            "available_at": ordered
            + pd.Timedelta(hours=6)
            + pd.to_timedelta(np.where(late, 10.0, 0.0), unit="D"),
        }
    )[keep].reset_index(drop=True)
    m = 1500
    created = ORIGIN + pd.to_timedelta(rng.uniform(0, N_WEEKS * 7, m), unit="D")
    feedback = pd.DataFrame(
        {
            "feedback_id": np.arange(1, m + 1),
            "customer_id": rng.integers(1, N_CUSTOMERS + 1, m),
            "created_at": created,
            "text": "fine",
            "sentiment": rng.choice(list(SENTIMENTS), m),
            "available_at": created + pd.Timedelta(minutes=10),
        }
    )
    closed_ids = rng.choice(ids, 15, replace=False)
    closed = ORIGIN + pd.to_timedelta(rng.uniform(60, N_WEEKS * 7 - 5, 15), unit="D")
    closures = pd.DataFrame(
        {"customer_id": closed_ids, "closed_at": closed, "available_at": closed}
    )
    offers = pd.DataFrame(
        {
            "offer_id": np.arange(1, 7),
            "offer_type": [*OFFER_TYPES, "bundle"],
            "category": list(CATEGORIES),
            "discount_pct": [10.0, 0.0, 20.0, 0.0, 0.0, 15.0],
        }
    )
    sessions = 60
    shown = ORIGIN + pd.to_timedelta(rng.uniform(100, N_WEEKS * 7, sessions), unit="D")
    impressions = pd.DataFrame(
        {
            "impression_id": np.arange(1, 3 * sessions + 1),
            "session_id": np.repeat(np.arange(1, sessions + 1), 3),
            "customer_id": np.repeat(rng.integers(1, N_CUSTOMERS + 1, sessions), 3),
            "offer_id": np.concatenate(
                [rng.choice(np.arange(1, 7), 3, replace=False) for _ in range(sessions)]
            ),
            "shown_at": np.repeat(shown, 3),
            "accepted": rng.integers(0, 2, 3 * sessions),
        }
    )
    return {
        "customers": customers,
        "orders": orders,
        "feedback": feedback,
        "customer_closures": closures,
        "offers": offers,
        "offer_impressions": impressions,
    }


@pytest.fixture(scope="module")
def business() -> dict[str, pd.DataFrame]:
    return _business()


def _training_rows(
    view: FeatureView, source: str, business: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    assert view.label_rows is not None
    extras = {name: business[name] for name in view.label_sources}
    labels = (
        view.label_rows(business[source], extras) if extras else view.label_rows(business[source])
    )
    tables = {t.name: t.materialize(business[t.source]) for t in view.tables}
    return view.training_frame(labels, tables).rows


# --------------------------------------------------------------------------- feature tables


def test_order_snapshots_count_only_orders_known_by_the_snapshot(
    business: dict[str, pd.DataFrame],
) -> None:
    orders = business["orders"]
    table = CUSTOMER_ORDER_STATS.materialize(orders)
    assert (table["available_at"] == table["orders_week"]).all()
    for r in table.sample(150, random_state=0).itertuples():
        own = orders[
            (orders["customer_id"] == r.customer_id) & (orders["available_at"] <= r.orders_week)
        ]
        age = (r.orders_week - own["ordered_at"].dt.normalize()) // pd.Timedelta(days=1)
        age_weeks = (
            age + own["ordered_at"].dt.weekday
        ) // 7  # snapshot week minus the order's week
        assert r.n_orders_4 == (age_weeks <= 4).sum() and r.n_orders_13 == (age_weeks <= 13).sum()
        assert r.n_orders_52 == (age_weeks <= 52).sum() and r.n_orders_all == len(own)
        assert r.spend_52 == pytest.approx(own.loc[age_weeks <= 52, "amount"].sum())
        assert r.log_amount_all == pytest.approx(np.log(own["amount"]).sum())
        assert r.late_13 == (own.loc[age_weeks <= 13, "delivery_delay_days"] >= 3).sum()
        assert r.orders_grocery == (own["category"] == "grocery").sum()
        assert r.last_order_at == own["ordered_at"].max()
        assert r.orders_ew == pytest.approx((0.88 ** age_weeks.astype(float)).sum())


def test_late_order_is_not_used_before_it_arrives(business: dict[str, pd.DataFrame]) -> None:
    """An order placed before as_of but arriving after it is invisible at as_of."""
    view = get_feature_view("customer_churn_signals")
    orders = business["orders"].copy()
    i = int(np.flatnonzero((orders["ordered_at"] > ORIGIN + 30 * WEEK).to_numpy())[0])
    cust, placed = int(orders.at[i, "customer_id"]), orders.at[i, "ordered_at"]
    orders.loc[i, "available_at"] = placed + 20 * pd.Timedelta(days=1)
    tables = {
        t.name: t.materialize(orders if t.source == "orders" else business[t.source])
        for t in view.tables
    }
    monday = placed.normalize() - pd.Timedelta(days=placed.weekday())
    as_of = [
        monday + WEEK,
        monday + 2 * WEEK,
        monday + 4 * WEEK,
    ]  # arrives between the 2nd and the 3rd
    labels = pd.DataFrame(
        {"customer_id": cust, AS_OF: as_of, "snapshot_date": as_of, "churned_90d": 0}
    )
    rows = view.training_frame(labels, tables).rows
    assert len(rows) == 3
    late_rows = orders.loc[[i]]
    known = lambda t: orders[(orders["customer_id"] == cust) & (orders["available_at"] <= t)]  # noqa: E731
    for k, t in enumerate(as_of):
        assert rows.loc[k, "n_orders_all"] == len(known(t))
        assert (late_rows.index[0] in known(t).index) == (k == 2)
    on_time = CUSTOMER_ORDER_STATS.materialize(business["orders"])
    joined = view.training_frame(labels, {**tables, CUSTOMER_ORDER_STATS.name: on_time}).rows
    assert (
        joined.loc[0, "n_orders_all"] == rows.loc[0, "n_orders_all"] + 1
    )  # on time, it would have counted


# --------------------------------------------------------------------------- label rows


def test_churn_labels_follow_closures_within_90_days() -> None:
    orders = pd.DataFrame({"ordered_at": [ORIGIN, ORIGIN + 40 * WEEK]})
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "signup_at": [ORIGIN - WEEK, ORIGIN - WEEK, ORIGIN + 20 * WEEK, ORIGIN - WEEK],
        }
    )
    q1 = ORIGIN + 13 * WEEK
    closures = pd.DataFrame(
        {
            "customer_id": [1, 2, 4],
            "closed_at": [q1 + pd.Timedelta(days=30), q1 + pd.Timedelta(days=95), q1 - WEEK],
        }
    )
    rows = churn_label_rows(closures, {"customers": customers, "orders": orders})
    assert sorted(rows["snapshot_date"].unique()) == [
        q1,
        q1 + 13 * WEEK,
    ]  # the third lacks 90 observed days
    first = rows[rows["snapshot_date"] == q1].set_index("customer_id")["churned_90d"]
    assert first.to_dict() == {1: 1, 2: 0}  # 3 not signed up yet, 4 closed before
    second = rows[rows["snapshot_date"] == q1 + 13 * WEEK].set_index("customer_id")["churned_90d"]
    assert second.to_dict() == {2: 1, 3: 0}


def test_value_labels_are_cleaned_next_year_spend_at_non_overlapping_cutoffs() -> None:
    weeks = 120
    ordered = ORIGIN + np.arange(weeks) * WEEK + pd.Timedelta(days=2)
    amount = np.full(weeks, 10.0)
    amount[100] = 10.0 * 25  # a mis-scaled amount inside the last label year
    orders = pd.DataFrame({"customer_id": 1, "ordered_at": ordered, "amount": amount})
    customers = pd.DataFrame({"customer_id": [1, 2], "signup_at": [ORIGIN - WEEK, ORIGIN - WEEK]})
    closures = pd.DataFrame(
        {"customer_id": [2], "closed_at": [ORIGIN + 68 * WEEK + pd.Timedelta(days=3)]}
    )
    rows = value_label_rows(orders, {"customers": customers, "customer_closures": closures})
    cutoffs = sorted(rows["cutoff_date"].unique())
    last = ORIGIN + (weeks - 52) * WEEK
    assert cutoffs[-1] == last and all(c <= last - 52 * WEEK for c in cutoffs[:-1])
    assert np.diff(cutoffs[:-1]).astype("timedelta64[D]").astype(int).tolist() == [91] * (
        len(cutoffs) - 2
    )
    top = rows[rows["cutoff_date"] == last].set_index("customer_id")["spend_next_52w"]
    assert top.to_dict() == {
        1: pytest.approx(52 * 10.0)
    }  # customer 2 closed before; the outlier is capped
    assert (rows[AS_OF] == rows["cutoff_date"]).all()


# --------------------------------------------------------------------------- train = serve


@pytest.mark.parametrize(
    ("view_name", "source"),
    [
        ("customer_value_signals", "orders"),
        ("customer_churn_signals", "customer_closures"),
        ("customer_offer_ranking", "offer_impressions"),
        ("customer_behaviour_profile", "customers"),
    ],
)
def test_batch_rows_equal_online_requests(
    business: dict[str, pd.DataFrame], tmp_path: Path, view_name: str, source: str
) -> None:
    """Training path (point-in-time join) == serving path (online store + JSON request)."""
    view = get_feature_view(view_name)
    as_of = ORIGIN + 50 * WEEK
    tables = {t.name: t.materialize(business[t.source]) for t in view.tables}
    store = SqliteOnlineStore(tmp_path / "online.db")
    for t in view.tables:
        materialize_online(t, tables[t.name], store=store, as_of=as_of)
    entity_rows = (
        _training_rows(view, source, business)[view.entity_names].drop_duplicates().head(25)
    )
    labels = entity_rows.assign(**{AS_OF: as_of})
    batch = view.training_frame(labels, tables).rows
    assert len(batch) >= 10
    expected = view.compute(batch)
    requests = pd.DataFrame(
        [
            {**{k: int(r[k]) for k in view.entity_names}, AS_OF: as_of.date().isoformat()}
            for _, r in batch.iterrows()
        ]
    )
    served = view.compute(assemble_online(view, requests, online=store))
    store.close()
    np.testing.assert_allclose(served.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)
    one = view.compute(
        assemble_online(view, requests.iloc[[3]], online=SqliteOnlineStore(tmp_path / "online.db"))
    )
    np.testing.assert_allclose(one.to_numpy()[0], expected.to_numpy()[3], rtol=0, atol=1e-9)


def test_request_only_views_are_row_local() -> None:
    text = get_feature_view("feedback_text")
    raw = pd.DataFrame({"feedback_id": [1, 2], "text": ["not good at all", "great"]})
    assert text.compute(raw)["text"].tolist() == ["not good at all", "great"]
    metric = get_feature_view("infra_metric_point")
    ts = pd.date_range("2025-12-19 22:00", periods=6, freq="5min")
    raw = pd.DataFrame(
        {"host_id": 3, "metric": [*INFRA_METRICS, "cpu_pct", "cpu_pct"], "ts": ts, "value": 5.0}
    )
    batch = metric.compute(raw)  # training rows carry timestamps
    for i in range(len(raw)):
        request = raw.iloc[[i]].assign(ts=lambda f: f["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        np.testing.assert_array_equal(metric.compute(request).to_numpy()[0], batch.to_numpy()[i])
    assert batch["weekend"].tolist() == [0.0] * 6 and batch["day_hour"].tolist()[:2] == [
        22.0,
        22.0 + 5 / 60,
    ]
    with pytest.raises(Exception, match="not an ISO 8601 timestamp"):
        metric.compute(raw.head(1).assign(ts="yesterday"))


# --------------------------------------------------------------------------- estimators


def test_text_classifier_needs_bigrams_for_negations() -> None:
    rng = np.random.default_rng(1)
    cues = {
        "negative": ["not good", "bad"],
        "positive": ["good", "not bad"],
    }  # no unigram weights fit
    labels = rng.choice(["negative", "positive"], 400)
    texts = [
        f"the order was {rng.choice(cues[y])} {rng.choice(['today', 'again', ''])}" for y in labels
    ]
    frame = pd.DataFrame({"text": texts})
    model = make_sklearn("text_tf_logistic", {"C": 1.0, "min_df": 1})
    model.fit(frame, labels)
    test = pd.DataFrame(
        {"text": ["the order was not good", "the order was good", "it was not bad"]}
    )
    assert model.predict(test).tolist() == ["negative", "positive", "positive"]
    unigrams = TermLogisticText(ngram_max=1, C=1.0, min_df=1).fit(frame, labels)
    assert (unigrams.predict(frame) == labels).mean() < 0.9  # "not" and "good" alone cannot tell
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(test), model.predict_proba(test))


def _metric_streams(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two streams with a daily cycle, weekend dip, t noise, spikes, a level shift and a dropout."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2025-12-01", periods=288 * 10, freq="5min")
    frames, flags = [], []
    for host, level in ((1, 40.0), (2, 300.0)):
        hour = (ts.hour + ts.minute / 60).to_numpy()
        expected = (
            level
            * (1 + 0.25 * np.sin(2 * np.pi * (hour - 9) / 24))
            * np.where(ts.weekday.to_numpy() >= 5, 0.9, 1.0)
        )
        scale = 0.05 * level
        value = expected + scale * rng.standard_t(8, len(ts)) * np.sqrt(6 / 8)
        flag = np.zeros(len(ts), dtype=int)
        for at in rng.choice(len(ts), 12, replace=False):
            value[at] += rng.choice([-1, 1]) * 9 * scale
            flag[at] = 1
        value[1000:1020] += 7 * scale
        flag[1000:1020] = 1
        value[2000:2008] = 0.05 * expected[2000:2008]
        flag[2000:2008] = 1
        frames.append(
            pd.DataFrame({"host_id": host, "metric": "latency_ms", "ts": ts, "value": value})
        )
        flags.append(flag)
    return pd.concat(frames, ignore_index=True), np.concatenate(flags)


def test_profile_isolation_forest_finds_injected_anomalies_without_labels() -> None:
    view = get_feature_view("infra_metric_point")
    raw, flags = _metric_streams(0)
    X = view.compute(raw)
    model = ProfileIsolationForest(n_estimators=100).fit(X, np.zeros(len(X)))
    pred = model.predict(X)
    hits = pred[flags == 1].sum()
    precision, recall = hits / pred.sum(), hits / flags.sum()
    assert recall > 0.95 and precision > 0.9, (precision, recall)
    # the labels never reach the fit: fitting with them changes nothing
    np.testing.assert_array_equal(
        ProfileIsolationForest(n_estimators=100).fit(X, flags).predict(X), pred
    )
    # a fresh week of the same streams is scored with the same profile
    fresh, fresh_flags = _metric_streams(1)
    fresh_pred = model.predict(view.compute(fresh))
    assert (
        fresh_pred[fresh_flags == 1].mean() > 0.95 and fresh_pred[fresh_flags == 0].mean() < 0.002
    )
    with pytest.raises(Exception, match="no learned profile for host_id=9"):
        model.predict(view.compute(raw.head(1).assign(host_id=9)))


def test_gaussian_mixture_recovers_separated_groups_and_ignores_labels() -> None:
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 6.0, -1.0]])
    group = rng.integers(0, 3, 600)
    X = pd.DataFrame(centres[group] + rng.normal(0, 1.0, (600, 3)), columns=["a", "b", "c"])
    est = BehaviourGaussianMixture(n_components=3, covariance_type="full", n_init=2)
    pred = est.fit(X, np.zeros(600)).predict(X)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(group, pred) > 0.97
    np.testing.assert_array_equal(
        BehaviourGaussianMixture(n_components=3, covariance_type="full", n_init=2)
        .fit(X, group)
        .predict(X),
        pred,
    )
    # ids are ordered by the mean of the first feature: the group centred at a=6 gets the last id
    assert np.bincount(pred[group == 1]).argmax() == 2
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0)


# --------------------------------------------------------------------------- evaluators


def test_best_threshold_f1_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.1
    s = y * rng.normal(2, 1, 300) + rng.normal(0, 1, 300)

    def f1(flag: np.ndarray) -> float:
        hits = (flag & y).sum()
        return 2.0 * hits / (flag.sum() + y.sum())

    brute = max(f1(s > t) for t in np.r_[s, -np.inf])
    assert best_threshold_f1(y, s) == pytest.approx(brute)


class _Bundle:
    """Stand-in for ModelBundle.predict: fixed predictions per customer."""

    def __init__(self, clusters: dict[int, int]) -> None:
        self.clusters = clusters

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return np.array([self.clusters[c] for c in rows["customer_id"]])


def test_segment_evaluator_scores_clusters_against_the_truth() -> None:
    from raycore.catalog import load_catalog

    truth = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "segment": ["a", "a", "b", "b"],
            "map_segment": ["a", "b", "b", "b"],
        }
    )
    rows = pd.DataFrame({"customer_id": [1, 2, 3, 4], "segment": None})
    ctx = EvalContext(
        spec=load_catalog().get("mdl-008"),
        bundle=_Bundle({1: 7, 2: 7, 3: 2, 4: 2}),  # type: ignore[arg-type]
        train_rows=rows.head(0),
        holdout_rows=rows,
        truth=lambda name: truth,
        table=lambda name: pd.DataFrame(),
    )
    result = get_evaluator("segment_ari")(ctx)
    assert result.metrics["adjusted_rand"] == pytest.approx(1.0)
    assert result.oracle["adjusted_rand"] < 1.0
