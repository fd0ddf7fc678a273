"""Feature views of the product models: demand, prices, promotions, competitors, regions, launches.

Feature tables (each computed from one silver table; a row is available once
every source row it was computed from has arrived):

- ``product_demand_history`` (``product_demand_weekly``; product x ``demand_origin_week``):
  the latest weekly units, their 13-week median / mean, the mean of the regular
  (not promoted) weeks over 13 / 26 / 52 weeks, the median selling price
  (revenue / units), and the product's past response to price cuts (a promoted
  week is one sold below 97% of the median price).
- ``product_demand_fit`` (``product_demand_weekly``; product x ``fit_origin_week``):
  a regression of log units over every regular week up to the origin on the
  week's log selling price (elasticity shrunk towards a typical -1.5) and the
  yearly cycle (two harmonics, holiday weeks), and its mean residual over the
  last 13 weeks: the product's level with season and price taken out, read
  from all of its history rather than the 13 noisy weeks of the median.
- ``product_attributes`` (``products``; product x ``launch_date``): category,
  brand tier, pack size (0 = unknown) and launch list price.
- ``product_list_prices`` (``product_prices_daily``; product x ``price_date``):
  the list price of the day, a week and two weeks before, and weekly means.
- ``competitor_price_index`` (``competitor_prices``; product x ``comp_index_origin_week``):
  the geometric mean of the competitors' prices, latest week and 13 weeks.
- ``competitor_price_history`` (``competitor_prices``; product x competitor x
  ``comp_origin_week``): the latest scraped prices with wrong-pack scrapes
  (a price 8-40x too high) screened out against the series' recent median and
  the other competitor.
- ``regional_share_history`` (``regional_demand_weekly``; region x product x
  ``share_origin_week``): the region's share of the product's national units
  over the last 13 and 52 weeks and in the latest week.

Views (one per catalog model, several share tables and label rows):

- ``product_weekly_demand`` (mdl-006): units of a product in a target week, from
  recent demand, the demand fit's forecast at the planned list price, the
  planned discount / promotion type of that week, competitor prices, calendar
  and attributes; label scaled by the 13-week median.
- ``promotion_uplift`` (mdl-016): the same rows for the T-learner, without the
  selling price (which mixes the week without the promotion and the treatment).
- ``product_price_response`` (mdl-011): the same rows with the planned selling
  price entering through one feature only (``log_price_rel``), so a monotone
  constraint on it makes predicted demand non-increasing in price.
- ``product_seasonality`` (mdl-010) and ``product_price_elasticity`` (mdl-012):
  request-level rows for the decomposition and log-log estimators of
  ``raycore.models.custom.products``.
- ``regional_demand_share`` (mdl-009), ``new_product_attributes`` (mdl-017),
  ``competitor_price_next`` (mdl-018).

Planned prices and promotions are request inputs: promotions are planned 21 days
ahead and prices published a day ahead, so a forecast or a price decision for a
week is made knowing them. For training, label rows take them from the silver
``product_prices_daily`` and ``promotions`` tables (``label_sources``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView

__all__ = [
    "CATEGORIES",
    "COMPETITOR_PRICE_HISTORY",
    "COMPETITOR_PRICE_INDEX",
    "COMPETITOR_PRICE_NEXT",
    "NEW_PRODUCT_ATTRIBUTES",
    "PRODUCT_ATTRIBUTES",
    "PRODUCT_DEMAND_FIT",
    "PRODUCT_DEMAND_HISTORY",
    "PRODUCT_LIST_PRICES",
    "PRODUCT_PRICE_ELASTICITY",
    "PRODUCT_PRICE_RESPONSE",
    "PRODUCT_SEASONALITY",
    "PRODUCT_WEEKLY_DEMAND",
    "PROMOTION_UPLIFT",
    "PROMO_TYPES",
    "REGIONAL_DEMAND_SHARE",
    "REGIONAL_SHARE_HISTORY",
]

CATEGORIES = ("grocery", "home", "electronics", "apparel", "beauty", "toys", "smart_home")
TIERS = ("value", "standard", "premium")
PROMO_TYPES = ("none", "tpr", "display", "feature")
COMPETITORS = ("comp_a", "comp_b")
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)
WEEK = pd.Timedelta(days=7)
DAY = pd.Timedelta(days=1)
WINDOW = 13
LONG_WINDOW = 52
MAX_HORIZON = 6
FIRST_WEEKS = 8  # new-product label: units of the first eight weeks on sale
# A competitor price this far from its reference is a wrong-pack scrape (the mess multiplies by 8-40).
OUTLIER_RATIO = 2.5
# Shrinkage (in squared log price cut) of a product's historical promotion slope towards 0.
PROMO_SLOPE_PRIOR = 0.05
# A week whose mean selling price is below this share of the 13-week median price was promoted.
PROMO_PRICE_RATIO = 0.97
# Demand fit (product_demand_fit): regular weeks needed, the price elasticity it shrinks towards and how
# hard (in units of the normal equations: a weight of 20 needs a log-price spread of ~0.6 over a year of
# weeks to move the estimate half-way), and the weeks of a launch ramp left out of it.
FIT_MIN_WEEKS = 26
FIT_ELASTICITY_PRIOR = -1.5
FIT_ELASTICITY_WEIGHT = 20.0
FIT_RAMP_WEEKS = 10
FIT_RESID_WEEKS = 13
FIT_SEASON_TERMS = ("sin", "cos", "sin2", "cos2", "holiday")
YEAR_WEEKS = 52.18


# --------------------------------------------------------------------------- helpers


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[ns]")


def _known(frame: pd.DataFrame, event: pd.Series, lag: pd.Timedelta) -> pd.Series:
    """When a row could first be known: its ``available_at``, never before ``event + lag``."""
    floor = event + lag
    if AVAILABLE_AT not in frame.columns:
        return floor
    arrived = _dates(frame[AVAILABLE_AT])
    return arrived.where(arrived.notna() & (arrived > floor), floor)


def _matrix(frame: pd.DataFrame, index: str, columns: str | list[str], values: str, full: pd.Index) -> pd.DataFrame:
    """A time x entity matrix of one column (last value per cell), rows reindexed to ``full``."""
    return frame.pivot_table(index=index, columns=columns, values=values, aggfunc="last", dropna=False).reindex(full)


def _weeks(values: pd.Series) -> pd.DatetimeIndex:
    return pd.date_range(values.min(), values.max(), freq="7D")


def _long(cols: dict[str, pd.DataFrame], known: pd.DataFrame, keep: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Stack time x entity matrices into rows where ``keep`` holds; ``names`` = [time, *entity]."""
    levels = list(range(keep.columns.nlevels))
    mask = keep.stack(levels, future_stack=True)
    out = pd.DataFrame({name: frame.stack(levels, future_stack=True) for name, frame in cols.items()})
    out[AVAILABLE_AT] = known.stack(levels, future_stack=True)
    out = out[mask.to_numpy(dtype=bool)]
    out = out.reset_index(names=names)
    out[AVAILABLE_AT] = pd.to_datetime(out[AVAILABLE_AT].astype("int64"))
    return out


def _stack(frame: pd.DataFrame, name: str, index: list[str]) -> pd.DataFrame:
    """A time x entity matrix as long rows ``[*index, name]`` (every column level stacked), NaN dropped."""
    out = frame.stack(list(range(frame.columns.nlevels)), future_stack=True).dropna()
    return out.rename(name).rename_axis(index).reset_index()


