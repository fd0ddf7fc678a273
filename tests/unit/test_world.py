"""The data world: determinism, domain independence, sizes, truth keys, mess rates, drift, causality."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest

from raycore.data.lake import frame_digest
from raycore.data.world import GENERATORS, SCALES, DriftSpec, World, WorldConfig, generate_world
from raycore.data.world import customer_events as cust_mod
from raycore.data.world import products as prod_mod
from raycore.data.world import risk as risk_mod
from raycore.data.world.customers import generate_customers
from raycore.data.world.infra import generate_infra
from raycore.data.world.products import generate_products
from raycore.data.world.retail import generate_retail
from raycore.data.world.risk import generate_risk
from raycore.data.world.supply import generate_supply

CONFIG = WorldConfig(seed=7, scale="small")
DRIFT_START = date(2025, 1, 6)

Generator = Callable[..., None]


def _partial(
    config: WorldConfig, generators: tuple[Generator, ...], drift: DriftSpec | None = None
) -> World:
    world = World(config=config)
    for generate in generators:
        if drift is not None and generate in (
            generate_products,
            generate_customers,
            generate_risk,
            generate_infra,
        ):
            generate(config, world, drift=drift)
        else:
            generate(config, world)
    return world


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(CONFIG)


def _digests(w: World) -> dict[str, str]:
    return {
        name: frame_digest(df)
        for name, df in {**w.tables, **{f"truth/{k}": v for k, v in w.truth.items()}}.items()
    }


# ---------------------------------------------------------------- determinism and independence


def test_same_seed_gives_equal_frames(world: World) -> None:
    again = generate_world(WorldConfig(seed=7, scale="small"))
    assert _digests(again) == _digests(world)


def test_different_seed_gives_different_frames(world: World) -> None:
    other = _partial(
        WorldConfig(seed=8, scale="small"), (generate_retail, generate_products, generate_risk)
    )
    for name in ("products", "product_demand_weekly", "credit_applications", "market_daily"):
        assert frame_digest(other.tables[name]) != frame_digest(world.tables[name]), name


def test_domains_are_independent(world: World) -> None:
    """A domain's tables do not depend on which other domains ran (only on the tables it reads)."""
    alone = _partial(CONFIG, (generate_retail, generate_risk, generate_infra))
    for name in (
        "credit_applications",
        "credit_outcomes",
        "market_daily",
        "site_daily_ops",
        "infra_metrics",
    ):
        pd.testing.assert_frame_equal(alone.tables[name], world.tables[name])
    supply = _partial(CONFIG, (generate_retail, generate_products, generate_supply))
    for name in ("purchase_orders", "production_batches", "delivery_stops"):
        pd.testing.assert_frame_equal(supply.tables[name], world.tables[name])


def test_every_generator_is_registered_after_retail() -> None:
    assert GENERATORS[0] is generate_retail
    assert len(set(GENERATORS)) == len(GENERATORS) >= 9


# ---------------------------------------------------------------- sizes


def _fixed_rows(scale: str) -> int:
    """Rows of the tables whose size is a closed formula of the scale (a lower bound of the total)."""
    s = SCALES[scale]
    days, weekdays = s["n_weeks"] * 7, s["n_weeks"] * 5
    return (
        s["n_stores"] * s["n_weeks"]  # store_sales_weekly
        + s["n_inventory_products"]
        * s["n_inventory_stores"]
        * s["n_weeks"]  # store_inventory_weekly
        + s["n_stores"] * days  # site_daily_ops
        + s["n_hosts"] * 4 * 288 * s["n_metric_days"]  # infra_metrics
        + s["n_applications"]
        + s["n_offer_sessions"] * 6
        + s["n_journeys"]
        + s["n_campaigns"]
        + s["n_lines"] * s["n_weeks"] * 6  # production_line_weekly + production_batches
        + s["n_instruments"] * weekdays
        + s["n_regions"] * s["n_weeks"] * 7  # market, media spend + sales
        + s["n_customers"]
        + s["n_delivery_runs"]
    )


