"""Feature views of the customer models: sentiment, anomalies, value, churn, next best action, segments.

Feature tables (each computed from one silver table). The customer tables are weekly
*knowledge snapshots*: the row of customer ``c`` at Monday ``w`` aggregates exactly the
source rows that had arrived by ``w`` (``available_at <= w``), so its ``available_at`` is
``w`` itself and a late row enters the first snapshot after it arrived, never before.
Windows ("last 13 weeks") are by event time: the weeks ``w - 13 .. w - 1``.

- ``customer_order_stats`` (``orders``; customer x ``orders_week``): order counts over
  4/13/52 weeks and all history, spend, summed log amounts (a geometric-mean basket that a
  mis-scaled amount barely moves), online orders, late deliveries (>= 3 days), discounted
  orders, orders per category, first/last order time, an exponentially weighted order count,
  and the first week the warehouse holds orders for (to normalise windows cut by it).
- ``customer_feedback_stats`` (``feedback``; customer x ``feedback_week``): negative /
  neutral / positive items over 13/52 weeks and all history, and exponentially weighted
  counts and net sentiment (weight 0.88 per week, the pace at which satisfaction moves).
- ``customer_profile`` (``customers``; customer x ``signup_at``): sign-up time, acquisition
  channel, e-mail opt-in.
- ``offer_attributes`` (``offers``; offer): type, category, discount (a static catalogue).

Views (one per catalog model):

- ``feedback_text`` (mdl-002): the text of a feedback item, nothing else.
- ``infra_metric_point`` (mdl-003): host, metric, time and value of one point; the per-stream
  daily profile the anomaly score needs is fitted state of the estimator
  (``raycore.models.custom.customers.ProfileIsolationForest``), not a feature.
- ``customer_value_signals`` (mdl-004): spend of the next 52 weeks after a cut-off.
- ``customer_churn_signals`` (mdl-005): account closed within 90 days of a quarter snapshot.
- ``customer_offer_ranking`` (mdl-007): one row per offer shown in a session.
- ``customer_behaviour_profile`` (mdl-008): one row per customer, for clustering.

A customer is scorable once one of its orders (and, for churn and value, one feedback item)
has arrived; before that there is no row, and serving says so instead of guessing zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView

__all__ = [
    "ACQUISITION_CHANNELS",
    "CATEGORIES",
    "CUSTOMER_BEHAVIOUR_PROFILE",
    "CUSTOMER_CHURN_SIGNALS",
    "CUSTOMER_FEEDBACK_STATS",
    "CUSTOMER_OFFER_RANKING",
    "CUSTOMER_ORDER_STATS",
    "CUSTOMER_PROFILE",
    "CUSTOMER_VALUE_SIGNALS",
    "FEEDBACK_TEXT",
    "INFRA_METRICS",
    "INFRA_METRIC_POINT",
    "OFFER_ATTRIBUTES",
    "OFFER_TYPES",
    "SENTIMENTS",
    "churn_label_rows",
    "value_label_rows",
]

CATEGORIES = ("grocery", "home", "electronics", "apparel", "beauty", "toys")
ACQUISITION_CHANNELS = ("search", "social", "referral", "store", "email")
OFFER_TYPES = ("percent_off", "free_shipping", "bundle", "loyalty_points", "new_arrival")
SENTIMENTS = ("negative", "neutral", "positive")
INFRA_METRICS = ("cpu_pct", "memory_pct", "latency_ms", "network_mbps")
WEEK = pd.Timedelta(days=7)
WEEK_NS = WEEK.value
YEAR_DAYS = 365.25
LATE_DAYS = 3.0  # a delivery this many days after its promise counts as late
EW_DECAY = 0.88  # weekly weight of the exponentially weighted counts
CHURN_HORIZON = pd.Timedelta(days=90)
QUARTER_WEEKS, VALUE_WEEKS = 13, 52
STATIC_SINCE = pd.Timestamp("2000-01-01")  # when a static catalogue row counts as known


# --------------------------------------------------------------------------- weekly snapshots


class _WeeklyGrid:
    """Monday snapshots over a source: which snapshot first knows a row, and its event week."""

    def __init__(self, event: pd.Series, available: pd.Series | None) -> None:
        event_ns = pd.to_datetime(event).to_numpy(dtype="datetime64[ns]").astype("int64")
        avail_ns = event_ns
        if available is not None:
            known = pd.to_datetime(available)
            avail_ns = np.where(
                known.isna().to_numpy(),
                event_ns,
                known.to_numpy(dtype="datetime64[ns]").astype("int64"),
            )
        first = pd.Timestamp(int(event_ns.min()))
        self.origin = (first.normalize() - pd.Timedelta(days=first.weekday())).value
        self.event_week = (event_ns - self.origin) // WEEK_NS
        self.known_week = -(-(np.maximum(avail_ns, event_ns) - self.origin) // WEEK_NS)  # ceil
        self.n_weeks = int(self.known_week.max()) + 1

    def weeks(self) -> np.ndarray:
        return self.origin + np.arange(self.n_weeks, dtype="int64") * WEEK_NS


def _window_sum(
    grid: _WeeklyGrid, codes: np.ndarray, n: int, weights: np.ndarray, window: int | None
) -> np.ndarray:
    """(weeks, entities) sums of ``weights`` over rows known by each snapshot, in the event window.

    A row counts at snapshot ``j`` when it is known (``known_week <= j``) and its event week is
    one of the ``window`` weeks before ``j`` (all weeks when ``window`` is None).
    """
    start = grid.known_week
    stop = (
        np.full_like(start, grid.n_weeks)
        if window is None
        else np.minimum(grid.event_week + window + 1, grid.n_weeks)
    )
    ok = start < stop
    size = (grid.n_weeks + 1) * n
    w = weights[ok]
    diff = np.bincount(start[ok] * n + codes[ok], weights=w, minlength=size)
    diff -= np.bincount(stop[ok] * n + codes[ok], weights=w, minlength=size)
    return np.cumsum(diff.reshape(grid.n_weeks + 1, n), axis=0)[:-1]


def _decayed_sum(grid: _WeeklyGrid, codes: np.ndarray, n: int, weights: np.ndarray) -> np.ndarray:
    """(weeks, entities) sums of ``weights * EW_DECAY ** (j - event_week)`` over rows known by ``j``."""
    age = (grid.known_week - grid.event_week).astype("float64")
    added = np.bincount(
        grid.known_week * n + codes, weights=weights * EW_DECAY**age, minlength=grid.n_weeks * n
    )
    added = added.reshape(grid.n_weeks, n)
    out = np.empty_like(added)
    running = np.zeros(n)
    for j in range(grid.n_weeks):  # a short loop over weeks, vectorised over entities
        running = EW_DECAY * running + added[j]
        out[j] = running
    return out


def _running_extreme(
    grid: _WeeklyGrid, codes: np.ndarray, n: int, values: np.ndarray, *, latest: bool
) -> np.ndarray:
    """(weeks, entities) max (``latest``) or min of ``values`` over rows known by each snapshot."""
    fill = np.iinfo("int64").min if latest else np.iinfo("int64").max
    grid_values = np.full((grid.n_weeks, n), fill, dtype="int64")
    (np.maximum if latest else np.minimum).at(grid_values, (grid.known_week, codes), values)
    return (np.maximum if latest else np.minimum).accumulate(grid_values, axis=0)


def _long_frame(
    grid: _WeeklyGrid,
    ids: np.ndarray,
    first_week: np.ndarray,
    columns: dict[str, np.ndarray],
    *,
    entity: str,
    week_column: str,
) -> pd.DataFrame:
    """Long rows (entity, week, available_at, fields) from (weeks, entities) matrices."""
    week_idx, ent_idx = np.nonzero(np.arange(grid.n_weeks)[:, None] >= first_week[None, :])
    weeks = (grid.weeks()[week_idx]).astype("datetime64[ns]")
    out = {entity: ids[ent_idx].astype("int64"), week_column: weeks, AVAILABLE_AT: weeks}
    for name, matrix in columns.items():
        out[name] = matrix[week_idx, ent_idx]
    return pd.DataFrame(out)


def _order_stats(orders: pd.DataFrame) -> pd.DataFrame:
    """Weekly order snapshots per customer (see the module docstring), from the first known order on."""
    orders = orders.dropna(subset=["customer_id", "ordered_at", "amount"])
    orders = orders[orders["amount"] > 0]
    grid = _WeeklyGrid(orders["ordered_at"], orders.get(AVAILABLE_AT))
    codes, ids = pd.factorize(orders["customer_id"].astype("int64"), sort=True)
    ids = np.asarray(ids)
    n = len(ids)
    amount = orders["amount"].to_numpy(dtype="float64")
    one = np.ones(len(orders))
    online = (orders["channel"].to_numpy() == "online").astype("float64")
    late = (
        orders["delivery_delay_days"].to_numpy(dtype="float64", na_value=0.0) >= LATE_DAYS
    ).astype("float64")
    discounted = (orders["discount_amount"].to_numpy(dtype="float64", na_value=0.0) > 0).astype(
        "float64"
    )
    category = orders["category"].to_numpy(dtype=object)

    def s(weights: np.ndarray, window: int | None) -> np.ndarray:
        return _window_sum(grid, codes, n, weights, window)

    cols: dict[str, np.ndarray] = {}
    for window in (4, 13, 52, None):
        cols[f"n_orders_{window or 'all'}"] = s(one, window)
    for window in (13, 52, None):
        cols[f"spend_{window or 'all'}"] = s(amount, window)
    cols["log_amount_52"] = s(np.log(amount), 52)
    cols["log_amount_all"] = s(np.log(amount), None)
    cols["online_13"] = s(online, 13)
    cols["online_all"] = s(online, None)
    cols["late_13"] = s(late, 13)
    cols["late_52"] = s(late, 52)
    cols["discounted_all"] = s(discounted, None)
    for cat in CATEGORIES:
        cols[f"orders_{cat}"] = s((category == cat).astype("float64"), None)
    cols["orders_ew"] = _decayed_sum(grid, codes, n, one)
    event_ns = orders["ordered_at"].to_numpy(dtype="datetime64[ns]").astype("int64")
    cols["first_order_at"] = _running_extreme(grid, codes, n, event_ns, latest=False).astype(
        "datetime64[ns]"
    )
    cols["last_order_at"] = _running_extreme(grid, codes, n, event_ns, latest=True).astype(
        "datetime64[ns]"
    )
    first_week = np.full(n, grid.n_weeks, dtype="int64")
    np.minimum.at(first_week, codes, grid.known_week)
    out = _long_frame(grid, ids, first_week, cols, entity="customer_id", week_column="orders_week")
    out["history_start"] = pd.Timestamp(grid.origin)
    return out


def _feedback_stats(feedback: pd.DataFrame) -> pd.DataFrame:
    """Weekly feedback snapshots per customer, from the first known item on."""
    feedback = feedback.dropna(subset=["customer_id", "created_at", "sentiment"])
    feedback = feedback[feedback["sentiment"].isin(SENTIMENTS)]
    grid = _WeeklyGrid(feedback["created_at"], feedback.get(AVAILABLE_AT))
    codes, ids = pd.factorize(feedback["customer_id"].astype("int64"), sort=True)
    ids = np.asarray(ids)
    n = len(ids)
    sentiment = feedback["sentiment"].to_numpy(dtype=object)
    cols: dict[str, np.ndarray] = {}
    for label, short in zip(SENTIMENTS, ("neg", "neu", "pos"), strict=True):
        hit = (sentiment == label).astype("float64")
        for window in (13, 52, None):
            cols[f"{short}_{window or 'all'}"] = _window_sum(grid, codes, n, hit, window)
    net = (sentiment == "positive").astype("float64") - (sentiment == "negative").astype("float64")
    cols["feedback_ew"] = _decayed_sum(grid, codes, n, np.ones(len(feedback)))
    cols["net_sentiment_ew"] = _decayed_sum(grid, codes, n, net)
    first_week = np.full(n, grid.n_weeks, dtype="int64")
    np.minimum.at(first_week, codes, grid.known_week)
    return _long_frame(
        grid, ids, first_week, cols, entity="customer_id", week_column="feedback_week"
    )


def _profile(customers: pd.DataFrame) -> pd.DataFrame:
    """One row per customer, known when the sign-up reached the warehouse."""
    out = customers[["customer_id", "signup_at", "acquisition_channel", "email_opt_in"]].copy()
    known = (
        pd.to_datetime(customers[AVAILABLE_AT])
        if AVAILABLE_AT in customers.columns
        else out["signup_at"]
    )
    out[AVAILABLE_AT] = known.fillna(out["signup_at"])
    out = out.dropna(subset=["customer_id", "signup_at"])
    out["acquisition_channel"] = out["acquisition_channel"].fillna("unknown").astype(str)
    out["email_opt_in"] = out["email_opt_in"].fillna(0).astype("int64")
    return out


def _offer_attributes(offers: pd.DataFrame) -> pd.DataFrame:
    """One row per offer; the catalogue is static, so every row counts as known from ``STATIC_SINCE``."""
    return pd.DataFrame(
        {
            "offer_id": offers["offer_id"].astype("int64"),
            "offer_listed_at": STATIC_SINCE,
            AVAILABLE_AT: STATIC_SINCE,
            "offer_type": offers["offer_type"].astype(str),
            "offer_category": offers["category"].astype(str),
            "discount_pct": offers["discount_pct"].astype("float64"),
        }
    )


def _count(name: str, description: str) -> FeatureField:
    return FeatureField(name, "float", description, ge=0)


CUSTOMER_ORDER_STATS = FeatureTable(
    name="customer_order_stats",
    version=1,
    entity=("customer_id",),
    event_time="orders_week",
    source="orders",
    ttl=pd.Timedelta(days=14),
    description="Weekly snapshot of a customer's known orders: frequency, spend, basket, channel, "
    "late deliveries, discounts, categories.",
    fields=(
        FeatureField("orders_week", "date", "Monday of the snapshot (orders known by then)."),
        FeatureField("history_start", "date", "First week the warehouse holds orders for."),
        FeatureField("first_order_at", "date", "Earliest known order."),
        FeatureField("last_order_at", "date", "Latest known order."),
        _count("n_orders_4", "Orders in the 4 weeks before the snapshot."),
        _count("n_orders_13", "Orders in the 13 weeks before the snapshot."),
        _count("n_orders_52", "Orders in the 52 weeks before the snapshot."),
        _count("n_orders_all", "Orders in all known history."),
        _count("spend_13", "Order amounts over 13 weeks."),
        _count("spend_52", "Order amounts over 52 weeks."),
        _count("spend_all", "Order amounts over all history."),
        FeatureField("log_amount_52", "float", "Sum of log order amounts over 52 weeks."),
        FeatureField("log_amount_all", "float", "Sum of log order amounts over all history."),
        _count("online_13", "Online orders over 13 weeks."),
        _count("online_all", "Online orders over all history."),
        _count("late_13", "Deliveries at least 3 days late over 13 weeks."),
        _count("late_52", "Deliveries at least 3 days late over 52 weeks."),
        _count("discounted_all", "Orders with a discount over all history."),
        *(_count(f"orders_{c}", f"Orders in category {c} over all history.") for c in CATEGORIES),
        _count("orders_ew", "Orders weighted 0.88 per week since the start of the order's week."),
    ),
    compute=_order_stats,
)

CUSTOMER_FEEDBACK_STATS = FeatureTable(
    name="customer_feedback_stats",
    version=1,
    entity=("customer_id",),
    event_time="feedback_week",
    source="feedback",
    ttl=pd.Timedelta(days=14),
    description="Weekly snapshot of a customer's known feedback: items per sentiment and a decayed net sentiment.",
    fields=(
        FeatureField("feedback_week", "date", "Monday of the snapshot (feedback known by then)."),
        *(
            _count(f"{short}_{w}", f"{label.capitalize()} items over {span}.")
            for label, short in zip(SENTIMENTS, ("neg", "neu", "pos"), strict=True)
            for w, span in (("13", "13 weeks"), ("52", "52 weeks"), ("all", "all history"))
        ),
        _count(
            "feedback_ew",
            "Feedback items weighted 0.88 per week since the start of the item's week.",
        ),
        FeatureField(
            "net_sentiment_ew",
            "float",
            "Positive minus negative items, weighted 0.88 per week since the start of the item's week.",
        ),
    ),
    compute=_feedback_stats,
)

CUSTOMER_PROFILE = FeatureTable(
    name="customer_profile",
    version=1,
    entity=("customer_id",),
    event_time="signup_at",
    source="customers",
    description="Sign-up time, acquisition channel and e-mail opt-in of a customer.",
    fields=(
        FeatureField("signup_at", "date", "When the loyalty account was opened."),
        FeatureField("acquisition_channel", "str", "How the customer was acquired."),
        FeatureField(
            "email_opt_in", "int", "1 when the customer accepts marketing e-mail.", ge=0, le=1
        ),
    ),
    compute=_profile,
)

OFFER_ATTRIBUTES = FeatureTable(
    name="offer_attributes",
    version=1,
    entity=("offer_id",),
    event_time="offer_listed_at",
    source="offers",
    description="Type, category and discount of an offer (a static catalogue, known from the start).",
    fields=(
        FeatureField("offer_listed_at", "date", "When the catalogue row counts as known."),
        FeatureField("offer_type", "str", "Kind of offer."),
        FeatureField("offer_category", "str", "Product category of the offer."),
        FeatureField("discount_pct", "float", "Discount in percent.", ge=0, le=100),
    ),
    compute=_offer_attributes,
)


# --------------------------------------------------------------------------- label rows


def _monday(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.normalize() - pd.Timedelta(days=ts.weekday())


def _order_weeks(orders: pd.DataFrame) -> tuple[pd.Timestamp, int]:
    """First Monday of the order history and the number of weeks it covers."""
    times = pd.to_datetime(orders["ordered_at"])
    origin = _monday(times.min())
    return origin, int((times.max() - origin) // WEEK) + 1


def _closed_at(closures: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(
        closures.drop_duplicates("customer_id").set_index("customer_id")["closed_at"]
    )


def _cleaned_amounts(orders: pd.DataFrame) -> pd.Series:
    """Amounts with mis-scaled values (over 4x the customer's median of the same rows) set to that median.

    Only for labels: the median is over the rows being summed, future ones included.
    """
    median = orders.groupby("customer_id")["amount"].transform("median")
    return orders["amount"].where(orders["amount"] <= 4.0 * median, median)


def value_label_rows(orders: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Customers active at a cut-off and their (cleaned) spend over the next 52 weeks.

    Cut-offs: the last one whose next 52 weeks are fully observed (the one a time holdout
    scores), and every quarter at least 52 weeks before it, so that no training label window
    reaches into the scored cut-off's future. A customer counts when signed up before the
    cut-off and still active through its week (the account not closed before the following
    Monday).
    """
    customers, closed = extras["customers"], _closed_at(extras["customer_closures"])
    origin, n_weeks = _order_weeks(orders)
    last = n_weeks - VALUE_WEEKS
    cutoffs = [origin + k * WEEK for k in [last, *range(last - VALUE_WEEKS, 0, -QUARTER_WEEKS)]]
    ordered = pd.to_datetime(orders["ordered_at"])
    signup = pd.to_datetime(customers["signup_at"])
    frames = []
    for cutoff in cutoffs:
        ids = customers.loc[signup < cutoff, "customer_id"].astype("int64").unique()
        end = closed.reindex(ids)
        ids = ids[(end.isna() | (end >= cutoff + WEEK)).to_numpy()]
        window = orders[(ordered >= cutoff) & (ordered < cutoff + VALUE_WEEKS * WEEK)]
        window = window[window["customer_id"].isin(ids)]
        spend = _cleaned_amounts(window).groupby(window["customer_id"]).sum()
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    AS_OF: cutoff,
                    "cutoff_date": cutoff,
                    "spend_next_52w": spend.reindex(ids, fill_value=0.0).to_numpy(dtype="float64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values(
        ["cutoff_date", "customer_id"], ignore_index=True
    )


def churn_label_rows(closures: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Customers active at each quarter snapshot and whether they closed within the next 90 days.

    Snapshots fall every 13 weeks after the first week of the order history, as long as the
    90 days after them are observed. Active: signed up before and not closed by the snapshot.
    """
    customers, orders = extras["customers"], extras["orders"]
    closed = _closed_at(closures)
    origin, n_weeks = _order_weeks(orders)
    end = origin + n_weeks * WEEK
    signup = pd.to_datetime(customers["signup_at"])
    frames = []
    for k in range(1, n_weeks // QUARTER_WEEKS + 1):
        snapshot = origin + k * QUARTER_WEEKS * WEEK
        if snapshot + CHURN_HORIZON > end:
            break
        ids = customers.loc[signup < snapshot, "customer_id"].astype("int64").unique()
        when = closed.reindex(ids)
        active = (when.isna() | (when > snapshot)).to_numpy()
        ids, when = ids[active], when[active]
        churned = (when <= snapshot + CHURN_HORIZON).to_numpy(dtype=bool, na_value=False)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    AS_OF: snapshot,
                    "snapshot_date": snapshot,
                    "churned_90d": churned.astype("int64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _offer_label_rows(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per offer shown, grouped by session; the label is acceptance."""
    rows = impressions[
        ["impression_id", "session_id", "customer_id", "offer_id", "shown_at", "accepted"]
    ].copy()
    rows[AS_OF] = pd.to_datetime(rows["shown_at"])
    for col in ("impression_id", "session_id", "customer_id", "offer_id", "accepted"):
        rows[col] = rows[col].astype("int64")
    return rows.sort_values(["session_id", "impression_id"], kind="stable").reset_index(drop=True)


def _behaviour_label_rows(customers: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per customer, as of the end of the order history or the account's closure.

    The latent segment is not observable: ``segment`` is left empty and the evaluator joins
    the true one from the data world's truth for scoring only.
    """
    closed = _closed_at(extras["customer_closures"])
    origin, n_weeks = _order_weeks(extras["orders"])
    end = origin + n_weeks * WEEK
    ids = customers["customer_id"].astype("int64").drop_duplicates().to_numpy()
    as_of = closed.reindex(ids).fillna(end).clip(upper=end)
    return pd.DataFrame({"customer_id": ids, AS_OF: as_of.to_numpy(), "segment": None})


def _feedback_label_rows(feedback: pd.DataFrame) -> pd.DataFrame:
    rows = feedback.dropna(subset=["text", "sentiment"])
    rows = rows[rows["sentiment"].isin(SENTIMENTS)]
    return pd.DataFrame(
        {
            "feedback_id": rows["feedback_id"].astype("int64").to_numpy(),
            AS_OF: pd.to_datetime(rows["created_at"]).to_numpy(),
            "created_at": pd.to_datetime(rows["created_at"]).to_numpy(),
            "text": rows["text"].astype(str).to_numpy(),
            "sentiment": rows["sentiment"].astype(str).to_numpy(),
        }
    )


def _metric_label_rows(points: pd.DataFrame) -> pd.DataFrame:
    """One row per metric point; the injected-anomaly flag is not observable (truth scores it)."""
    rows = points.dropna(subset=["value"])
    return pd.DataFrame(
        {
            "host_id": rows["host_id"].astype("int64").to_numpy(),
            "metric": rows["metric"].astype(str).to_numpy(),
            "ts": pd.to_datetime(rows["ts"]).to_numpy(),
            AS_OF: pd.to_datetime(rows["ts"]).to_numpy(),
            "value": rows["value"].astype("float64").to_numpy(),
            "is_anomaly": None,
        }
    )


# --------------------------------------------------------------------------- transforms


def _ratio(num: np.ndarray | pd.Series, den: np.ndarray | pd.Series) -> np.ndarray:
    num, den = np.asarray(num, dtype="float64"), np.asarray(den, dtype="float64")
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _observed_weeks(raw: pd.DataFrame, window: float) -> np.ndarray:
    """Weeks of the window that the history can show: cut by sign-up and by the history's start."""
    start = np.maximum(raw["signup_at"].to_numpy(), raw["history_start"].to_numpy())
    weeks = (raw[AS_OF].to_numpy() - start) / np.timedelta64(7, "D")
    return np.clip(weeks.astype("float64"), 1.0, window)


def _one_hot(out: pd.DataFrame, values: pd.Series, prefix: str, levels: tuple[str, ...]) -> None:
    for level in levels:
        out[f"{prefix}_{level}"] = (values.to_numpy() == level).astype("float64")


def _behaviour(raw: pd.DataFrame, out: pd.DataFrame) -> None:
    """Order behaviour that reveals the latent traits: frequency, basket, channel, discounts, categories."""
    n_all = raw["n_orders_all"].to_numpy()
    out["log_rate_all"] = np.log(_ratio(n_all, _observed_weeks(raw, np.inf)) + 0.01)
    out["log_basket_all"] = _ratio(raw["log_amount_all"], n_all)
    out["online_share"] = (raw["online_all"].to_numpy() + 0.5) / (n_all + 1.0)
    out["discount_share"] = (raw["discounted_all"].to_numpy() + 0.5) / (n_all + 1.0)
    n_cat = sum(raw[f"orders_{c}"].to_numpy() for c in CATEGORIES)
    for c in CATEGORIES:
        out[f"share_{c}"] = (raw[f"orders_{c}"].to_numpy() + 0.5) / (n_cat + 3.0)


def _customer_signals(raw: pd.DataFrame) -> pd.DataFrame:
    """Features of churn and value: behaviour, recency, trend, late deliveries, sentiment, tenure."""
    out = pd.DataFrame(index=raw.index)
    _behaviour(raw, out)
    tenure = (raw[AS_OF] - raw["signup_at"]).dt.total_seconds().to_numpy() / (86400.0 * YEAR_DAYS)
    out["log_tenure"] = np.log1p(np.maximum(tenure, 0.0))
    for w in (4, 13, 52):
        out[f"rate_{w}"] = _ratio(raw[f"n_orders_{w}"], _observed_weeks(raw, w))
    out["orders_ew"] = raw["orders_ew"].to_numpy()
    out["spend_rate_13"] = _ratio(raw["spend_13"], _observed_weeks(raw, 13))
    out["spend_rate_52"] = _ratio(raw["spend_52"], _observed_weeks(raw, 52))
    n52 = raw["n_orders_52"].to_numpy()
    out["log_basket_52"] = np.where(
        n52 > 0, _ratio(raw["log_amount_52"], n52), out["log_basket_all"]
    )
    # rate x geometric-mean basket (x e^(s^2/2), s = 0.3): spend per week, robust to a mis-scaled amount
    basket_all = np.exp(out["log_basket_all"].to_numpy() + 0.045)
    out["spend_est_all"] = _ratio(raw["n_orders_all"], _observed_weeks(raw, np.inf)) * basket_all
    out["spend_est_52"] = out["rate_52"].to_numpy() * np.exp(
        out["log_basket_52"].to_numpy() + 0.045
    )
    out["spend_est_13"] = out["rate_13"].to_numpy() * basket_all
    out["trend_13_52"] = (out["rate_13"] + 0.05) / (out["rate_52"] + 0.05)
    out["days_since_order"] = (
        raw[AS_OF] - raw["last_order_at"]
    ).dt.total_seconds().to_numpy() / 86400.0
    out["late_13"] = np.minimum(raw["late_13"].to_numpy(), 3.0)
    out["late_52"] = raw["late_52"].to_numpy()
    out["late_share_13"] = _ratio(raw["late_13"], raw["online_13"])
    out["neg_13"] = np.minimum(raw["neg_13"].to_numpy(), 3.0)
    out["neu_13"] = raw["neu_13"].to_numpy()
    out["pos_13"] = raw["pos_13"].to_numpy()
    out["neg_52"] = raw["neg_52"].to_numpy()
    out["pos_52"] = raw["pos_52"].to_numpy()
    n_fb = raw["neg_all"].to_numpy() + raw["neu_all"].to_numpy() + raw["pos_all"].to_numpy()
    out["net_sentiment_all"] = (raw["pos_all"].to_numpy() - raw["neg_all"].to_numpy()) / (
        n_fb + 1.0
    )
    out["feedback_ew"] = raw["feedback_ew"].to_numpy()
    out["net_sentiment_ew"] = raw["net_sentiment_ew"].to_numpy()
    out["net_share_ew"] = raw["net_sentiment_ew"].to_numpy() / (raw["feedback_ew"].to_numpy() + 0.5)
    out["email_opt_in"] = raw["email_opt_in"].astype("float64")
    _one_hot(out, raw["acquisition_channel"], "acq", ACQUISITION_CHANNELS)
    return out


_BEHAVIOUR_FEATURES = (
    "log_rate_all",
    "log_basket_all",
    "online_share",
    "discount_share",
    *(f"share_{c}" for c in CATEGORIES),
)
_SIGNAL_FEATURES = (
    *_BEHAVIOUR_FEATURES,
    "log_tenure",
    "rate_4",
    "rate_13",
    "rate_52",
    "orders_ew",
    "spend_rate_13",
    "spend_rate_52",
    "log_basket_52",
    "spend_est_all",
    "spend_est_52",
    "spend_est_13",
    "trend_13_52",
    "days_since_order",
    "late_13",
    "late_52",
    "late_share_13",
    "neg_13",
    "neu_13",
    "pos_13",
    "neg_52",
    "pos_52",
    "net_sentiment_all",
    "feedback_ew",
    "net_sentiment_ew",
    "net_share_ew",
    "email_opt_in",
    *(f"acq_{a}" for a in ACQUISITION_CHANNELS),
)


def _segment_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Behaviour on scales where the segments are roughly Gaussian: logs and log-odds."""
    out = pd.DataFrame(index=raw.index)
    _behaviour(raw, out)
    for col in ("online_share", "discount_share"):
        out[col] = np.log(out[col] / (1.0 - out[col]))
    shares = np.log(out[[f"share_{c}" for c in CATEGORIES]].to_numpy())
    for k, c in enumerate(CATEGORIES):
        out[f"share_{c}"] = shares[:, k] - shares.mean(axis=1)  # centred log-ratio
    n_fb = raw["neg_all"].to_numpy() + raw["neu_all"].to_numpy() + raw["pos_all"].to_numpy()
    out["net_sentiment_all"] = (raw["pos_all"].to_numpy() - raw["neg_all"].to_numpy()) / (
        n_fb + 1.0
    )
    return out


def _offer_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Offer attributes, the customer's behaviour, and how the offer fits it."""
    out = pd.DataFrame(index=raw.index)
    _behaviour(raw, out)
    _one_hot(out, raw["offer_type"], "type", OFFER_TYPES)
    _one_hot(out, raw["offer_category"], "offer_cat", CATEGORIES)
    out["discount_pct"] = raw["discount_pct"].to_numpy()
    shares = out[[f"share_{c}" for c in CATEGORIES]].to_numpy()
    cat_idx = pd.Categorical(raw["offer_category"], categories=list(CATEGORIES)).codes
    picked = np.take_along_axis(shares, np.clip(cat_idx, 0, None)[:, None], axis=1)[:, 0]
    out["category_fit"] = np.where(cat_idx >= 0, picked, 0.0)
    out["discount_fit"] = out["discount_share"].to_numpy() * out["discount_pct"].to_numpy() / 10.0
    return out


def _text_features(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"text": raw["text"].astype(str)}, index=raw.index)


def _metric_time(raw: pd.DataFrame) -> pd.Series:
    """The point's time: an ISO 8601 string (requests) or a timestamp's text (training rows)."""
    return pd.to_datetime(raw["ts"], format="ISO8601", errors="coerce")


def _metric_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Stream identity, time of day, weekend and value (the stream's profile is fitted state)."""
    ts = _metric_time(raw)
    out = pd.DataFrame(index=raw.index)
    out["host_id"] = raw["host_id"].astype("float64")
    out["metric_code"] = pd.Categorical(raw["metric"], categories=list(INFRA_METRICS)).codes.astype(
        "float64"
    )
    out["day_hour"] = (ts.dt.hour + ts.dt.minute / 60.0).to_numpy(dtype="float64")
    out["weekend"] = (ts.dt.weekday >= 5).to_numpy(dtype="float64")
    out["value"] = raw["value"].to_numpy(dtype="float64")
    return out


def _check_metric(raw: pd.DataFrame) -> pd.Series:
    known = raw["metric"].isin(INFRA_METRICS).to_numpy()
    timed = _metric_time(raw).notna().to_numpy()
    reasons = [
        ""
        if good and has_time
        else f"metric {m!r} must be one of {', '.join(INFRA_METRICS)}"
        if not good
        else f"ts {t!r} is not an ISO 8601 timestamp"
        for good, has_time, m, t in zip(known, timed, raw["metric"], raw["ts"], strict=True)
    ]
    return pd.Series(reasons, index=raw.index, dtype=object)


def _check_offer(raw: pd.DataFrame) -> pd.Series:
    ok = (
        raw["offer_type"].isin(OFFER_TYPES).to_numpy()
        & raw["offer_category"].isin(CATEGORIES).to_numpy()
    )
    reasons = [
        "" if good else f"offer {o} has an unknown type or category"
        for good, o in zip(ok, raw["offer_id"], strict=True)
    ]
    return pd.Series(reasons, index=raw.index, dtype=object)


# --------------------------------------------------------------------------- views

_CUSTOMER = FeatureField("customer_id", "int", "Customer id.", ge=1)
_AS_OF = FeatureField(AS_OF, "date", "When the prediction is made (features are as known then).")

FEEDBACK_TEXT = FeatureView(
    name="feedback_text",
    version=1,
    description="The text of a feedback item (sentiment is read from the words alone).",
    entity=(FeatureField("feedback_id", "int", "Feedback item id.", ge=1),),
    request=(FeatureField("text", "str", "The feedback text."),),
    tables=(),
    feature_names=("text",),
    transform=_text_features,
    label_rows=_feedback_label_rows,
)

INFRA_METRIC_POINT = FeatureView(
    name="infra_metric_point",
    version=1,
    description="One 5-minute metric point: its stream (host x metric), time and value.",
    entity=(
        FeatureField("host_id", "int", "Host id.", ge=1),
        FeatureField("metric", "str", f"Metric name: {', '.join(INFRA_METRICS)}."),
    ),
    request=(
        # a timestamp, not a date: sent as ISO 8601 text (the request schema's "date" has no time)
        FeatureField(
            "ts", "str", "Start of the 5-minute interval, ISO 8601 (2025-12-28T14:05:00)."
        ),
        FeatureField("value", "float", "The metric value.", ge=0),
    ),
    tables=(),
    feature_names=("host_id", "metric_code", "day_hour", "weekend", "value"),
    transform=_metric_features,
    check=_check_metric,
    label_rows=_metric_label_rows,
)

CUSTOMER_VALUE_SIGNALS = FeatureView(
    name="customer_value_signals",
    version=1,
    description="A customer's order behaviour, recency, sentiment and tenure, to predict next-year spend.",
    entity=(_CUSTOMER,),
    request=(_AS_OF,),
    tables=(CUSTOMER_ORDER_STATS, CUSTOMER_FEEDBACK_STATS, CUSTOMER_PROFILE),
    feature_names=_SIGNAL_FEATURES,
    transform=_customer_signals,
    label_rows=value_label_rows,
    label_sources=("customers", "customer_closures"),
)

CUSTOMER_CHURN_SIGNALS = FeatureView(
    name="customer_churn_signals",
    version=1,
    description="Late deliveries, negative feedback, sentiment, activity trend and tenure, to predict churn.",
    entity=(_CUSTOMER,),
    request=(_AS_OF,),
    tables=(CUSTOMER_ORDER_STATS, CUSTOMER_FEEDBACK_STATS, CUSTOMER_PROFILE),
    feature_names=_SIGNAL_FEATURES,
    transform=_customer_signals,
    label_rows=churn_label_rows,
    label_sources=("customers", "orders"),
)

CUSTOMER_OFFER_RANKING = FeatureView(
    name="customer_offer_ranking",
    version=1,
    description="An offer's type, category and discount against the customer's category mix and discount use.",
    entity=(_CUSTOMER, FeatureField("offer_id", "int", "Offer id.", ge=1)),
    request=(_AS_OF,),
    tables=(CUSTOMER_ORDER_STATS, CUSTOMER_PROFILE, OFFER_ATTRIBUTES),
    feature_names=(
        *_BEHAVIOUR_FEATURES,
        *(f"type_{t}" for t in OFFER_TYPES),
        *(f"offer_cat_{c}" for c in CATEGORIES),
        "discount_pct",
        "category_fit",
        "discount_fit",
    ),
    transform=_offer_features,
    check=_check_offer,
    label_rows=_offer_label_rows,
)

CUSTOMER_BEHAVIOUR_PROFILE = FeatureView(
    name="customer_behaviour_profile",
    version=1,
    description="Order frequency, basket, channel, discount use, category mix and sentiment, for segmentation.",
    entity=(_CUSTOMER,),
    request=(_AS_OF,),
    tables=(CUSTOMER_ORDER_STATS, CUSTOMER_FEEDBACK_STATS, CUSTOMER_PROFILE),
    feature_names=(*_BEHAVIOUR_FEATURES, "net_sentiment_all"),
    transform=_segment_features,
    label_rows=_behaviour_label_rows,
    label_sources=("customer_closures", "orders"),
)