def _week_of_year(week_start: pd.Series) -> np.ndarray:
    return week_start.dt.isocalendar().week.to_numpy().astype("float64")


def _calendar(out: pd.DataFrame, week_start: pd.Series, prefix: str = "") -> None:
    woy = _week_of_year(week_start)
    angle = 2.0 * np.pi * woy / 52.18
    out[f"{prefix}week_of_year"] = woy
    out[f"{prefix}season_sin"] = np.sin(angle)
    out[f"{prefix}season_cos"] = np.cos(angle)
    out[f"{prefix}holiday_peak"] = np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64")


def _codes(values: pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    """Integer code of each value in ``levels``; -1 for anything else (an unseen category)."""
    return pd.Categorical(values, categories=list(levels)).codes.astype("float64")


def _log_pack(pack: pd.Series) -> np.ndarray:
    p = pack.to_numpy(dtype="float64")
    return np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), np.nan)


def _check_all(index: pd.Index, *parts: tuple[np.ndarray, np.ndarray]) -> pd.Series:
    """Per row, the first failing check's message ('' where every check passes)."""
    out = np.full(len(index), "", dtype=object)
    for bad, msgs in parts:
        out = np.where(bad & (out == ""), msgs, out)
    return pd.Series(out, index=index, dtype=object)


def _messages(bad: np.ndarray, template: str, **columns: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``template`` filled with the row's ``columns`` where ``bad`` (formatted for those rows only)."""
    bad = np.asarray(bad, dtype=bool)
    msgs = np.full(len(bad), "", dtype=object)
    where = np.flatnonzero(bad)
    if len(where):
        rows = pd.DataFrame({k: v.to_numpy()[where] for k, v in columns.items()})
        msgs[where] = [template.format(**row) for row in rows.to_dict("records")]
    return bad, msgs


# --------------------------------------------------------------------------- feature tables


def _demand_history(demand: pd.DataFrame) -> pd.DataFrame:
    d = demand.assign(week_start=_dates(demand["week_start"]))
    d = d[d["units"].notna()]
    units = d["units"].astype("float64")
    d = d.assign(
        units=units,
        _price=(d["revenue"].astype("float64") / units).where(units > 0),
        _known=_known(d, d["week_start"], WEEK).astype("int64").astype("float64"),
    )
    weeks = _weeks(d["week_start"])
    u = _matrix(d, "week_start", "product_id", "units", weeks)
    p = _matrix(d, "week_start", "product_id", "_price", weeks)
    k = _matrix(d, "week_start", "product_id", "_known", weeks)
    median = u.rolling(WINDOW, min_periods=3).median()
    price_median = p.rolling(WINDOW, min_periods=3).median()
    # A week sold below the usual price is a promotion (the table has no promotion column):
    # regular weeks give the level, promoted ones the product's response to a price cut.
    price_ratio = p / price_median
    regular = u.where(price_ratio >= PROMO_PRICE_RATIO)
    cols = {f"units_lag_{j}": u.shift(j - 1).fillna(median) for j in range(1, 5)}
    cols["units_median_13"] = median
    cols["units_mean_13"] = u.rolling(WINDOW, min_periods=3).mean()
    for n in (13, 26, 52):
        cols[f"regular_mean_{n}"] = regular.rolling(n, min_periods=3).mean().fillna(median)
    cols["price_median_13"] = price_median
    promo = price_ratio < PROMO_PRICE_RATIO
    with np.errstate(all="ignore"):
        x = np.log(price_ratio).where(promo)
        y = np.log(u / cols["regular_mean_13"].shift(1)).where(promo)
    both = x.notna() & y.notna()
    cols["promo_sxy"] = (x * y).where(both, 0.0).cumsum()
    cols["promo_sxx"] = (x * x).where(both, 0.0).cumsum()
    cols["promo_weeks"] = both.cumsum()
    cols["weeks_observed"] = u.notna().cumsum()
    known = k.cummax()  # every week up to the origin may have fed a field
    keep = u.notna() & median.notna() & (median > 0) & price_median.notna()
    out = _long(cols, known, keep, ["demand_origin_week", "product_id"])
    out["product_id"] = out["product_id"].astype("int64")
    for col in ("weeks_observed", "promo_weeks"):
        out[col] = out[col].astype("int64")
    return out


PRODUCT_DEMAND_HISTORY = FeatureTable(
    name="product_demand_history",
    version=1,
    entity=("product_id",),
    event_time="demand_origin_week",
    source="product_demand_weekly",
    ttl=pd.Timedelta(days=42),
    description="Latest weekly units of a product, their 13-week median and mean, and the median selling price.",
    fields=(
        FeatureField("demand_origin_week", "date", "The latest week whose units are known (the forecast origin)."),
        FeatureField("units_lag_1", "float", "Units of the origin week.", ge=0),
        FeatureField("units_lag_2", "float", "Units one week before the origin (13-week median if missing).", ge=0),
        FeatureField("units_lag_3", "float", "Units two weeks before the origin (13-week median if missing).", ge=0),
        FeatureField("units_lag_4", "float", "Units three weeks before the origin (13-week median if missing).", ge=0),
        FeatureField("units_median_13", "float", "Median weekly units of the 13 weeks ending at the origin.", ge=0.01),
        FeatureField("units_mean_13", "float", "Mean weekly units of those weeks.", ge=0),
        FeatureField("regular_mean_13", "float", "Mean units of the regular (not promoted) weeks among the 13.", ge=0),
        FeatureField("regular_mean_26", "float", "Mean units of the regular weeks among the last 26.", ge=0),
        FeatureField("regular_mean_52", "float", "Mean units of the regular weeks among the last 52.", ge=0),
        FeatureField("price_median_13", "float", "Median selling price (revenue / units) of those weeks.", ge=0.01),
        FeatureField("promo_sxy", "float", "Sum over past promoted weeks of log price cut x log lift over the level."),
        FeatureField("promo_sxx", "float", "Sum over past promoted weeks of the squared log price cut.", ge=0),
        FeatureField("promo_weeks", "int", "Promoted weeks observed up to the origin.", ge=0),
        FeatureField("weeks_observed", "int", "Weeks of demand observed up to the origin.", ge=1),
    ),
    compute=_demand_history,
)


def _fit_season(woy: np.ndarray) -> np.ndarray:
    """Regressors of the yearly cycle (``FIT_SEASON_TERMS``) for ISO weeks ``woy``; shape ``(*woy.shape, 5)``."""
    woy = np.asarray(woy, dtype="float64")
    angle = 2.0 * np.pi * woy / YEAR_WEEKS
    holiday = np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64")
    return np.stack([np.sin(angle), np.cos(angle), np.sin(2.0 * angle), np.cos(2.0 * angle), holiday], axis=-1)


def _demand_fit(demand: pd.DataFrame) -> pd.DataFrame:
    """Per product and origin week, ``log units = a + e log price + theta . season(woy)`` over its regular weeks.

    Regular weeks are those sold at no less than ``PROMO_PRICE_RATIO`` of the 13-week median price (as in
    ``product_demand_history``), after the first ``FIT_RAMP_WEEKS`` of a product launched inside the data.
    All origins are solved at once from cumulative sums of the normal equations (7 x 7 per product and
    week). Rows with fewer than ``FIT_MIN_WEEKS`` regular weeks carry zeros and ``fit_weeks`` says so.
    """
    d = demand.assign(week_start=_dates(demand["week_start"]))
    d = d[d["units"].notna()]
    units = d["units"].astype("float64")
    d = d.assign(
        units=units,
        _price=(d["revenue"].astype("float64") / units).where(units > 0),
        _known=_known(d, d["week_start"], WEEK).astype("int64").astype("float64"),
    )
    weeks = _weeks(d["week_start"])
    u = _matrix(d, "week_start", "product_id", "units", weeks)
    p = _matrix(d, "week_start", "product_id", "_price", weeks)
    k = _matrix(d, "week_start", "product_id", "_known", weeks)
    n_weeks, n_products = u.shape
    observed = u.notna().to_numpy()
    first = np.where(observed.any(axis=0), observed.argmax(axis=0), n_weeks)
    ramp = (first[None, :] > 0) & (np.arange(n_weeks)[:, None] < first[None, :] + FIT_RAMP_WEEKS)
    with np.errstate(all="ignore"):
        ratio = (p / p.rolling(WINDOW, min_periods=3).median()).to_numpy()
        log_units = np.log(u.to_numpy())
        log_price = np.log(p.to_numpy())
    regular = (ratio >= PROMO_PRICE_RATIO) & np.isfinite(log_units) & np.isfinite(log_price) & ~ramp
    y = np.where(regular, log_units, 0.0)
    woy = weeks.isocalendar().week.to_numpy().astype("float64")
    x = (
        np.concatenate(
            [
                np.ones((n_weeks, n_products, 1)),
                np.where(regular, log_price, 0.0)[:, :, None],
                np.broadcast_to(_fit_season(woy)[:, None, :], (n_weeks, n_products, len(FIT_SEASON_TERMS))),
            ],
            axis=2,
        )
        * regular[:, :, None]
    )
    n_terms = x.shape[2]
    penalty = np.zeros(n_terms)
    penalty[1] = FIT_ELASTICITY_WEIGHT
    prior = np.zeros(n_terms)
    prior[1] = FIT_ELASTICITY_PRIOR
    xx = np.cumsum(np.einsum("tpi,tpj->tpij", x, x), axis=0) + np.diag(penalty + 1e-6)
    xy = np.cumsum(x * y[:, :, None], axis=0) + penalty * prior
    beta = np.linalg.solve(xx, xy[..., None])[..., 0]
    n_regular = np.cumsum(regular, axis=0)
    # Mean residual of the regular weeks among the last FIT_RESID_WEEKS under each origin's fit.
    resid_sum = np.zeros((n_weeks, n_products))
    resid_n = np.zeros((n_weeks, n_products))
    for lag in range(FIT_RESID_WEEKS):
        at = np.maximum(np.arange(n_weeks) - lag, 0)
        use = regular[at] & (np.arange(n_weeks) >= lag)[:, None]
        resid = y[at] - np.einsum("tpi,tpi->tp", beta, x[at])
        resid_sum += np.where(use, resid, 0.0)
        resid_n += use
    usable = (n_regular >= FIT_MIN_WEEKS) & (resid_n > 0)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.where(usable, values, 0.0), index=weeks, columns=u.columns)

    cols = {
        "fit_log_base": frame(beta[:, :, 0]),
        "fit_elasticity": frame(beta[:, :, 1]),
        **{f"fit_season_{name}": frame(beta[:, :, 2 + i]) for i, name in enumerate(FIT_SEASON_TERMS)},
        "fit_resid_13": frame(resid_sum / np.maximum(resid_n, 1.0)),
        "fit_weeks": pd.DataFrame(np.where(usable, n_regular, 0), index=weeks, columns=u.columns),
    }
    out = _long(cols, k.cummax(), u.notna(), ["fit_origin_week", "product_id"])
    out["product_id"] = out["product_id"].astype("int64")
    out["fit_weeks"] = out["fit_weeks"].astype("int64")
    return out