def test_row_counts_follow_the_scale_formulas(world: World) -> None:
    s = SCALES["small"]
    truth = world.truth
    assert (
        len(truth["store_inventory_weekly_truth"])
        == s["n_inventory_products"] * s["n_inventory_stores"] * s["n_weeks"]
    )
    assert len(truth["site_daily_ops_truth"]) == s["n_stores"] * s["n_weeks"] * 7
    assert len(truth["infra_metrics_truth"]) == s["n_hosts"] * 4 * 288 * s["n_metric_days"]
    assert len(truth["credit_applications_truth"]) == s["n_applications"]
    assert len(truth["offer_impressions_truth"]) == s["n_offer_sessions"] * 6
    assert len(truth["production_batches_truth"]) == s["n_lines"] * s["n_weeks"] * 5
    assert len(truth["customers_truth"]) == s["n_customers"]
    assert len(truth["journeys_truth"]) == s["n_journeys"]
    assert len(truth["campaigns_truth"]) == s["n_campaigns"]
    assert len(truth["market_daily_truth"]) == s["n_instruments"] * s["n_weeks"] * 5
    assert len(truth["products_truth"]) == s["n_products"]
    total = sum(len(df) for df in world.tables.values())
    assert _fixed_rows("small") <= total < 5_000_000
    assert (
        _fixed_rows("large") >= 10_000_000
    )  # large reaches 10M rows from its formula tables alone


# ---------------------------------------------------------------- truth keyed to business tables

KEYED = [
    ("customers", "customers_truth", ["customer_id"]),
    ("orders", "orders_truth", ["order_id"]),
    ("feedback", "feedback_truth", ["feedback_id"]),
    ("products", "products_truth", ["product_id"]),
    ("product_prices_daily", "product_prices_daily_truth", ["product_id", "date"]),
    ("product_demand_weekly", "product_demand_weekly_truth", ["product_id", "week_start"]),
    ("competitor_prices", "competitor_prices_truth", ["product_id", "competitor", "week_start"]),
    (
        "regional_demand_weekly",
        "regional_demand_weekly_truth",
        ["region_id", "product_id", "week_start"],
    ),
    (
        "store_inventory_weekly",
        "store_inventory_weekly_truth",
        ["product_id", "store_id", "week_start"],
    ),
    ("purchase_orders", "purchase_orders_truth", ["po_id"]),
    ("production_batches", "production_batches_truth", ["batch_id"]),
    ("production_line_weekly", "production_line_weekly_truth", ["line_id", "week_start"]),
    ("delivery_stops", "delivery_stops_truth", ["stop_id"]),
    ("delivery_runs", "delivery_runs_truth", ["run_id"]),
    (
        "marketing_spend_weekly",
        "marketing_spend_weekly_truth",
        ["region_id", "channel", "week_start"],
    ),
    ("media_sales_weekly", "media_sales_weekly_truth", ["region_id", "week_start"]),
    ("campaigns", "campaigns_truth", ["campaign_id"]),
    ("journeys", "journeys_truth", ["journey_id"]),
    ("offer_impressions", "offer_impressions_truth", ["impression_id"]),
    ("credit_applications", "credit_applications_truth", ["application_id"]),
    ("market_daily", "market_daily_truth", ["instrument_id", "trade_date"]),
    ("site_daily_ops", "site_daily_ops_truth", ["store_id", "date"]),
    ("infra_metrics", "infra_metrics_truth", ["host_id", "metric", "ts"]),
]


@pytest.mark.parametrize(("table", "truth", "keys"), KEYED)
def test_truth_is_keyed_to_its_business_table(
    world: World, table: str, truth: str, keys: list[str]
) -> None:
    business = world.tables[table][keys].drop_duplicates()
    known = world.truth[truth][keys]
    assert not known.duplicated().any()
    pd.testing.assert_frame_equal(
        business.sort_values(keys, ignore_index=True),
        known.sort_values(keys, ignore_index=True),
        check_dtype=False,
    )
    id_cols = [c for c in world.tables[table].columns if c.endswith("_id")]
    assert all(world.tables[table][c].dtype == "int64" for c in id_cols), id_cols
    assert all(c == c.lower() for c in world.tables[table].columns)


def test_secondary_truth_tables_reference_known_ids(world: World) -> None:
    customers = set(world.truth["customers_truth"]["customer_id"])
    assert set(world.truth["customer_churn_truth"]["customer_id"]) <= customers
    assert set(world.truth["customer_clv_truth"]["customer_id"]) <= customers
    assert set(world.tables["credit_outcomes"]["application_id"]) <= set(
        world.tables["credit_applications"]["application_id"]
    )
    assert set(world.truth["supplier_tiers_truth"]["supplier_id"]) == set(
        world.tables["supplier_assessments"]["supplier_id"]
    )