PRODUCT_DEMAND_FIT = FeatureTable(
    name="product_demand_fit",
    version=1,
    entity=("product_id",),
    event_time="fit_origin_week",
    source="product_demand_weekly",
    ttl=pd.Timedelta(days=42),
    description="A product's log units regressed on its log price and the yearly cycle over its regular weeks.",
    fields=(
        FeatureField("fit_origin_week", "date", "The latest week whose units are known (the fit's last week)."),
        FeatureField(
            "fit_log_base", "float", "Fit intercept: log units at a price of 1 outside the cycle (0: no fit)."
        ),
        FeatureField("fit_elasticity", "float", "Fitted own-price elasticity, shrunk towards -1.5 (0: no fit)."),
        *(
            FeatureField(f"fit_season_{name}", "float", f"Fitted '{name}' term of the yearly cycle (0: no fit).")
            for name in FIT_SEASON_TERMS
        ),
        FeatureField("fit_resid_13", "float", "Mean log residual of the regular weeks among the last 13 (0: no fit)."),
        FeatureField("fit_weeks", "int", f"Regular weeks fitted; below {FIT_MIN_WEEKS} there is no fit (0).", ge=0),
    ),
    compute=_demand_fit,
)


def _attributes(products: pd.DataFrame) -> pd.DataFrame:
    p = products.assign(launch_date=_dates(products["launch_date"]))
    out = pd.DataFrame(
        {
            "product_id": p["product_id"].astype("int64"),
            "launch_date": p["launch_date"],
            AVAILABLE_AT: _known(p, p["launch_date"], -pd.Timedelta(days=365 * 100)),
            "category": p["category"].astype(str),
            "brand_tier": p["brand_tier"].astype(str),
            "pack_size": pd.to_numeric(p["pack_size"], errors="coerce").astype("float64").fillna(0.0),
            "initial_list_price": p["initial_list_price"].astype("float64"),
        }
    )
    return out.drop_duplicates("product_id", keep="first").reset_index(drop=True)


PRODUCT_ATTRIBUTES = FeatureTable(
    name="product_attributes",
    version=1,
    entity=("product_id",),
    event_time="launch_date",
    source="products",
    description="Category, brand tier, pack size and launch list price of a product.",
    fields=(
        FeatureField("launch_date", "date", "Day the product went on sale."),
        FeatureField("category", "str", "Product category."),
        FeatureField("brand_tier", "str", "Brand tier: value, standard or premium."),
        FeatureField("pack_size", "float", "Units per pack (0 when unknown).", ge=0),
        FeatureField("initial_list_price", "float", "List price on launch day.", ge=0.01),
    ),
    compute=_attributes,
)


def _list_prices(prices: pd.DataFrame) -> pd.DataFrame:
    p = prices.assign(date=_dates(prices["date"]))
    p = p[p["list_price"].notna()]
    p = p.assign(_known=_known(p, p["date"], -DAY).astype("int64").astype("float64"))
    days = pd.date_range(p["date"].min(), p["date"].max(), freq="D")
    lp = _matrix(p, "date", "product_id", "list_price", days)
    k = _matrix(p, "date", "product_id", "_known", days)
    filled = lp.ffill(limit=3)
    cols = {
        "list_price": lp,
        "list_price_7": filled.shift(7),
        "list_price_14": filled.shift(14),
        "list_mean_7": lp.rolling(7, min_periods=1).mean(),
        "list_mean_7_prev": lp.shift(7).rolling(7, min_periods=1).mean(),
    }
    keep = lp.notna() & cols["list_price_7"].notna() & cols["list_price_14"].notna() & cols["list_mean_7_prev"].notna()
    known = k.rolling(15, min_periods=1).max()
    out = _long(cols, known, keep, ["price_date", "product_id"])
    out["product_id"] = out["product_id"].astype("int64")
    return out


PRODUCT_LIST_PRICES = FeatureTable(
    name="product_list_prices",
    version=1,
    entity=("product_id",),
    event_time="price_date",
    source="product_prices_daily",
    ttl=pd.Timedelta(days=10),
    description="The product's own list price: today, a week and two weeks ago, and 7-day means.",
    fields=(
        FeatureField("price_date", "date", "The latest day whose list price is known."),
        FeatureField("list_price", "float", "List price of price_date.", ge=0.01),
        FeatureField("list_price_7", "float", "List price seven days before.", ge=0.01),
        FeatureField("list_price_14", "float", "List price fourteen days before.", ge=0.01),
        FeatureField("list_mean_7", "float", "Mean list price of the seven days ending at price_date.", ge=0.01),
        FeatureField("list_mean_7_prev", "float", "Mean list price of the seven days before those.", ge=0.01),
    ),
    compute=_list_prices,
)


def _other_competitor(frame: pd.DataFrame) -> pd.DataFrame:
    """The same matrix with each column replaced by the other competitor's column of that product."""
    cols = frame.columns
    comp = cols.get_level_values("competitor")
    swapped = pd.MultiIndex.from_arrays(
        [cols.get_level_values("product_id"), np.where(comp == COMPETITORS[0], COMPETITORS[1], COMPETITORS[0])],
        names=cols.names,
    )
    out = frame.reindex(columns=swapped)
    out.columns = cols
    return out


def _screen_outliers(price: pd.DataFrame) -> pd.DataFrame:
    """Blank wrong-pack scrapes: prices far from the series' recent median and the other competitor."""
    trail = price.shift(1).rolling(8, min_periods=1).median()
    stacked = np.stack([trail.to_numpy(), _other_competitor(price).to_numpy(), _other_competitor(trail).to_numpy()])
    with warnings.catch_warnings():  # all-NaN cells (nothing to compare with) stay NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(stacked, axis=0)
    ratio = price.to_numpy() / ref
    bad = np.isfinite(ratio) & ((ratio > OUTLIER_RATIO) | (ratio < 1.0 / OUTLIER_RATIO))
    return price.mask(bad)