def test_timestamps_are_datetime64_ns(world: World) -> None:
    for name, df in world.tables.items():
        for column in df.columns:
            if column.endswith(("_at", "_date")) or column in (
                "date",
                "ts",
                "week_start",
                "trade_date",
            ):
                assert str(df[column].dtype) == "datetime64[ns]", (name, column)


# ---------------------------------------------------------------- mess


def _within(observed: float, rate: float, n: int) -> bool:
    sd = np.sqrt(max(rate, 1e-4) * (1 - rate) / n)
    return abs(observed - rate) <= 5 * sd + 1e-3


def test_orders_mess_rates_match_the_documented_constants(world: World) -> None:
    rates = cust_mod.ORDERS_MESS
    orders = world.tables["orders"]
    n = world.truth["orders_truth"].shape[0]
    assert _within(orders["order_id"].duplicated().mean(), rates.duplicate, n)
    first = orders.drop_duplicates("order_id").merge(
        world.truth["orders_truth"][["order_id", "amount"]], on="order_id", suffixes=("", "_true")
    )
    malformed = (first["amount"] < 0) | (first["amount"] == 999_999.0)
    assert _within(malformed.mean(), rates.malformed, n)
    outlier = ~malformed & (first["amount"] > 7.9 * first["amount_true"])
    assert _within(outlier.mean(), rates.outlier * (1 - rates.malformed), n)
    assert _within(first["discount_amount"].isna().mean(), rates.missing, n)
    assert _within(
        first["category"].isin(("unknown", "N/A", "other")).mean(), rates.unknown_category, n
    )
    late = first["available_at"] - first["ordered_at"] > pd.Timedelta(hours=7)
    assert _within(late.mean(), rates.late, n)
    assert (first["available_at"] >= first["ordered_at"]).all()


@pytest.mark.parametrize(
    ("table", "rates", "value_column", "event_column", "base_lag"),
    [
        (
            "credit_applications",
            risk_mod.APPLICATIONS_MESS,
            "employment_years",
            "applied_at",
            pd.Timedelta(minutes=1),
        ),
        (
            "product_demand_weekly",
            prod_mod.DEMAND_MESS,
            "units",
            "week_start",
            pd.Timedelta(days=7),
        ),
        ("feedback", cust_mod.FEEDBACK_MESS, "sentiment", "created_at", pd.Timedelta(minutes=10)),
    ],
)
def test_mess_rates_within_bounds(
    world: World,
    table: str,
    rates: object,
    value_column: str,
    event_column: str,
    base_lag: pd.Timedelta,
) -> None:
    df = world.tables[table]
    key = [c for c in df.columns if c.endswith("_id")][:1] or ["product_id"]
    key = key if table != "product_demand_weekly" else ["product_id", "week_start"]
    unique = df.drop_duplicates(key)
    n = len(unique)
    assert _within(1 - n / len(df), rates.duplicate, n)  # type: ignore[attr-defined]
    assert _within(unique[value_column].isna().mean(), rates.missing, n)  # type: ignore[attr-defined]
    late = unique["available_at"] - unique[event_column] > base_lag + pd.Timedelta(hours=7)
    assert _within(late.mean(), rates.late, n)  # type: ignore[attr-defined]


def test_truth_tables_are_clean(world: World) -> None:
    assert not world.truth["orders_truth"]["order_id"].duplicated().any()
    assert (world.truth["orders_truth"]["amount"] > 0).all()
    assert world.truth["product_demand_weekly_truth"]["expected_units"].notna().all()


# ---------------------------------------------------------------- drift


def _split(df: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    before = df[df[column] < pd.Timestamp(DRIFT_START)]
    return before, df[df[column] >= pd.Timestamp(DRIFT_START)]


def test_drift_spec_validates_its_tables() -> None:
    with pytest.raises(ValueError, match="does not support"):
        DriftSpec(start=DRIFT_START, kind="concept", magnitude=0.3, tables=("orders",))
    with pytest.raises(ValueError, match="magnitude"):
        DriftSpec(start=DRIFT_START, kind="covariate", magnitude=0.0, tables=("orders",))


def test_covariate_drift_changes_prices_only_after_start() -> None:
    spec = DriftSpec(
        start=DRIFT_START, kind="covariate", magnitude=0.3, tables=("product_prices_daily",)
    )
    base = _partial(CONFIG, (generate_retail, generate_products))
    drifted = _partial(CONFIG, (generate_retail, generate_products), drift=spec)
    b0, b1 = _split(
        base.truth["product_prices_daily_truth"].merge(
            base.tables["product_prices_daily"].drop_duplicates(["product_id", "date"])
        ),
        "date",
    )
    d0, d1 = _split(
        drifted.truth["product_prices_daily_truth"].merge(
            drifted.tables["product_prices_daily"].drop_duplicates(["product_id", "date"])
        ),
        "date",
    )
    pd.testing.assert_frame_equal(b0.drop(columns=["drifted"]), d0.drop(columns=["drifted"]))
    assert d1["list_price"].median() > 1.2 * b1["list_price"].median()
    u0, u1 = _split(base.truth["product_demand_weekly_truth"], "week_start")
    v0, v1 = _split(drifted.truth["product_demand_weekly_truth"], "week_start")
    pd.testing.assert_frame_equal(u0.drop(columns=["drifted"]), v0.drop(columns=["drifted"]))
    assert (
        v1["expected_units"].sum() < 0.9 * u1["expected_units"].sum()
    )  # demand follows the elasticity
    assert drifted.truth["drift_truth"]["table_name"].tolist() == ["product_prices_daily"]


def test_concept_drift_changes_defaults_only_after_start() -> None:
    spec = DriftSpec(start=DRIFT_START, kind="concept", magnitude=0.4, tables=("credit_outcomes",))
    base = _partial(CONFIG, (generate_retail, generate_risk))
    drifted = _partial(CONFIG, (generate_retail, generate_risk), drift=spec)
    pd.testing.assert_frame_equal(
        base.tables["credit_applications"], drifted.tables["credit_applications"]
    )  # inputs unchanged
    t_b = base.truth["credit_applications_truth"].merge(
        base.tables["credit_applications"].drop_duplicates("application_id")[
            ["application_id", "applied_at"]
        ]
    )
    t_d = drifted.truth["credit_applications_truth"].merge(
        drifted.tables["credit_applications"].drop_duplicates("application_id")[
            ["application_id", "applied_at"]
        ]
    )
    b0, b1 = _split(t_b, "applied_at")
    d0, d1 = _split(t_d, "applied_at")
    pd.testing.assert_frame_equal(b0.drop(columns=["drifted"]), d0.drop(columns=["drifted"]))
    assert d1["pd_12m"].mean() > 1.25 * b1["pd_12m"].mean()
    assert d1["drifted"].all() and not d0["drifted"].any()


def test_new_category_drift_appears_only_after_start() -> None:
    spec = DriftSpec(
        start=DRIFT_START, kind="new_category", magnitude=0.2, tables=("credit_applications",)
    )
    drifted = _partial(CONFIG, (generate_retail, generate_risk), drift=spec)
    before, after = _split(drifted.tables["credit_applications"], "applied_at")
    assert (before["loan_purpose"] != "bnpl_refinance").all()
    assert 0.15 < (after["loan_purpose"] == "bnpl_refinance").mean() < 0.25


def test_concept_drift_on_churn_keeps_the_past(world: World) -> None:
    spec = DriftSpec(
        start=DRIFT_START, kind="concept", magnitude=0.5, tables=("customer_closures",)
    )
    gens = (generate_retail, generate_products, generate_customers)
    base, drifted = world, _partial(CONFIG, gens, drift=spec)  # the module world is the no-drift baseline
    b0, b1 = _split(base.truth["customer_churn_truth"], "snapshot_date")
    d0, d1 = _split(drifted.truth["customer_churn_truth"], "snapshot_date")
    pd.testing.assert_frame_equal(b0.drop(columns=["drifted"]), d0.drop(columns=["drifted"]))
    assert d1["churn_probability_90d"].mean() > 1.5 * b1["churn_probability_90d"].mean()
    o0, _ = _split(base.tables["orders"], "ordered_at")
    p0, _ = _split(drifted.tables["orders"], "ordered_at")
    pd.testing.assert_frame_equal(o0, p0)


# ---------------------------------------------------------------- causal relationships hold


def test_customer_domain_causality(world: World) -> None:
    churn = world.truth["customer_churn_truth"]
    assert (
        churn.loc[churn["churned_90d"] == 1, "churn_probability_90d"].mean()
        > 2 * churn.loc[churn["churned_90d"] == 0, "churn_probability_90d"].mean()
    )
    assert (
        churn.loc[churn["churned_90d"] == 1, "satisfaction_ewma"].mean()
        < churn.loc[churn["churned_90d"] == 0, "satisfaction_ewma"].mean()
    )
    clv = world.truth["customer_clv_truth"]
    assert np.corrcoef(clv["expected_spend_12m"], clv["realized_spend_12m"])[0, 1] > 0.85
    segments = world.truth["customers_truth"]
    assert (segments["segment"] == segments["map_segment"]).mean() > 0.9
    fb = world.truth["feedback_truth"]
    post = fb[["p_negative", "p_neutral", "p_positive"]].to_numpy()
    accuracy = (
        np.array(["negative", "neutral", "positive"])[post.argmax(axis=1)] == fb["true_sentiment"]
    ).mean()
    assert 0.93 < accuracy < 0.98
    by_class = fb.groupby("true_sentiment")["satisfaction"].mean()
    assert by_class["negative"] < by_class["neutral"] < by_class["positive"]
    orders = world.truth["orders_truth"].merge(
        world.tables["orders"].drop_duplicates("order_id")[["order_id", "delivery_delay_days"]]
    )
    assert (orders.loc[orders["is_late_delivery"], "delivery_delay_days"].dropna() >= 3).all()
    offers = world.truth["offer_impressions_truth"].merge(
        world.tables["offer_impressions"].drop_duplicates("impression_id")
    )
    assert (
        offers.loc[offers["accepted"] == 1, "accept_probability"].mean()
        > 1.5 * offers.loc[offers["accepted"] == 0, "accept_probability"].mean()
    )


def test_product_domain_causality(world: World) -> None:
    products = world.truth["products_truth"]
    assert (products["elasticity"] < 0).all()
    demand = world.truth["product_demand_weekly_truth"]
    promo = demand[demand["on_promo"]]
    assert (
        promo["expected_units"] > promo["expected_units_no_promo"]
    ).mean() > 0.99  # lower price -> more units
    daily = world.truth["product_prices_daily_truth"].merge(
        world.tables["product_prices_daily"].drop_duplicates(["product_id", "date"])
    )
    daily = daily[daily["price"].between(0.01, 999_998)]
    demand_at_price = (
        daily["base_demand_at_reference"]
        * (daily["price"] / daily["reference_price"]) ** daily["elasticity"]
    )
    higher = demand_at_price * (1.1 ** daily["elasticity"])  # the same day at a 10% higher price
    assert (higher < demand_at_price).all()
    shares = (
        world.truth["regional_demand_weekly_truth"]
        .groupby(["product_id", "week_start"])["expected_share"]
        .sum()
    )
    assert np.allclose(shares, 1.0)
    comp = world.truth["competitor_prices_truth"].merge(
        world.tables["competitor_prices"].drop_duplicates(
            ["product_id", "competitor", "week_start"]
        )
    )
    comp = comp.sort_values(["product_id", "competitor", "week_start"])
    nxt = comp.groupby(["product_id", "competitor"])["price"].shift(-1)
    ok = nxt.notna() & comp["price"].notna() & (nxt < 10 * comp["oracle_next_price"])
    assert (abs(nxt[ok] - comp.loc[ok, "oracle_next_price"]) / nxt[ok]).mean() < 0.06
    inv = world.truth["store_inventory_weekly_truth"].merge(
        world.tables["store_inventory_weekly"].drop_duplicates(
            ["product_id", "store_id", "week_start"]
        )
    )
    assert (
        inv.loc[inv["stockout"] == 1, "stockout_probability"].mean()
        > 2 * inv.loc[inv["stockout"] == 0, "stockout_probability"].mean()
    )
    assert (inv["stock_for_95_service"] >= np.floor(inv["expected_demand"])).all()
    assert 0.93 < (inv["demand"] <= inv["stock_for_95_service"]).mean() < 0.97


def test_supply_domain_causality(world: World) -> None:
    po = world.truth["purchase_orders_truth"]
    by_tier = po.groupby("risk_tier")["delay_days"].mean()
    assert by_tier["low"] < by_tier["medium"] < by_tier["high"]
    batches = world.truth["production_batches_truth"].merge(
        world.tables["production_batches"].drop_duplicates("batch_id")
    )
    assert (
        batches.loc[batches["defective"] == 1, "defect_probability"].mean()
        > 2 * batches.loc[batches["defective"] == 0, "defect_probability"].mean()
    )
    lines = world.truth["production_line_weekly_truth"].merge(
        world.tables["production_line_weekly"].drop_duplicates(["line_id", "week_start"])
    )
    lines = lines[lines["defects"].between(0, 999_998)]
    assert np.corrcoef(lines["expected_defects"], lines["defects"])[0, 1] > 0.6
    stops = (
        world.truth["delivery_stops_truth"]
        .merge(world.tables["delivery_stops"].drop_duplicates("stop_id"))
        .dropna(subset=["travel_minutes"])
    )
    stops = stops[stops["travel_minutes"] < 5 * stops["expected_travel_minutes"]]
    assert (
        abs(stops["travel_minutes"] - stops["expected_travel_minutes"]) / stops["travel_minutes"]
    ).mean() < 0.1


def test_marketing_domain_causality(world: World) -> None:
    effects = world.truth["channel_effects_truth"]
    assert (effects["roi"] > 0).all() and np.isclose(effects["true_share"].sum(), 1.0)
    spend = world.truth["marketing_spend_weekly_truth"]
    rank_corr = spend.groupby(["channel", "region_id"]).apply(
        lambda g: g["adstock"].rank().corr(g["contribution"].rank())
    )
    assert rank_corr.min() > 0.999  # saturation: contribution increases with adstocked spend
    journeys = world.truth["journeys_truth"].merge(
        world.tables["journeys"].drop_duplicates("journey_id")
    )
    assert (
        journeys.loc[journeys["converted"] == 1, "conversion_probability"].mean()
        > journeys.loc[journeys["converted"] == 0, "conversion_probability"].mean()
    )
    campaigns = world.truth["campaigns_truth"].merge(
        world.tables["campaigns"].drop_duplicates("campaign_id")
    )
    assert np.corrcoef(campaigns["expected_conversions"], campaigns["conversions"])[0, 1] > 0.85


def test_risk_and_infra_causality(world: World) -> None:
    credit = world.truth["credit_applications_truth"].merge(
        world.tables["credit_applications"].drop_duplicates("application_id")
    )
    assert (
        credit.loc[credit["defaulted_12m"] == 1, "pd_12m"].mean()
        > 1.8 * credit.loc[credit["defaulted_12m"] == 0, "pd_12m"].mean()
    )
    assert (
        np.corrcoef(credit["debt_to_income"], credit["pd_12m"])[0, 1] > 0.1
    )  # monotone risk factor
    market = world.truth["market_daily_truth"].merge(
        world.tables["market_daily"].drop_duplicates(["instrument_id", "trade_date"])
    )
    market = market.sort_values(["instrument_id", "trade_date"])
    nxt = market.groupby("instrument_id")["realized_vol"].shift(-1)
    ok = nxt.notna()
    assert np.corrcoef(market.loc[ok, "oracle_next_day_vol"], nxt[ok])[0, 1] > 0.7
    ops = world.truth["site_daily_ops_truth"]
    incidents = world.tables["incidents"].drop_duplicates("incident_id")
    hit = ops.merge(
        incidents.assign(date=incidents["occurred_at"].dt.normalize())[
            ["store_id", "date"]
        ].drop_duplicates(),
        how="inner",
    )
    assert hit["incident_probability"].mean() > 2 * ops["incident_probability"].mean()
    infra = (
        world.truth["infra_metrics_truth"]
        .merge(world.tables["infra_metrics"].drop_duplicates(["host_id", "metric", "ts"]))
        .dropna(subset=["value"])
    )
    z = (infra["value"] - infra["expected_value"]).abs() / infra["noise_scale"]
    assert z[infra["is_anomaly"]].median() > 4 > z[~infra["is_anomaly"]].median()
    assert 0.005 < infra["is_anomaly"].mean() < 0.03