def _competitor_matrices(comp: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    c = comp.assign(week_start=_dates(comp["week_start"]))
    c = c[c["price"].notna() & c["competitor"].isin(COMPETITORS)]
    c = c.assign(_known=_known(c, c["week_start"], 2 * DAY).astype("int64").astype("float64"))
    weeks = _weeks(c["week_start"])
    price = _matrix(c, "week_start", ["product_id", "competitor"], "price", weeks)
    known = _matrix(c, "week_start", ["product_id", "competitor"], "_known", weeks)
    # Both competitors as columns of every product (a missing one is all NaN), in a fixed order.
    products = price.columns.get_level_values("product_id").unique()
    full = pd.MultiIndex.from_product([products, COMPETITORS], names=["product_id", "competitor"])
    return _screen_outliers(price.reindex(columns=full)), known.reindex(columns=full)


def _competitor_history(comp: pd.DataFrame) -> pd.DataFrame:
    price, k = _competitor_matrices(comp)
    filled = price.ffill(limit=2)
    median = price.rolling(8, min_periods=3).median()
    other = _other_competitor(filled)
    cols = {
        "comp_price_0": price,
        "comp_price_1": filled.shift(1).fillna(median),
        "comp_price_2": filled.shift(2).fillna(median),
        "comp_price_3": filled.shift(3).fillna(median),
        "comp_median_8": median,
        "comp_max_4": price.rolling(4, min_periods=1).max(),
        "comp_other_0": other.fillna(price),
    }
    keep = price.notna() & median.notna()
    known = k.rolling(4, min_periods=1).max()
    out = _long(cols, known, keep, ["comp_origin_week", "product_id", "competitor"])
    out["product_id"] = out["product_id"].astype("int64")
    out["competitor"] = out["competitor"].astype(str)
    return out


def _competitor_index(comp: pd.DataFrame) -> pd.DataFrame:
    price, k = _competitor_matrices(comp)
    with np.errstate(all="ignore"):
        log_index = np.log(price).T.groupby(level="product_id").mean().T  # geometric mean over competitors
    known = k.T.groupby(level="product_id").max().T.cummax()
    cols = {
        "comp_index_0": np.exp(log_index),
        "comp_index_mean_13": np.exp(log_index.rolling(WINDOW, min_periods=3).mean()),
    }
    keep = log_index.notna() & cols["comp_index_mean_13"].notna()
    out = _long(cols, known, keep, ["comp_index_origin_week", "product_id"])
    out["product_id"] = out["product_id"].astype("int64")
    return out


COMPETITOR_PRICE_INDEX = FeatureTable(
    name="competitor_price_index",
    version=1,
    entity=("product_id",),
    event_time="comp_index_origin_week",
    source="competitor_prices",
    ttl=pd.Timedelta(days=28),
    description="Geometric mean of the competitors' prices of a product: latest week and 13-week mean.",
    fields=(
        FeatureField("comp_index_origin_week", "date", "The latest week with a competitor scrape."),
        FeatureField("comp_index_0", "float", "Competitor price index of that week.", ge=0.01),
        FeatureField("comp_index_mean_13", "float", "Geometric mean of the index over the 13 weeks to then.", ge=0.01),
    ),
    compute=_competitor_index,
)


COMPETITOR_PRICE_HISTORY = FeatureTable(
    name="competitor_price_history",
    version=1,
    entity=("product_id", "competitor"),
    event_time="comp_origin_week",
    source="competitor_prices",
    ttl=pd.Timedelta(days=28),
    description="A competitor's latest weekly prices of a product, wrong-pack scrapes screened out.",
    fields=(
        FeatureField("comp_origin_week", "date", "The latest week whose competitor price is known."),
        FeatureField("comp_price_0", "float", "Competitor price of the origin week.", ge=0.01),
        FeatureField("comp_price_1", "float", "Price one week before (8-week median if missing).", ge=0.01),
        FeatureField("comp_price_2", "float", "Price two weeks before (8-week median if missing).", ge=0.01),
        FeatureField("comp_price_3", "float", "Price three weeks before (8-week median if missing).", ge=0.01),
        FeatureField("comp_median_8", "float", "Median price of the 8 weeks ending at the origin.", ge=0.01),
        FeatureField("comp_max_4", "float", "Highest price of the 4 weeks ending at the origin.", ge=0.01),
        FeatureField("comp_other_0", "float", "The other competitor's latest price of the product.", ge=0.01),
    ),
    compute=_competitor_history,
)


def _regional_matrices(regional: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Units, national units (complete weeks only) and known times as week x (region, product) matrices."""
    r = regional.assign(week_start=_dates(regional["week_start"]))
    r = r[r["units"].notna()]
    n_regions = r["region_id"].nunique()
    grouped = r.groupby(["product_id", "week_start"])["units"]
    complete = grouped.transform("count") == n_regions
    r = r.assign(
        units=r["units"].astype("float64").where(complete),
        _national=grouped.transform("sum").astype("float64").where(complete),
        _known=_known(r, r["week_start"], 8 * DAY).astype("int64").astype("float64"),
    )
    weeks = _weeks(r["week_start"])
    units = _matrix(r, "week_start", ["region_id", "product_id"], "units", weeks)
    national = _matrix(r, "week_start", ["region_id", "product_id"], "_national", weeks)
    known = _matrix(r, "week_start", ["region_id", "product_id"], "_known", weeks)
    return units, national, known


def _regional_history(regional: pd.DataFrame) -> pd.DataFrame:
    units, national, k = _regional_matrices(regional)
    with np.errstate(all="ignore"):
        cols = {
            "share_lag_1": units / national,
            "share_13": units.rolling(WINDOW, min_periods=3).sum() / national.rolling(WINDOW, min_periods=3).sum(),
            "share_52": units.rolling(LONG_WINDOW, min_periods=3).sum()
            / national.rolling(LONG_WINDOW, min_periods=3).sum(),
            "national_mean_13": national.rolling(WINDOW, min_periods=3).mean(),
            "share_weeks": national.notna().rolling(LONG_WINDOW, min_periods=1).sum(),
        }
    keep = national.notna() & cols["share_13"].notna() & cols["share_52"].notna() & (cols["share_52"] > 0)
    known = k.rolling(WINDOW, min_periods=1).max()
    out = _long(cols, known, keep, ["share_origin_week", "region_id", "product_id"])
    out["region_id"] = out["region_id"].astype("int64")
    out["product_id"] = out["product_id"].astype("int64")
    out["share_weeks"] = out["share_weeks"].astype("int64")
    return out


REGIONAL_SHARE_HISTORY = FeatureTable(
    name="regional_share_history",
    version=1,
    entity=("region_id", "product_id"),
    event_time="share_origin_week",
    source="regional_demand_weekly",
    ttl=pd.Timedelta(days=42),
    description="A region's share of a product's national units: latest week, 13 and 52 weeks.",
    fields=(
        FeatureField("share_origin_week", "date", "The latest week whose regional units are known."),
        FeatureField("share_lag_1", "float", "The region's share of the origin week.", ge=0, le=1),
        FeatureField("share_13", "float", "Share of the 13 weeks ending at the origin (units-weighted).", ge=0, le=1),
        FeatureField("share_52", "float", "Share of the 52 weeks ending at the origin.", ge=0.0001, le=1),
        FeatureField("national_mean_13", "float", "Mean national weekly units of the 13 weeks.", ge=0),
        FeatureField("share_weeks", "int", "Complete weeks among the last 52.", ge=1, le=LONG_WINDOW),
    ),
    compute=_regional_history,
)


# --------------------------------------------------------------------------- label rows


def _monday(values: pd.Series) -> pd.Series:
    d = _dates(values).dt.normalize()
    return d - pd.to_timedelta(d.dt.dayofweek, unit="D")


def _weekly_plan(prices: pd.DataFrame, promotions: pd.DataFrame) -> pd.DataFrame:
    """Per product and week: mean list and selling price, discount (%) and promotion type."""
    p = prices[["product_id", "date", "list_price", "price"]].dropna()
    p = p.assign(week_start=_monday(p["date"]))
    weekly = p.groupby(["product_id", "week_start"], as_index=False).agg(
        list_price=("list_price", "mean"), price=("price", "mean")
    )
    promo = promotions[["product_id", "start_date", "promo_type"]].dropna()
    promo = promo.assign(week_start=_monday(promo["start_date"])).drop_duplicates(["product_id", "week_start"])
    weekly = weekly.merge(
        promo[["product_id", "week_start", "promo_type"]], on=["product_id", "week_start"], how="left"
    )
    discount = (1.0 - weekly["price"] / weekly["list_price"]).clip(lower=0.0)
    # A discount without a promotion row is a promotion whose row was quarantined: a plain price cut.
    on_promo = weekly["promo_type"].notna() | (discount > 0.02)
    weekly["promo_type"] = weekly["promo_type"].where(weekly["promo_type"].notna(), "tpr").where(on_promo, "none")
    weekly["discount_pct"] = np.round(100.0 * discount.where(on_promo, 0.0), 1)
    return weekly.drop(columns="price")


def _demand_label_rows(demand: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per product and week: the week's units and its planned prices; predicted the day before."""
    d = demand[["product_id", "week_start", "units"]].dropna()
    d = d.assign(week_start=_dates(d["week_start"]), units=d["units"].astype("float64"))
    plan = _weekly_plan(extras["product_prices_daily"], extras["promotions"])
    rows = d.merge(plan, on=["product_id", "week_start"], how="inner")
    rows[AS_OF] = rows["week_start"] - DAY
    rows["product_id"] = rows["product_id"].astype("int64")
    return rows.sort_values(["week_start", "product_id"]).reset_index(drop=True)


def _elasticity_label_rows(demand: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Demand rows plus the week's competitor price index (geometric mean over competitors, scrapes screened)."""
    rows = _demand_label_rows(demand, extras)
    price, _ = _competitor_matrices(extras["competitor_prices"])
    with np.errstate(all="ignore"):
        index = np.exp(np.log(price).T.groupby(level="product_id").mean().T)
    long = _stack(index, "comp_price", ["week_start", "product_id"])
    long["product_id"] = long["product_id"].astype("int64")
    rows = rows.merge(long, on=["product_id", "week_start"], how="left")
    return rows


# --------------------------------------------------------------------------- demand views (006, 011, 016)


def _horizon(week_start: pd.Series, origin: pd.Series) -> np.ndarray:
    return (week_start - origin).dt.days.to_numpy() / 7.0


def _demand_check(raw: pd.DataFrame) -> pd.Series:
    h = _horizon(raw["week_start"], raw["demand_origin_week"])
    return _check_all(
        raw.index,
        _messages(
            ~((h == np.round(h)) & (h >= 1) & (h <= MAX_HORIZON)),
            "week_start {w:%Y-%m-%d} must be a Monday 1 to " + f"{MAX_HORIZON}" + " weeks after {o:%Y-%m-%d}",
            w=raw["week_start"],
            o=raw["demand_origin_week"],
        ),
        _messages(
            ~raw["promo_type"].isin(PROMO_TYPES).to_numpy(),
            "promo_type {t!r} must be one of " + ", ".join(PROMO_TYPES),
            t=raw["promo_type"],
        ),
        _messages(
            ~((raw["discount_pct"] >= 0) & (raw["discount_pct"] < 90) & (raw["list_price"] > 0)).to_numpy(),
            "list_price {p} must be > 0 and discount_pct {d} within [0, 90)",
            p=raw["list_price"],
            d=raw["discount_pct"],
        ),
    )


def _demand_context(raw: pd.DataFrame) -> pd.DataFrame:
    """Features shared by the demand views: horizon, calendar, history shape, attributes."""
    level = raw["units_median_13"].to_numpy()
    out = pd.DataFrame(index=raw.index)
    out["horizon"] = _horizon(raw["week_start"], raw["demand_origin_week"])
    _calendar(out, raw["week_start"])
    for j in (1, 2, 3, 4):
        out[f"ratio_lag_{j}"] = raw[f"units_lag_{j}"].to_numpy() / level
    out["ratio_mean_13"] = raw["units_mean_13"].to_numpy() / level
    out["log_level"] = np.log(level)
    out["log_price_level"] = np.log(raw["price_median_13"].to_numpy())
    out["weeks_observed"] = raw["weeks_observed"].astype("float64")
    out["age_weeks"] = (raw["week_start"] - raw["launch_date"]).dt.days.to_numpy() / 7.0
    out["category_code"] = _codes(raw["category"], CATEGORIES)
    out["tier_code"] = _codes(raw["brand_tier"], TIERS)
    out["log_pack"] = _log_pack(raw["pack_size"])
    out["log_list_vs_launch"] = np.log(raw["list_price"].to_numpy() / raw["initial_list_price"].to_numpy())
    for n in (13, 26, 52):
        out[f"ratio_regular_{n}"] = raw[f"regular_mean_{n}"].to_numpy() / level
    # The product's own response to past price cuts: a shrunk log-log slope and its evidence.
    out["promo_slope"] = raw["promo_sxy"].to_numpy() / (raw["promo_sxx"].to_numpy() + PROMO_SLOPE_PRIOR)
    out["promo_weeks"] = raw["promo_weeks"].astype("float64")
    # Competitors' recent moves (jumps, their own promotions) shift demand with the cross elasticity.
    out["log_comp_change"] = np.log(raw["comp_index_0"].to_numpy() / raw["comp_index_mean_13"].to_numpy())
    out["log_comp_vs_price"] = np.log(raw["comp_index_0"].to_numpy() / raw["price_median_13"].to_numpy())
    return out


def _promo_flags(out: pd.DataFrame, promo_type: pd.Series) -> None:
    out["promo_display"] = (promo_type == "display").to_numpy(dtype="float64")
    out["promo_feature"] = (promo_type == "feature").to_numpy(dtype="float64")


def _demand_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = _demand_context(raw)
    ref = raw["price_median_13"].to_numpy()
    discount = raw["discount_pct"].to_numpy() / 100.0
    out["on_promo"] = (raw["promo_type"] != "none").to_numpy(dtype="float64")
    out["discount"] = discount
    _promo_flags(out, raw["promo_type"])
    out["log_list_rel"] = np.log(raw["list_price"].to_numpy() / ref)
    out["log_price_rel"] = np.log(raw["list_price"].to_numpy() * (1.0 - discount) / ref)
    return out


def _weekly_demand_transform(raw: pd.DataFrame) -> pd.DataFrame:
    """The demand features plus the demand fit's forecast of the target week at its planned list price.

    ``fit_ratio`` re-anchors the fit on the last 13 weeks' residual, ``fit_raw_ratio`` does not; both are
    relative to the 13-week median (the label scale) and NaN where the product has no fit yet.
    """
    out = _demand_transform(raw)
    theta = raw[[f"fit_season_{name}" for name in FIT_SEASON_TERMS]].to_numpy(dtype="float64")
    log_fit = (
        raw["fit_log_base"].to_numpy()
        + raw["fit_elasticity"].to_numpy() * np.log(raw["list_price"].to_numpy())
        + np.einsum("ni,ni->n", theta, _fit_season(_week_of_year(raw["week_start"])))
    )
    fitted = raw["fit_weeks"].to_numpy() >= FIT_MIN_WEEKS
    log_level = np.log(raw["units_median_13"].to_numpy())
    with np.errstate(over="ignore"):
        out["fit_ratio"] = np.where(fitted, np.exp(log_fit + raw["fit_resid_13"].to_numpy() - log_level), np.nan)
        out["fit_raw_ratio"] = np.where(fitted, np.exp(log_fit - log_level), np.nan)
    return out


_DEMAND_CONTEXT_FEATURES = (
    "horizon",
    "week_of_year",
    "season_sin",
    "season_cos",
    "holiday_peak",
    "ratio_lag_1",
    "ratio_lag_2",
    "ratio_lag_3",
    "ratio_lag_4",
    "ratio_mean_13",
    "log_level",
    "log_price_level",
    "weeks_observed",
    "age_weeks",
    "category_code",
    "tier_code",
    "log_pack",
    "ratio_regular_13",
    "ratio_regular_26",
    "ratio_regular_52",
    "promo_slope",
    "promo_weeks",
    "log_comp_change",
    "log_comp_vs_price",
)

_DEMAND_REQUEST = (
    FeatureField("week_start", "date", "Monday of the target week (1-6 weeks after the demand origin)."),
    FeatureField("list_price", "float", "Planned mean list price of the target week.", ge=0.01),
    FeatureField("discount_pct", "float", "Planned promotion discount in percent (0 without one).", ge=0, le=90),
    FeatureField("promo_type", "str", "Planned promotion: none, tpr, display or feature."),
)

PRODUCT_WEEKLY_DEMAND = FeatureView(
    name="product_weekly_demand",
    version=2,
    description="Weekly units of a product from recent demand and its demand fit, planned price and promotion, "
    "calendar, attributes.",
    entity=(FeatureField("product_id", "int", "Product id.", ge=1),),
    request=_DEMAND_REQUEST,
    tables=(PRODUCT_DEMAND_HISTORY, PRODUCT_ATTRIBUTES, COMPETITOR_PRICE_INDEX, PRODUCT_DEMAND_FIT),
    feature_names=(
        *_DEMAND_CONTEXT_FEATURES,
        "log_list_vs_launch",
        "on_promo",
        "discount",
        "promo_display",
        "promo_feature",
        "log_list_rel",
        "log_price_rel",
        "fit_ratio",
        "fit_raw_ratio",
    ),
    transform=_weekly_demand_transform,
    check=_demand_check,
    label_rows=_demand_label_rows,
    label_sources=("product_prices_daily", "promotions"),
    scale_column="units_median_13",
    categorical=("category_code",),
)

# For the T-learner the covariates describe the week as it would be without the promotion (list price
# position, history, calendar); discount and promotion type describe the treatment and only matter
# to the treated-outcome model. The selling price is left out: it mixes the two.
PROMOTION_UPLIFT = FeatureView(
    name="promotion_uplift",
    version=1,
    description="Weekly units of a product with and without its planned promotion (T-learner inputs).",
    entity=(FeatureField("product_id", "int", "Product id.", ge=1),),
    request=_DEMAND_REQUEST,
    tables=(PRODUCT_DEMAND_HISTORY, PRODUCT_ATTRIBUTES, COMPETITOR_PRICE_INDEX),
    feature_names=(
        *_DEMAND_CONTEXT_FEATURES,
        "log_list_vs_launch",
        "log_list_rel",
        "on_promo",
        "discount",
        "promo_display",
        "promo_feature",
    ),
    transform=_demand_transform,
    check=_demand_check,
    label_rows=_demand_label_rows,
    label_sources=("product_prices_daily", "promotions"),
    scale_column="units_median_13",
    categorical=("category_code",),
)

# The selling price enters only through log_price_rel (the last feature), so that a monotone
# constraint on it makes the demand curve non-increasing in price (mdl-011's price search).
PRODUCT_PRICE_RESPONSE = FeatureView(
    name="product_price_response",
    version=1,
    description="Weekly units of a product as a function of its selling price (monotone in the last feature).",
    entity=(FeatureField("product_id", "int", "Product id.", ge=1),),
    request=_DEMAND_REQUEST,
    tables=(PRODUCT_DEMAND_HISTORY, PRODUCT_ATTRIBUTES, COMPETITOR_PRICE_INDEX),
    feature_names=(*_DEMAND_CONTEXT_FEATURES, "promo_display", "promo_feature", "log_price_rel"),
    transform=_demand_transform,
    check=_demand_check,
    label_rows=_demand_label_rows,
    label_sources=("product_prices_daily", "promotions"),
    scale_column="units_median_13",
    categorical=("category_code",),
)


# --------------------------------------------------------------------------- seasonality (010), elasticity (012)


def _panel_transform(raw: pd.DataFrame) -> pd.DataFrame:
    """Row-level inputs of the panel estimators: product, category, time, price, promotion, competition."""
    out = pd.DataFrame(index=raw.index)
    out["product_id"] = raw["product_id"].astype("float64")
    out["category_code"] = _codes(raw["category"], CATEGORIES)
    out["week_index"] = (raw["week_start"] - pd.Timestamp("2000-01-03")).dt.days.to_numpy() / 7.0
    out["week_of_year"] = _week_of_year(raw["week_start"])
    out["age_weeks"] = (raw["week_start"] - raw["launch_date"]).dt.days.to_numpy() / 7.0
    out["on_promo"] = (raw["promo_type"] != "none").to_numpy(dtype="float64")
    _promo_flags(out, raw["promo_type"])
    discount = raw["discount_pct"].to_numpy() / 100.0
    out["log_list_price"] = np.log(raw["list_price"].to_numpy())
    out["log_price"] = np.log(raw["list_price"].to_numpy() * (1.0 - discount))
    if "comp_price" in raw.columns:
        out["log_comp_price"] = np.log(raw["comp_price"].to_numpy())
    return out


def _panel_check(raw: pd.DataFrame) -> pd.Series:
    return _check_all(
        raw.index,
        _messages(
            ~raw["promo_type"].isin(PROMO_TYPES).to_numpy(),
            "promo_type {t!r} must be one of " + ", ".join(PROMO_TYPES),
            t=raw["promo_type"],
        ),
        _messages(
            ~((raw["discount_pct"] >= 0) & (raw["discount_pct"] < 90) & (raw["list_price"] > 0)).to_numpy(),
            "list_price {p} must be > 0 and discount_pct {d} within [0, 90)",
            p=raw["list_price"],
            d=raw["discount_pct"],
        ),
    )


PRODUCT_SEASONALITY = FeatureView(
    name="product_seasonality",
    version=1,
    description="Product-week rows for the seasonal decomposition: category, calendar, planned promotion.",
    entity=(FeatureField("product_id", "int", "Product id.", ge=1),),
    request=_DEMAND_REQUEST,
    tables=(PRODUCT_ATTRIBUTES,),
    feature_names=(
        "product_id",
        "category_code",
        "week_index",
        "week_of_year",
        "age_weeks",
        "on_promo",
        "log_list_price",
        "log_price",
    ),
    transform=_panel_transform,
    check=_panel_check,
    label_rows=_demand_label_rows,
    label_sources=("product_prices_daily", "promotions"),
)

PRODUCT_PRICE_ELASTICITY = FeatureView(
    name="product_price_elasticity",
    version=1,
    description="Product-week rows for the log-log elasticity regression: price, promotion, competition, calendar.",
    entity=(FeatureField("product_id", "int", "Product id.", ge=1),),
    request=(
        *_DEMAND_REQUEST,
        FeatureField("comp_price", "float", "Geometric mean competitor price of the week (NaN if unknown).", ge=0),
    ),
    tables=(PRODUCT_ATTRIBUTES,),
    feature_names=(
        "product_id",
        "category_code",
        "week_index",
        "week_of_year",
        "age_weeks",
        "on_promo",
        "promo_display",
        "promo_feature",
        "log_list_price",
        "log_price",
        "log_comp_price",
    ),
    transform=_panel_transform,
    check=_panel_check,
    label_rows=_elasticity_label_rows,
    label_sources=("product_prices_daily", "promotions", "competitor_prices"),
)


# --------------------------------------------------------------------------- regional shares (009)


def _regional_label_rows(regional: pd.DataFrame) -> pd.DataFrame:
    """One row per region, product and complete week: the region's share; predicted the day before."""
    units, national, _ = _regional_matrices(regional)
    with np.errstate(all="ignore"):
        rows = _stack(units / national, "share", ["week_start", "region_id", "product_id"])
    rows["region_id"] = rows["region_id"].astype("int64")
    rows["product_id"] = rows["product_id"].astype("int64")
    rows[AS_OF] = rows["week_start"] - DAY
    return rows.sort_values(["week_start", "product_id", "region_id"]).reset_index(drop=True)


def _regional_check(raw: pd.DataFrame) -> pd.Series:
    h = _horizon(raw["week_start"], raw["share_origin_week"])
    return _check_all(
        raw.index,
        _messages(
            ~((h == np.round(h)) & (h >= 1) & (h <= MAX_HORIZON)),
            "week_start {w:%Y-%m-%d} must be a Monday 1 to " + f"{MAX_HORIZON}" + " weeks after {o:%Y-%m-%d}",
            w=raw["week_start"],
            o=raw["share_origin_week"],
        ),
    )


def _regional_transform(raw: pd.DataFrame) -> pd.DataFrame:
    base = raw["share_52"].to_numpy()
    out = pd.DataFrame(index=raw.index)
    out["region_id"] = raw["region_id"].astype("float64")
    out["horizon"] = _horizon(raw["week_start"], raw["share_origin_week"])
    _calendar(out, raw["week_start"])
    out["ratio_13"] = raw["share_13"].to_numpy() / base
    out["ratio_lag_1"] = raw["share_lag_1"].to_numpy() / base
    out["log_share_52"] = np.log(base)
    out["log_national"] = np.log1p(raw["national_mean_13"].to_numpy())
    out["share_weeks"] = raw["share_weeks"].astype("float64")
    return out


REGIONAL_DEMAND_SHARE = FeatureView(
    name="regional_demand_share",
    version=1,
    description="A region's share of a product's weekly demand from its history and the regional calendar.",
    entity=(
        FeatureField("region_id", "int", "Region id.", ge=1),
        FeatureField("product_id", "int", "Product id.", ge=1),
    ),
    request=(FeatureField("week_start", "date", "Monday of the target week (1-6 weeks after the origin)."),),
    tables=(REGIONAL_SHARE_HISTORY,),
    feature_names=(
        "region_id",
        "horizon",
        "week_of_year",
        "season_sin",
        "season_cos",
        "holiday_peak",
        "ratio_13",
        "ratio_lag_1",
        "log_share_52",
        "log_national",
        "share_weeks",
    ),
    transform=_regional_transform,
    check=_regional_check,
    label_rows=_regional_label_rows,
    scale_column="share_52",
    categorical=("region_id",),
)


# --------------------------------------------------------------------------- new products (017)


def _new_product_label_rows(demand: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per product launched inside the data with all of its first eight weeks observed.

    The launch plan (request inputs) holds the promotions planned for those eight weeks.
    """
    products = _attributes(extras["products"])
    d = demand[["product_id", "week_start", "units"]].dropna()
    d = d.assign(week_start=_dates(d["week_start"]))
    first_week = d["week_start"].min()
    d = d.merge(products[["product_id", "launch_date"]], on="product_id", how="inner")
    age = (d["week_start"] - d["launch_date"]).dt.days // 7
    d = d[(age >= 0) & (age < FIRST_WEEKS)]
    agg = d.groupby("product_id").agg(units_first_8w=("units", "sum"), weeks=("units", "size")).reset_index()
    agg = agg[agg["weeks"] == FIRST_WEEKS].drop(columns="weeks")
    rows = products.drop(columns=AVAILABLE_AT).merge(agg, on="product_id", how="inner")
    rows = rows[rows["launch_date"] >= first_week]
    promos = extras["promotions"][["product_id", "start_date", "discount_pct", "promo_type"]].dropna(
        subset=["start_date"]
    )
    promos = promos.assign(start_date=_monday(promos["start_date"])).drop_duplicates(["product_id", "start_date"])
    promos = promos.merge(rows[["product_id", "launch_date"]], on="product_id", how="inner")
    weeks_in = (promos["start_date"] - promos["launch_date"]).dt.days // 7
    promos = promos[(weeks_in >= 0) & (weeks_in < FIRST_WEEKS)]
    plan = promos.groupby("product_id").agg(
        promo_weeks_8=("start_date", "size"),
        promo_discount_8=("discount_pct", lambda v: float(v.fillna(v.mean() if v.notna().any() else 20.0).sum())),
        promo_display_8=("promo_type", lambda v: int(v.isin(["display", "feature"]).sum())),
    )
    rows = rows.merge(plan.reset_index(), on="product_id", how="left")
    rows[["promo_weeks_8", "promo_discount_8", "promo_display_8"]] = rows[
        ["promo_weeks_8", "promo_discount_8", "promo_display_8"]
    ].fillna(0.0)
    rows["units_first_8w"] = rows["units_first_8w"].astype("float64")
    rows[AS_OF] = rows["launch_date"] - DAY
    return rows.sort_values(["launch_date", "product_id"]).reset_index(drop=True)


def _new_product_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    out["category_code"] = _codes(raw["category"], CATEGORIES)
    out["tier_code"] = _codes(raw["brand_tier"], TIERS)
    out["log_pack"] = _log_pack(raw["pack_size"])
    price = raw["initial_list_price"].to_numpy()
    out["log_price"] = np.log(price)
    pack = raw["pack_size"].to_numpy(dtype="float64")
    out["log_price_per_pack_unit"] = np.where(pack > 0, np.log(price) - 0.85 * out["log_pack"].to_numpy(), np.nan)
    _calendar(out, raw["launch_date"], prefix="launch_")
    woy = out["launch_week_of_year"].to_numpy()
    ahead = (woy[:, None] + np.arange(FIRST_WEEKS)[None, :] - 1) % 52 + 1
    out["holiday_weeks_8"] = np.isin(ahead, HOLIDAY_PEAK_WEEKS).sum(axis=1).astype("float64")
    out["promo_weeks_8"] = raw["promo_weeks_8"].astype("float64")
    out["promo_discount_8"] = raw["promo_discount_8"].to_numpy() / 100.0
    out["promo_display_8"] = raw["promo_display_8"].astype("float64")
    return out


NEW_PRODUCT_ATTRIBUTES = FeatureView(
    name="new_product_attributes",
    version=1,
    description="Attributes of a product about to launch (no history): category, tier, pack, price, launch week.",
    entity=(FeatureField("product_id", "int", "Product id.", ge=1),),
    request=(
        FeatureField("category", "str", "Product category."),
        FeatureField("brand_tier", "str", "Brand tier: value, standard or premium."),
        FeatureField("pack_size", "float", "Units per pack (0 when unknown).", ge=0),
        FeatureField("initial_list_price", "float", "Launch list price.", ge=0.01),
        FeatureField("launch_date", "date", "Launch day."),
        FeatureField("promo_weeks_8", "int", "Promotion weeks planned in the first eight weeks.", ge=0, le=8),
        FeatureField("promo_discount_8", "float", "Sum of their planned discounts, in percent.", ge=0),
        FeatureField("promo_display_8", "int", "How many of them have a display or feature ad.", ge=0, le=8),
    ),
    tables=(),
    feature_names=(
        "category_code",
        "tier_code",
        "log_pack",
        "log_price",
        "log_price_per_pack_unit",
        "launch_week_of_year",
        "launch_season_sin",
        "launch_season_cos",
        "launch_holiday_peak",
        "holiday_weeks_8",
        "promo_weeks_8",
        "promo_discount_8",
        "promo_display_8",
    ),
    transform=_new_product_transform,
    label_rows=_new_product_label_rows,
    label_sources=("products", "promotions"),
    categorical=("category_code",),
)


# --------------------------------------------------------------------------- competitor prices (018)


def _competitor_label_rows(comp: pd.DataFrame) -> pd.DataFrame:
    """One row per product, competitor and week t: next week's price; predicted once week t's scrape is in."""
    price, _ = _competitor_matrices(comp)
    rows = _stack(price.shift(-1), "next_price", ["week_start", "product_id", "competitor"])
    rows["product_id"] = rows["product_id"].astype("int64")
    rows["competitor"] = rows["competitor"].astype(str)
    rows[AS_OF] = rows["week_start"] + 3 * DAY
    return rows.sort_values(["week_start", "product_id", "competitor"]).reset_index(drop=True)


def _competitor_check(raw: pd.DataFrame) -> pd.Series:
    lag = _horizon(raw["week_start"], raw["comp_origin_week"])
    return _check_all(
        raw.index,
        _messages(
            ~((lag == np.round(lag)) & (lag >= 0) & (lag <= 3)),
            "week_start {w:%Y-%m-%d} must be a Monday 0 to 3 weeks after the latest scrape {o:%Y-%m-%d}",
            w=raw["week_start"],
            o=raw["comp_origin_week"],
        ),
        _messages(
            ~raw["competitor"].isin(COMPETITORS).to_numpy(),
            "competitor {c!r} must be one of " + ", ".join(COMPETITORS),
            c=raw["competitor"],
        ),
    )


def _competitor_transform(raw: pd.DataFrame) -> pd.DataFrame:
    ref = raw["comp_median_8"].to_numpy()
    own = raw["list_mean_7"].to_numpy()
    out = pd.DataFrame(index=raw.index)
    out["competitor_code"] = _codes(raw["competitor"], COMPETITORS)
    out["weeks_since_scrape"] = _horizon(raw["week_start"], raw["comp_origin_week"])
    for j in (0, 1, 2, 3):
        out[f"log_comp_{j}"] = np.log(raw[f"comp_price_{j}"].to_numpy() / ref)
    out["log_comp_max_4"] = np.log(raw["comp_max_4"].to_numpy() / ref)
    out["log_other"] = np.log(raw["comp_other_0"].to_numpy() / ref)
    out["log_ref_vs_own"] = np.log(ref / own)
    out["log_ref_vs_launch"] = np.log(ref / raw["initial_list_price"].to_numpy())
    out["log_own_vs_launch"] = np.log(own / raw["initial_list_price"].to_numpy())
    out["own_change_7"] = np.log(own / raw["list_mean_7_prev"].to_numpy())
    out["own_change_now"] = np.log(raw["list_price"].to_numpy() / raw["list_price_7"].to_numpy())
    out["own_change_14"] = np.log(raw["list_price"].to_numpy() / raw["list_price_14"].to_numpy())
    _calendar(out, raw["week_start"] + WEEK, prefix="next_")
    return out


COMPETITOR_PRICE_NEXT = FeatureView(
    name="competitor_price_next",
    version=1,
    description="A competitor's price of a product next week, from its recent prices and our own list price.",
    entity=(
        FeatureField("product_id", "int", "Product id.", ge=1),
        FeatureField("competitor", "str", "Competitor: comp_a or comp_b."),
    ),
    request=(FeatureField("week_start", "date", "Monday of the current week (the forecast is for the next one)."),),
    tables=(COMPETITOR_PRICE_HISTORY, PRODUCT_LIST_PRICES, PRODUCT_ATTRIBUTES),
    feature_names=(
        "competitor_code",
        "weeks_since_scrape",
        "log_comp_0",
        "log_comp_1",
        "log_comp_2",
        "log_comp_3",
        "log_comp_max_4",
        "log_other",
        "log_ref_vs_own",
        "log_ref_vs_launch",
        "log_own_vs_launch",
        "own_change_7",
        "own_change_now",
        "own_change_14",
        "next_week_of_year",
        "next_holiday_peak",
    ),
    transform=_competitor_transform,
    check=_competitor_check,
    label_rows=_competitor_label_rows,
    scale_column="comp_median_8",
)
