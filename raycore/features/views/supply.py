"""Feature views of the supply-chain models: stock, stock-outs, suppliers, routes, quality, turnover, defects.

Every weekly feature table here is computed *as known*: the row for week ``W``
aggregates only the source rows that had arrived when week ``W``'s figures
were due (``W + 7 days + REPORT_GRACE``; late rows join the windows of the
weeks after they arrived), and its ``available_at`` is that moment. Late data
therefore never leaks into a window, and one late row does not hold back the
whole window the way "available once every row of it is" would.

Tables (entity, event time, source):

- ``inventory_state`` (product x store, ``state_week``, store_inventory_weekly):
  last week's stock, sales, receipts and orders.
- ``inventory_store_demand`` (product x store, ``demand_week``): 4/13/26-week
  sales, stock-out share and sales in weeks without a stock-out.
- ``inventory_product_demand`` (product, ``product_week``): the same over all
  stores, plus mean stock on hand (for turnover).
- ``product_purchase_orders`` (product, ``po_ordered_at``, purchase_orders): the
  latest purchase order.
- ``supplier_delivery_history`` (supplier, ``delivery_day``, purchase_orders):
  daily, the delays of the supplier's orders placed in the last 8/13/26/104
  weeks, this and last calendar quarter, and delivered in the last 4 weeks (a
  delay is known at ``delivered_at``), and the orders overdue but not delivered.
- ``supplier_assessment_latest``, ``supplier_financials_latest``,
  ``supplier_profile``: the latest audit tier, financial report, master data.
- ``line_weekly_history`` (line, ``line_week``, production_line_weekly): defect
  rate per 1,000 units over 1/4/13/104 weeks, humidity, weeks since maintenance.

Views (model): ``stock_level_demand`` (mdl-019), ``stockout_signals`` (mdl-020),
``purchase_order_delay`` (mdl-021), ``delivery_leg_eta`` (mdl-022),
``batch_quality_signals`` (mdl-023), ``supplier_risk_signals`` (mdl-024),
``product_turnover_signals`` (mdl-025), ``line_defect_signals`` (mdl-026).
Store-week predictions are made on the week's Monday at 06:00, once last
week's figures are in; the planned promotion of the week is a request input.

Feature tables cannot hold nulls (a row with a null is never served), so a
value the source did not send is stored as the sentinel ``-1`` where noted and
turned back into NaN by the transforms.

Example:
    >>> from raycore.features import get_feature_view
    >>> get_feature_view("stockout_signals").entity_names
    ['product_id', 'store_id']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView

__all__ = [
    "BATCH_QUALITY_SIGNALS",
    "DELIVERY_LEG_ETA",
    "INVENTORY_PRODUCT_DEMAND",
    "INVENTORY_STATE",
    "INVENTORY_STORE_DEMAND",
    "LINE_DEFECT_SIGNALS",
    "LINE_WEEKLY_HISTORY",
    "PRODUCT_PURCHASE_ORDERS",
    "PRODUCT_TURNOVER_SIGNALS",
    "PURCHASE_ORDER_DELAY",
    "REPORT_GRACE",
    "STOCKOUT_SIGNALS",
    "STOCK_LEVEL_DEMAND",
    "SUPPLIER_ASSESSMENT_LATEST",
    "SUPPLIER_DELIVERY_HISTORY",
    "SUPPLIER_FINANCIALS_LATEST",
    "SUPPLIER_PROFILE",
    "SUPPLIER_RISK_SIGNALS",
    "TIERS",
]

WEEK = pd.Timedelta(days=7)
DAY = pd.Timedelta(days=1)
# Weekly figures arrive within 6 hours after the week closes (late rows aside).
REPORT_GRACE = pd.Timedelta(hours=6)
# Predictions for a week are made once last week's figures are in (Monday 06:00).
WEEK_DECISION = REPORT_GRACE
QUARTER = pd.Timedelta(days=91)  # 13 weeks: the data world's quarters
LATE_DAYS = 3  # a purchase order this late holds store replenishment back a week
MAX_SINCE_MAINTENANCE = 52
HOLIDAY_PEAK_WEEKS = (48, 49, 50, 51)
PEAK_SEASON_WEEK = 47  # suppliers deliver later from this ISO week on
TIERS = ("low", "medium", "high")
PROMO_TYPES = ("none", "tpr", "display", "feature")
MIN_LEVEL = 0.25  # floor of a demand or turnover level used to scale a label
UNKNOWN = -1.0  # sentinel for a value the source did not send (tables cannot hold nulls)


# ---------------------------------------------------------------------------------------------
# Shared computations
# ---------------------------------------------------------------------------------------------


def _step_index(times: pd.Series, first: pd.Timestamp, step: pd.Timedelta = WEEK) -> np.ndarray:
    """Whole steps (weeks by default) from ``first`` to each time (floor)."""
    return ((pd.to_datetime(times) - first) // step).to_numpy().astype("int64")


def _known_step(
    available: pd.Series | None, idx: np.ndarray, first: pd.Timestamp, step: pd.Timedelta = WEEK
) -> np.ndarray:
    """The first step ``W >= own step`` whose figures (due at ``W + step + REPORT_GRACE``) include the row."""
    if available is None:
        return idx
    lag = (pd.to_datetime(available) - first - step - REPORT_GRACE) / step
    arrive = np.ceil(lag.to_numpy(dtype="float64"))
    arrive = np.where(np.isnan(arrive), idx, arrive).astype("int64")
    return np.maximum(idx, arrive)


def _interval_sums(
    codes: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    values: np.ndarray,
    *,
    n_entities: int,
    n_weeks: int,
) -> np.ndarray:
    """(week, entity, value) sums where each row counts for weeks ``start <= W < stop``.

    A difference array and one cumulative sum, vectorised over rows.
    """
    keep = (start < stop) & (start < n_weeks)
    diff = np.zeros((n_weeks + 1, n_entities, values.shape[1]))
    np.add.at(diff, (start[keep], codes[keep]), values[keep])
    np.add.at(diff, (np.minimum(stop[keep], n_weeks), codes[keep]), -values[keep])
    return np.cumsum(diff, axis=0)[:n_weeks]


def _entity_codes(frame: pd.DataFrame, entity: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    keys = frame[entity].drop_duplicates().sort_values(entity).reset_index(drop=True)
    codes = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(frame[entity]))
    return codes.astype("int64"), keys


@dataclass(frozen=True)
class _Grid:
    """Rows placed on a grid of time steps x entities: each row's step and the step it became known.

    Grid row ``W`` (``first + W * step``) sums the rows that count for it; with weekly steps it
    is what is known when week ``W``'s figures are due (``W + 7 d + REPORT_GRACE``).
    """

    first: pd.Timestamp
    step: pd.Timedelta
    n_steps: int
    codes: np.ndarray
    keys: pd.DataFrame
    idx: np.ndarray
    known_idx: np.ndarray

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        *,
        entity: list[str],
        time: pd.Series,
        available: pd.Series | None,
        step: pd.Timedelta = WEEK,
    ) -> _Grid:
        first = pd.Timestamp(pd.to_datetime(time).min())
        idx = _step_index(time, first, step)
        codes, keys = _entity_codes(frame, entity)
        known = _known_step(available, idx, first, step)
        return cls(first, step, int(max(known.max(), 0)) + 2, codes, keys, idx, known)

    def index_of(self, times: pd.Series, *, after: bool = False) -> np.ndarray:
        """Grid row of each time; with ``after``, the first row taken (at ``first + (W + 1) step``) at or after it."""
        steps = ((pd.to_datetime(times) - self.first) / self.step).to_numpy(dtype="float64")
        out = np.ceil(steps - 1) if after else np.floor(steps)
        return np.where(np.isnan(out), self.n_steps, out).astype("int64")

    def sums(self, values: dict[str, np.ndarray], start: np.ndarray, stop: np.ndarray) -> dict[str, np.ndarray]:
        """Per value, flattened (step-major) sums of the rows counting for ``start <= W < stop``."""
        stacked = np.column_stack([np.asarray(v, dtype="float64") for v in values.values()])
        out = _interval_sums(self.codes, start, stop, stacked, n_entities=len(self.keys), n_weeks=self.n_steps)
        return {name: out[:, :, i].ravel() for i, name in enumerate(values)}

    def window(self, values: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
        """Sums over steps ``W - length + 1 .. W`` of the rows known at ``W``."""
        return self.sums(values, np.maximum(self.idx, self.known_idx), self.idx + length)

    def frame(self) -> pd.DataFrame:
        """The (step, entity) grid, step-major like the sums; ``_week`` is the start of each step."""
        w_idx, e_idx = np.divmod(np.arange(self.n_steps * len(self.keys)), len(self.keys))
        grid = self.keys.iloc[e_idx].reset_index(drop=True)
        grid["_week"] = self.first + w_idx * self.step
        return grid


def _known_windows(
    frame: pd.DataFrame,
    *,
    entity: list[str],
    week: pd.Series,
    available: pd.Series | None,
    values: dict[str, np.ndarray],
    lengths: tuple[int, ...],
) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """Window sums per entity and week as known at each week's report time.

    ``week`` places a row in time (a Monday), ``available`` says when it was known.
    Returns the (entity, week) grid and, per window length, the flattened sums of
    every value (aligned with the grid).
    """
    grid = _Grid.build(frame, entity=entity, time=week, available=available)
    return grid.frame(), {n: grid.window(values, n) for n in lengths}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _as_float(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")


def _nan_if_unknown(values: pd.Series) -> np.ndarray:
    v = values.to_numpy(dtype="float64")
    return np.where(v < 0, np.nan, v)


def _iso_week(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times).dt.isocalendar().week.to_numpy().astype("float64")


def _season(out: pd.DataFrame, times: pd.Series) -> None:
    woy = _iso_week(times)
    angle = 2.0 * np.pi * woy / 52.18
    out["week_of_year"] = woy
    out["season_sin"] = np.sin(angle)
    out["season_cos"] = np.cos(angle)
    out["holiday_peak"] = np.isin(woy, HOLIDAY_PEAK_WEEKS).astype("float64")


def _weeks_between(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(later) - pd.to_datetime(earlier)) / WEEK).to_numpy(dtype="float64")


# ---------------------------------------------------------------------------------------------
# Store inventory tables
# ---------------------------------------------------------------------------------------------


def _inventory_frame(inv: pd.DataFrame) -> pd.DataFrame:
    inv = inv.assign(week_start=pd.to_datetime(inv["week_start"]))
    inv = inv.sort_values(["product_id", "store_id", "week_start"], kind="stable").reset_index(drop=True)
    return inv


def _inventory_state(inv: pd.DataFrame) -> pd.DataFrame:
    inv = _inventory_frame(inv)
    avail = (pd.to_datetime(inv[AVAILABLE_AT]) if AVAILABLE_AT in inv.columns else inv["week_start"] + WEEK).to_numpy()
    same = (
        (inv["product_id"].to_numpy()[1:] == inv["product_id"].to_numpy()[:-1])
        & (inv["store_id"].to_numpy()[1:] == inv["store_id"].to_numpy()[:-1])
        & ((inv["week_start"].to_numpy()[1:] - inv["week_start"].to_numpy()[:-1]) == WEEK.to_timedelta64())
        & (avail[:-1] <= avail[1:])  # the week before is used only if it had arrived by then
    )
    has_prev = np.r_[False, same]
    start = _as_float(inv["on_hand_start"])
    sold = _as_float(inv["units_sold"])
    received = _as_float(inv["received_units"])
    ordered = _as_float(inv["units_ordered"])

    def prev(a: np.ndarray) -> np.ndarray:
        return np.where(has_prev, np.r_[np.nan, a[:-1]], np.nan)

    # A missing stock count is rebuilt from last week's: end of last week + this week's receipts.
    filled = np.where(np.isnan(start), prev(start) - prev(sold) + received, start)
    out = pd.DataFrame(
        {
            "product_id": inv["product_id"].astype("int64"),
            "store_id": inv["store_id"].astype("int64"),
            "state_week": inv["week_start"],
            AVAILABLE_AT: pd.to_datetime(avail),
            "state_on_hand_start": filled,
            "state_units_sold": sold,
            "state_received": received,
            "state_units_ordered": ordered,
            "state_units_ordered_prev": np.nan_to_num(prev(ordered), nan=UNKNOWN),
            "state_stockout": inv["stockout"].astype("int64"),
        }
    )
    return out[np.isfinite(filled) & (filled >= 0)].reset_index(drop=True)


INVENTORY_STATE = FeatureTable(
    name="inventory_state",
    version=1,
    entity=("product_id", "store_id"),
    event_time="state_week",
    source="store_inventory_weekly",
    ttl=pd.Timedelta(days=28),
    description="Last reported week of a product in a store: stock at week start, sales, receipts, orders.",
    fields=(
        FeatureField("state_week", "date", "Monday of the latest reported week."),
        FeatureField("state_on_hand_start", "float", "Units on hand at the start of that week.", ge=0),
        FeatureField("state_units_sold", "float", "Units sold that week.", ge=0),
        FeatureField("state_received", "float", "Units received at the start of that week.", ge=0),
        FeatureField("state_units_ordered", "float", "Units ordered at the end of that week.", ge=0),
        FeatureField(
            "state_units_ordered_prev",
            "float",
            "Units ordered the week before (-1: unknown).",
            ge=-1,
        ),
        FeatureField("state_stockout", "int", "1 when that week ran out of stock.", ge=0, le=1),
    ),
    compute=_inventory_state,
)


def _demand_grid(inv: pd.DataFrame, entity: list[str]) -> tuple[_Grid, dict[str, np.ndarray]]:
    inv = _inventory_frame(inv)
    sold = _as_float(inv["units_sold"])
    stockout = _as_float(inv["stockout"])
    on_hand = _as_float(inv["on_hand_start"])
    values = {
        "n": np.ones(len(inv)),
        "sold": sold,
        "stockout": stockout,
        "open_sold": sold * (1 - stockout),
        "open_n": 1 - stockout,
        "on_hand": np.nan_to_num(on_hand, nan=0.0),
        "on_hand_n": np.isfinite(on_hand).astype("float64"),
    }
    available = inv[AVAILABLE_AT] if AVAILABLE_AT in inv.columns else None
    return _Grid.build(inv, entity=entity, time=inv["week_start"], available=available), values


def _demand_windows(
    inv: pd.DataFrame, entity: list[str], lengths: tuple[int, ...]
) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    g, values = _demand_grid(inv, entity)
    return g.frame(), {n: g.window(values, n) for n in lengths}


def _store_demand(inv: pd.DataFrame) -> pd.DataFrame:
    grid, w = _demand_windows(inv, ["product_id", "store_id"], (4, 13, 26))
    out = grid.rename(columns={"_week": "demand_week"})
    out[AVAILABLE_AT] = out["demand_week"] + WEEK + REPORT_GRACE
    for n in (4, 13, 26):
        out[f"store_sold_{n}"] = _ratio(w[n]["sold"], w[n]["n"])
    out["store_stockout_13"] = _ratio(w[13]["stockout"], w[13]["n"])
    open_mean = _ratio(w[26]["open_sold"], w[26]["open_n"])
    out["store_open_sold_26"] = np.where(np.isnan(open_mean), out["store_sold_26"], open_mean)
    out["store_weeks_4"] = w[4]["n"]
    out["store_demand_level"] = np.maximum(out["store_open_sold_26"], MIN_LEVEL)
    ok = (w[4]["n"] >= 1) & (w[13]["n"] >= 4)
    return out[ok].reset_index(drop=True)


INVENTORY_STORE_DEMAND = FeatureTable(
    name="inventory_store_demand",
    version=1,
    entity=("product_id", "store_id"),
    event_time="demand_week",
    source="store_inventory_weekly",
    ttl=pd.Timedelta(days=35),
    description="Recent weekly sales and stock-outs of a product in a store, as known when the week closed.",
    fields=(
        FeatureField("demand_week", "date", "Monday of the latest week in the windows."),
        FeatureField("store_sold_4", "float", "Mean weekly units sold, last 4 weeks.", ge=0),
        FeatureField("store_sold_13", "float", "Mean weekly units sold, last 13 weeks.", ge=0),
        FeatureField("store_sold_26", "float", "Mean weekly units sold, last 26 weeks.", ge=0),
        FeatureField("store_stockout_13", "float", "Share of the last 13 weeks with a stock-out.", ge=0, le=1),
        FeatureField(
            "store_open_sold_26",
            "float",
            "Mean units sold in weeks without a stock-out, 26 weeks.",
            ge=0,
        ),
        FeatureField("store_weeks_4", "float", "Weeks reported among the last 4.", ge=0, le=4),
        FeatureField(
            "store_demand_level",
            "float",
            f"store_open_sold_26, at least {MIN_LEVEL} (the label scale).",
            ge=MIN_LEVEL,
        ),
    ),
    compute=_store_demand,
)


def _product_demand(inv: pd.DataFrame) -> pd.DataFrame:
    g, values = _demand_grid(inv, ["product_id"])
    w = {n: g.window(values, n) for n in (1, 4, 13, 26)}
    # The same 13 weeks a year earlier: the weeks after W (W - 51 .. W - 39) and the ones up to W.
    counted = np.maximum(g.idx, g.known_idx)
    ly_next = g.sums(values, np.maximum(g.idx + 39, counted), g.idx + 52)
    ly_prev = g.sums(values, np.maximum(g.idx + 52, counted), g.idx + 65)
    out = g.frame().rename(columns={"_week": "product_week"})
    out[AVAILABLE_AT] = out["product_week"] + WEEK + REPORT_GRACE
    for n in (1, 4, 13, 26):
        out[f"product_sold_{n}"] = _ratio(w[n]["sold"], w[n]["n"])
    for n in (4, 13):
        out[f"product_stockout_{n}"] = _ratio(w[n]["stockout"], w[n]["n"])
    out["product_open_sold_13"] = _ratio(w[13]["open_sold"], w[13]["open_n"])
    for n in (13, 26):
        out[f"product_on_hand_{n}"] = _ratio(w[n]["on_hand"], w[n]["on_hand_n"])
    # Turnover of the last 13 weeks: units sold over mean stock on hand (both per store-week).
    out["product_turnover_13"] = np.maximum(13.0 * _ratio(out["product_sold_13"], out["product_on_hand_13"]), MIN_LEVEL)
    for name, sums in (("ly_next", ly_next), ("ly_prev", ly_prev)):
        known = (sums["n"] > 0) & (sums["on_hand_n"] > 0)
        out[f"product_{name}_sold"] = np.where(known, _ratio(sums["sold"], sums["n"]), UNKNOWN)
        out[f"product_{name}_on_hand"] = np.where(known, _ratio(sums["on_hand"], sums["on_hand_n"]), UNKNOWN)
    ok = (w[1]["n"] >= 1) & (w[13]["n"] > 0) & (w[13]["on_hand_n"] > 0) & (w[13]["open_n"] > 0)
    return out[ok].reset_index(drop=True)


INVENTORY_PRODUCT_DEMAND = FeatureTable(
    name="inventory_product_demand",
    version=1,
    entity=("product_id",),
    event_time="product_week",
    source="store_inventory_weekly",
    ttl=pd.Timedelta(days=35),
    description="Recent sales, stock-outs and stock on hand of a product over all stores (per store-week).",
    fields=(
        FeatureField("product_week", "date", "Monday of the latest week in the windows."),
        FeatureField("product_sold_1", "float", "Mean units sold per store, latest week.", ge=0),
        FeatureField("product_sold_4", "float", "Mean units sold per store-week, last 4 weeks.", ge=0),
        FeatureField("product_sold_13", "float", "Mean units sold per store-week, last 13 weeks.", ge=0),
        FeatureField("product_sold_26", "float", "Mean units sold per store-week, last 26 weeks.", ge=0),
        FeatureField(
            "product_stockout_4",
            "float",
            "Stock-out share of store-weeks, last 4 weeks.",
            ge=0,
            le=1,
        ),
        FeatureField(
            "product_stockout_13",
            "float",
            "Stock-out share of store-weeks, last 13 weeks.",
            ge=0,
            le=1,
        ),
        FeatureField(
            "product_open_sold_13",
            "float",
            "Mean units sold in store-weeks without a stock-out.",
            ge=0,
        ),
        FeatureField("product_on_hand_13", "float", "Mean units on hand at week start, last 13 weeks.", ge=0),
        FeatureField("product_on_hand_26", "float", "Mean units on hand at week start, last 26 weeks.", ge=0),
        FeatureField(
            "product_turnover_13",
            "float",
            "13 x product_sold_13 / product_on_hand_13.",
            ge=MIN_LEVEL,
        ),
        FeatureField(
            "product_ly_next_sold", "float", "Mean units sold, the 13 weeks after a year ago (-1: none).", ge=-1
        ),
        FeatureField("product_ly_next_on_hand", "float", "Mean units on hand, same weeks (-1: none).", ge=-1),
        FeatureField(
            "product_ly_prev_sold", "float", "Mean units sold, the 13 weeks up to a year ago (-1: none).", ge=-1
        ),
        FeatureField("product_ly_prev_on_hand", "float", "Mean units on hand, same weeks (-1: none).", ge=-1),
    ),
    compute=_product_demand,
)


# ---------------------------------------------------------------------------------------------
# Purchase orders and suppliers
# ---------------------------------------------------------------------------------------------


def _order_frame(pos: pd.DataFrame) -> pd.DataFrame:
    pos = pos.assign(
        ordered_at=pd.to_datetime(pos["ordered_at"]),
        promised_at=pd.to_datetime(pos["promised_at"]),
        delivered_at=pd.to_datetime(pos["delivered_at"]),
    )
    if AVAILABLE_AT not in pos.columns:
        pos = pos.assign(**{AVAILABLE_AT: pos["ordered_at"]})
    return pos


def _product_orders(pos: pd.DataFrame) -> pd.DataFrame:
    pos = _order_frame(pos)
    return pd.DataFrame(
        {
            "product_id": pos["product_id"].astype("int64"),
            "po_ordered_at": pos["ordered_at"],
            AVAILABLE_AT: pd.to_datetime(pos[AVAILABLE_AT]).fillna(pos["ordered_at"]),
            "po_lead_days": ((pos["promised_at"] - pos["ordered_at"]) / DAY).astype("float64"),
        }
    )


PRODUCT_PURCHASE_ORDERS = FeatureTable(
    name="product_purchase_orders",
    version=1,
    entity=("product_id",),
    event_time="po_ordered_at",
    source="purchase_orders",
    ttl=pd.Timedelta(days=42),
    description="The latest purchase order of a product: when it was placed and the promised lead time.",
    fields=(
        FeatureField("po_ordered_at", "date", "When the latest purchase order was placed."),
        FeatureField("po_lead_days", "float", "Promised lead time of that order, days.", ge=0),
    ),
    compute=_product_orders,
)


def _quarter(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Calendar quarter as a running number (year * 4 + quarter - 1)."""
    t = pd.DatetimeIndex(pd.to_datetime(times))
    return (t.year * 4 + t.quarter - 1).to_numpy().astype("int64")


def _supplier_deliveries(pos: pd.DataFrame) -> pd.DataFrame:
    pos = _order_frame(pos)
    record = pd.to_datetime(pos[AVAILABLE_AT]).fillna(pos["ordered_at"])
    order_day = pos["ordered_at"].dt.normalize()
    delivered = pos["delivered_at"].notna().to_numpy()
    delay = ((pos["delivered_at"] - pos["promised_at"]) / DAY).to_numpy(dtype="float64")
    # A delay is known once the goods arrived (and the order record had reached the warehouse).
    known = np.maximum(pos["delivered_at"], record)
    values = {
        "n": delivered * 1.0,
        "delay": np.nan_to_num(delay),
        "delay2": np.nan_to_num(delay) ** 2,
        "late": (np.nan_to_num(delay) >= LATE_DAYS) * 1.0,
        "peak": (_iso_week(pos["ordered_at"]) >= PEAK_SEASON_WEEK) * delivered * 1.0,
    }
    # Daily grid: row D is taken at the end of day D (D + 1 day, 00:00) and counts the orders placed
    # up to then that were delivered by then (``_known_step`` with the grace added back).
    g = _Grid.build(pos, entity=["supplier_id"], time=order_day, available=known + REPORT_GRACE, step=DAY)
    g = dataclasses.replace(g, known_idx=np.where(delivered, g.known_idx, g.n_steps))
    taken = g.first + (np.arange(g.n_steps) + 1) * DAY
    row_quarter = _quarter(pd.Series(taken))
    own_quarter = _quarter(pos["ordered_at"])
    counted_from = np.maximum(g.idx, g.known_idx)
    w = {n: g.window(values, 7 * n) for n in (8, 13, 26, 104)}
    # Quarter to date and the previous quarter (calendar quarters, when suppliers are reviewed).
    qtd = g.sums(values, counted_from, np.searchsorted(row_quarter, own_quarter, side="right"))
    prev_q = g.sums(
        values,
        np.maximum(counted_from, np.searchsorted(row_quarter, own_quarter + 1, side="left")),
        np.searchsorted(row_quarter, own_quarter + 1, side="right"),
    )
    recent = g.sums(values, g.known_idx, g.known_idx + 28)  # delivered in the last 4 weeks
    # Orders past their promised date and not delivered yet: late by at least (now - promised).
    promised_day = ((pos["promised_at"] - g.first) / DAY).to_numpy(dtype="float64")
    open_from = np.maximum(g.index_of(pos["promised_at"], after=True), g.index_of(record, after=True))
    open_until = g.index_of(pos["delivered_at"], after=True)
    overdue = g.sums({"n": np.ones(len(pos)), "promised": promised_day}, open_from, open_until)

    out = g.frame().rename(columns={"_week": "delivery_day"})
    out["delivery_day"] = out["delivery_day"] + DAY
    out[AVAILABLE_AT] = out["delivery_day"]
    all_mean = _ratio(w[104]["delay"], w[104]["n"])

    def mean(sums: dict[str, np.ndarray], fallback: np.ndarray, name: str = "delay") -> np.ndarray:
        m = _ratio(sums[name], sums["n"])
        return np.where(np.isnan(m), fallback, m)

    for n in (8, 13, 26):
        out[f"sup_delay_{n}"] = mean(w[n], all_mean)
        out[f"sup_orders_{n}"] = w[n]["n"]
    out["sup_delay_104"] = all_mean
    out["sup_orders_104"] = w[104]["n"]
    out["sup_delay_prev_q"] = mean(prev_q, out["sup_delay_13"].to_numpy())
    out["sup_orders_prev_q"] = prev_q["n"]
    out["sup_delay_qtd"] = mean(qtd, out["sup_delay_prev_q"].to_numpy())
    out["sup_orders_qtd"] = qtd["n"]
    out["sup_peak_share_qtd"] = np.nan_to_num(_ratio(qtd["peak"], qtd["n"]), nan=0.0)
    out["sup_delay_recent_4"] = mean(recent, out["sup_delay_8"].to_numpy())
    out["sup_orders_recent_4"] = recent["n"]
    now_day = np.divmod(np.arange(g.n_steps * len(g.keys)), len(g.keys))[0] + 1.0
    out["sup_overdue_orders"] = overdue["n"]
    out["sup_overdue_days"] = np.nan_to_num(now_day - _ratio(overdue["promised"], overdue["n"]), nan=0.0)
    var = _ratio(w[26]["delay2"], w[26]["n"]) - _ratio(w[26]["delay"], w[26]["n"]) ** 2
    out["sup_delay_sd_26"] = np.sqrt(np.clip(np.nan_to_num(var, nan=0.0), 0, None))
    out["sup_late_share_26"] = mean(w[26], _ratio(w[104]["late"], w[104]["n"]), "late")
    for n in (13, 26):
        out[f"sup_peak_share_{n}"] = np.nan_to_num(_ratio(w[n]["peak"], w[n]["n"]), nan=0.0)
    return out[w[104]["n"] > 0].reset_index(drop=True)


SUPPLIER_DELIVERY_HISTORY = FeatureTable(
    name="supplier_delivery_history",
    version=1,
    entity=("supplier_id",),
    event_time="delivery_day",
    source="purchase_orders",
    ttl=pd.Timedelta(days=21),
    description="Delivery delays of a supplier's recent orders, counting each once it was delivered.",
    fields=(
        FeatureField("delivery_day", "date", "Midnight at which the history is taken."),
        FeatureField("sup_delay_8", "float", "Mean delay (days) of orders placed in the last 8 weeks."),
        FeatureField("sup_delay_13", "float", "Mean delay of orders placed in the last 13 weeks."),
        FeatureField("sup_delay_26", "float", "Mean delay of orders placed in the last 26 weeks."),
        FeatureField("sup_delay_104", "float", "Mean delay of orders placed in the last 104 weeks."),
        FeatureField("sup_orders_8", "float", "Delivered orders placed in the last 8 weeks.", ge=0),
        FeatureField("sup_orders_13", "float", "Delivered orders placed in the last 13 weeks.", ge=0),
        FeatureField("sup_orders_26", "float", "Delivered orders placed in the last 26 weeks.", ge=0),
        FeatureField("sup_orders_104", "float", "Delivered orders placed in the last 104 weeks.", ge=0),
        FeatureField(
            "sup_delay_prev_q",
            "float",
            "Mean delay of orders placed in the previous calendar quarter.",
        ),
        FeatureField("sup_orders_prev_q", "float", "Delivered orders placed in the previous quarter.", ge=0),
        FeatureField(
            "sup_delay_qtd",
            "float",
            "Mean delay of orders placed this quarter so far (else prev_q).",
        ),
        FeatureField("sup_orders_qtd", "float", "Delivered orders placed this quarter so far.", ge=0),
        FeatureField("sup_peak_share_qtd", "float", "Share of them placed in peak season.", ge=0, le=1),
        FeatureField("sup_delay_recent_4", "float", "Mean delay of orders delivered in the last 4 weeks."),
        FeatureField("sup_orders_recent_4", "float", "Orders delivered in the last 4 weeks.", ge=0),
        FeatureField("sup_overdue_orders", "float", "Orders past their promised date, not delivered yet.", ge=0),
        FeatureField("sup_overdue_days", "float", "Mean days those orders are overdue so far (0: none).", ge=0),
        FeatureField("sup_delay_sd_26", "float", "Standard deviation of those delays, 26 weeks.", ge=0),
        FeatureField(
            "sup_late_share_26",
            "float",
            f"Share delivered >= {LATE_DAYS} days late, 26 weeks.",
            ge=0,
            le=1,
        ),
        FeatureField(
            "sup_peak_share_13",
            "float",
            "Share of those orders placed in peak season, 13 weeks.",
            ge=0,
            le=1,
        ),
        FeatureField(
            "sup_peak_share_26",
            "float",
            "Share of those orders placed in peak season, 26 weeks.",
            ge=0,
            le=1,
        ),
    ),
    compute=_supplier_deliveries,
)


def _tier_code(values: pd.Series) -> np.ndarray:
    return pd.Categorical(values, categories=list(TIERS)).codes.astype("int64")


def _assessments(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(assessed_at=pd.to_datetime(frame["assessed_at"]))
    frame = frame.sort_values(["supplier_id", "assessed_at"], kind="stable").reset_index(drop=True)
    code = _tier_code(frame["risk_tier"])
    same = np.r_[False, frame["supplier_id"].to_numpy()[1:] == frame["supplier_id"].to_numpy()[:-1]]
    avail = pd.to_datetime(frame[AVAILABLE_AT]) if AVAILABLE_AT in frame.columns else frame["assessed_at"]
    prev_avail = avail.shift(1).where(same)
    return pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"].astype("int64"),
            "last_assessed_at": frame["assessed_at"],
            AVAILABLE_AT: np.maximum(avail, prev_avail.fillna(avail)),
            "assessed_tier": code,
            "assessed_tier_prev": np.where(same, np.r_[-1, code[:-1]], -1).astype("int64"),
        }
    )


SUPPLIER_ASSESSMENT_LATEST = FeatureTable(
    name="supplier_assessment_latest",
    version=1,
    entity=("supplier_id",),
    event_time="last_assessed_at",
    source="supplier_assessments",
    ttl=None,
    description="The latest audit risk tier of a supplier (0 low, 1 medium, 2 high) and the one before.",
    fields=(
        FeatureField("last_assessed_at", "date", "When the latest assessment was made."),
        FeatureField("assessed_tier", "int", "Latest assessed tier: 0 low, 1 medium, 2 high.", ge=0, le=2),
        FeatureField("assessed_tier_prev", "int", "The assessment before (-1: none).", ge=-1, le=2),
    ),
    compute=_assessments,
)


def _financials(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(reported_at=pd.to_datetime(frame["reported_at"]))
    frame = frame[frame["financial_score"].notna()]
    frame = frame.sort_values(["supplier_id", "reported_at"], kind="stable").reset_index(drop=True)
    same = np.r_[False, frame["supplier_id"].to_numpy()[1:] == frame["supplier_id"].to_numpy()[:-1]]
    avail = pd.to_datetime(frame[AVAILABLE_AT]) if AVAILABLE_AT in frame.columns else frame["reported_at"]
    prev_avail = avail.shift(1).where(same)
    score = _as_float(frame["financial_score"])
    payable = _as_float(frame["days_payable"])
    return pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"].astype("int64"),
            "reported_at": frame["reported_at"],
            AVAILABLE_AT: np.maximum(avail, prev_avail.fillna(avail)),
            "financial_score": score,
            "days_payable": payable,
            "financial_score_prev": np.where(same, np.r_[UNKNOWN, score[:-1]], UNKNOWN),
            "days_payable_prev": np.where(same, np.r_[np.nan, payable[:-1]], -999.0),
        }
    )


SUPPLIER_FINANCIALS_LATEST = FeatureTable(
    name="supplier_financials_latest",
    version=1,
    entity=("supplier_id",),
    event_time="reported_at",
    source="supplier_financials",
    ttl=None,
    description="A supplier's latest financial report and the one before.",
    fields=(
        FeatureField("reported_at", "date", "When the latest report was published."),
        FeatureField("financial_score", "float", "Financial health score, 0-100.", ge=0, le=100),
        FeatureField("days_payable", "float", "Days payable outstanding."),
        FeatureField("financial_score_prev", "float", "Score of the report before (-1: none).", ge=-1, le=100),
        FeatureField("days_payable_prev", "float", "Days payable of the report before (-999: none)."),
    ),
    compute=_financials,
)


def _supplier_profile(frame: pd.DataFrame) -> pd.DataFrame:
    onboarded = pd.to_datetime(frame["onboarded_at"])
    avail = pd.to_datetime(frame[AVAILABLE_AT]).fillna(onboarded) if AVAILABLE_AT in frame.columns else onboarded
    return pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"].astype("int64"),
            "onboarded_at": onboarded,
            AVAILABLE_AT: avail,
            "distance_km": np.nan_to_num(_as_float(frame["distance_km"]), nan=UNKNOWN),
            "certified": frame["certified"].astype("int64"),
        }
    )


SUPPLIER_PROFILE = FeatureTable(
    name="supplier_profile",
    version=1,
    entity=("supplier_id",),
    event_time="onboarded_at",
    source="suppliers",
    ttl=None,
    description="Supplier master data: shipping distance and certification.",
    fields=(
        FeatureField("onboarded_at", "date", "When the supplier was onboarded."),
        FeatureField("distance_km", "float", "Shipping distance, km (-1: unknown).", ge=-1),
        FeatureField("certified", "int", "1 when certified.", ge=0, le=1),
    ),
    compute=_supplier_profile,
)


# ---------------------------------------------------------------------------------------------
# Production lines
# ---------------------------------------------------------------------------------------------


def _line_history(weekly: pd.DataFrame) -> pd.DataFrame:
    weekly = weekly.assign(week_start=pd.to_datetime(weekly["week_start"]))
    units = _as_float(weekly["units_produced"])
    humidity = _as_float(weekly["avg_humidity"])
    values = {
        "n": np.ones(len(weekly)),
        "defects": _as_float(weekly["defects"]),
        "units": units,
        "humidity": np.nan_to_num(humidity, nan=0.0),
        "humidity_n": np.isfinite(humidity).astype("float64"),
    }
    available = weekly[AVAILABLE_AT] if AVAILABLE_AT in weekly.columns else None
    g = _Grid.build(weekly, entity=["line_id"], time=weekly["week_start"], available=available)
    w = {n: g.window(values, n) for n in (1, 4, 13, 104)}
    out = g.frame().rename(columns={"_week": "line_week"})
    out[AVAILABLE_AT] = out["line_week"] + WEEK + REPORT_GRACE
    for n in (1, 4, 13, 104):
        out[f"line_rate_{n}"] = 1000.0 * _ratio(w[n]["defects"], w[n]["units"])
    out["line_humidity_13"] = _ratio(w[13]["humidity"], w[13]["humidity_n"])
    out["line_humidity_104"] = _ratio(w[104]["humidity"], w[104]["humidity_n"])
    out["line_weeks_104"] = w[104]["n"]

    # Weeks since the last maintenance seen by each week's report time (maintenance in week m resets
    # the counter of week m + 1, so for the week after W it is W - m).
    last = np.full((g.n_steps + 1, len(g.keys)), -(10**6), dtype="int64")
    maint = weekly["maintenance_done"].to_numpy() == 1
    np.maximum.at(last, (np.minimum(g.known_idx[maint], g.n_steps), g.codes[maint]), g.idx[maint])
    last_seen = np.maximum.accumulate(last, axis=0)[: g.n_steps].ravel()
    w_idx = np.divmod(np.arange(g.n_steps * len(g.keys)), len(g.keys))[0]
    since = np.where(last_seen >= 0, w_idx - last_seen, w_idx + 1 + MAX_SINCE_MAINTENANCE)
    out["since_maintenance_next"] = np.minimum(since, MAX_SINCE_MAINTENANCE).astype("float64")
    ok = np.isfinite(out["line_rate_1"]) & np.isfinite(out["line_rate_13"]) & np.isfinite(out["line_humidity_13"])
    out = out[ok.to_numpy()]
    out["line_humidity_104"] = out["line_humidity_104"].fillna(out["line_humidity_13"])
    return out.reset_index(drop=True)


LINE_WEEKLY_HISTORY = FeatureTable(
    name="line_weekly_history",
    version=1,
    entity=("line_id",),
    event_time="line_week",
    source="production_line_weekly",
    ttl=pd.Timedelta(days=28),
    description="Defects per 1,000 units of a line over recent weeks, humidity, and weeks since maintenance.",
    fields=(
        FeatureField("line_week", "date", "Monday of the latest reported week."),
        FeatureField("line_rate_1", "float", "Defects per 1,000 units, latest week.", ge=0),
        FeatureField("line_rate_4", "float", "Defects per 1,000 units, last 4 weeks.", ge=0),
        FeatureField("line_rate_13", "float", "Defects per 1,000 units, last 13 weeks.", ge=0),
        FeatureField("line_rate_104", "float", "Defects per 1,000 units, last 104 weeks.", ge=0),
        FeatureField("line_humidity_13", "float", "Mean shop-floor humidity, last 13 weeks.", ge=0, le=100),
        FeatureField("line_humidity_104", "float", "Mean shop-floor humidity, last 104 weeks.", ge=0, le=100),
        FeatureField("line_weeks_104", "float", "Weeks reported among the last 104.", ge=0),
        FeatureField(
            "since_maintenance_next",
            "float",
            "Weeks since maintenance, for the week after line_week.",
            ge=0,
        ),
    ),
    compute=_line_history,
)


# ---------------------------------------------------------------------------------------------
# Requests shared by the store-week views
# ---------------------------------------------------------------------------------------------

_PRODUCT = FeatureField("product_id", "int", "Product id.", ge=1)
_STORE = FeatureField("store_id", "int", "Store id.", ge=1)
_PROMO_REQUEST = (
    FeatureField(
        "on_promo",
        "int",
        "1 if a promotion of the product is planned in the target week.",
        ge=0,
        le=1,
    ),
    FeatureField(
        "promo_discount_pct",
        "float",
        "Planned discount in percent (0 without a promotion).",
        ge=0,
        le=90,
    ),
    FeatureField("promo_type", "str", f"Planned promotion type: one of {', '.join(PROMO_TYPES)}."),
)


def _attach_promotions(rows: pd.DataFrame, promotions: pd.DataFrame) -> pd.DataFrame:
    """The promotion planned for each row's product and ``week_start``, as known at the row's ``as_of``."""
    promo = promotions.assign(week_start=pd.to_datetime(promotions["start_date"]))
    avail = pd.to_datetime(promo[AVAILABLE_AT]) if AVAILABLE_AT in promo.columns else promo["week_start"] - 21 * DAY
    promo = promo.assign(_known=avail.fillna(promo["week_start"] - 21 * DAY))
    promo = promo.sort_values("_known", kind="stable").drop_duplicates(["product_id", "week_start"])
    merged = rows.merge(
        promo[["product_id", "week_start", "discount_pct", "promo_type", "_known"]],
        on=["product_id", "week_start"],
        how="left",
        validate="many_to_one",
    )
    planned = (merged["_known"].notna() & (merged["_known"] <= merged[AS_OF])).to_numpy()
    rows = rows.copy()
    rows["on_promo"] = planned.astype("int64")
    rows["promo_discount_pct"] = np.where(planned, _as_float(merged["discount_pct"]), 0.0)
    rows["promo_type"] = np.where(planned, merged["promo_type"].astype(object), "none")
    return rows


def _promo_features(out: pd.DataFrame, raw: pd.DataFrame) -> None:
    kind = raw["promo_type"].str.strip().str.lower()
    out["on_promo"] = raw["on_promo"].astype("float64")
    out["promo_discount_pct"] = raw["promo_discount_pct"].to_numpy(dtype="float64")
    out["promo_display"] = kind.isin(["display", "feature"]).astype("float64").to_numpy()
    out["promo_feature"] = (kind == "feature").astype("float64").to_numpy()


def _week_rows(inv: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    inv = _inventory_frame(inv)
    rows = inv[["product_id", "store_id", "week_start", *columns]].copy()
    rows["product_id"] = rows["product_id"].astype("int64")
    rows["store_id"] = rows["store_id"].astype("int64")
    rows[AS_OF] = rows["week_start"] + WEEK_DECISION
    return rows


def _check_monday(raw: pd.DataFrame) -> pd.Series:
    ok = (raw["week_start"].dt.weekday == 0) & (raw["week_start"] == raw["week_start"].dt.normalize())
    return pd.Series(
        np.where(ok, "", "week_start must be a Monday (the first day of the target week)"),
        index=raw.index,
    )


def _demand_features(out: pd.DataFrame, raw: pd.DataFrame) -> np.ndarray:
    """Demand level and trend of a product in a store; returns the level estimate for the target week."""
    level = raw["store_demand_level"].to_numpy()
    product_26 = np.maximum(raw["product_sold_26"].to_numpy(), MIN_LEVEL)
    trend_4 = raw["product_sold_4"].to_numpy() / product_26
    out["log_level"] = np.log(level)
    out["store_sold_4_ratio"] = raw["store_sold_4"].to_numpy() / level
    out["store_sold_13_ratio"] = raw["store_sold_13"].to_numpy() / level
    out["store_sold_26_ratio"] = raw["store_sold_26"].to_numpy() / level
    out["store_stockout_13"] = raw["store_stockout_13"].to_numpy()
    out["store_share"] = raw["store_sold_26"].to_numpy() / product_26
    out["product_trend_1"] = raw["product_sold_1"].to_numpy() / product_26
    out["product_trend_4"] = trend_4
    out["product_trend_13"] = raw["product_sold_13"].to_numpy() / product_26
    out["product_open_ratio_13"] = raw["product_open_sold_13"].to_numpy() / product_26
    out["product_stockout_4"] = raw["product_stockout_4"].to_numpy()
    out["demand_age_weeks"] = _weeks_between(raw["week_start"], raw["demand_week"])
    return level * trend_4


# ---------------------------------------------------------------------------------------------
# mdl-019 optimal_stock_level: weekly demand of a product in a store (95% quantile)
# ---------------------------------------------------------------------------------------------


def _stock_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    _demand_features(out, raw)
    _promo_features(out, raw)
    _season(out, raw["week_start"])
    # The stock the week starts with: where sales are cut off. The estimator uses it to read a
    # sold-out week as "demand >= stock" when it fits, never as a predictor.
    out["stock_on_hand"] = raw["on_hand_start"].to_numpy(dtype="float64")
    return out


def _stock_label_rows(inv: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per product, store and week: units sold that week, predicted on its Monday morning."""
    rows = _week_rows(inv, ["units_sold", "on_hand_start"])
    rows["units_sold"] = rows["units_sold"].astype("float64")
    rows["on_hand_start"] = _as_float(rows["on_hand_start"])
    return _attach_promotions(rows, extras["promotions"])


_STOCK_FEATURES = (
    "log_level",
    "store_sold_4_ratio",
    "store_sold_13_ratio",
    "store_sold_26_ratio",
    "store_stockout_13",
    "store_share",
    "product_trend_1",
    "product_trend_4",
    "product_trend_13",
    "product_open_ratio_13",
    "product_stockout_4",
    "demand_age_weeks",
    "on_promo",
    "promo_discount_pct",
    "promo_display",
    "promo_feature",
    "week_of_year",
    "season_sin",
    "season_cos",
    "holiday_peak",
)

STOCK_LEVEL_DEMAND = FeatureView(
    name="stock_level_demand",
    version=1,
    description="Demand level, trend, stock-outs and planned promotions of a product in a store, per target week.",
    entity=(_PRODUCT, _STORE),
    request=(
        FeatureField("week_start", "date", "Monday of the target week."),
        *_PROMO_REQUEST,
        FeatureField("on_hand_start", "float", "Units on hand as the week starts (may be null).", ge=0),
    ),
    tables=(INVENTORY_STORE_DEMAND, INVENTORY_PRODUCT_DEMAND),
    feature_names=(*_STOCK_FEATURES, "stock_on_hand"),
    transform=_stock_transform,
    check=_check_monday,
    label_rows=_stock_label_rows,
    label_sources=("promotions",),
)


# ---------------------------------------------------------------------------------------------
# mdl-020 stockout_risk: stock-out of a product in a store in the coming week
# ---------------------------------------------------------------------------------------------


def _stockout_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    expected = np.maximum(_demand_features(out, raw), MIN_LEVEL / 4)
    age = _weeks_between(raw["week_start"], raw["state_week"])
    end_stock = raw["state_on_hand_start"].to_numpy() - raw["state_units_sold"].to_numpy()
    ordered = raw["state_units_ordered"].to_numpy()
    ordered_prev = _nan_if_unknown(raw["state_units_ordered_prev"])
    # Last week's order arrives this week unless its purchase order is late; an order of the week
    # before that did not arrive last week is still on its way.
    outstanding = np.maximum(np.nan_to_num(ordered_prev, nan=0.0) - raw["state_received"].to_numpy(), 0.0)
    out["state_age_weeks"] = age
    out["stock_if_late"] = end_stock / expected
    out["stock_if_on_time"] = (end_stock + ordered) / expected
    out["order_share"] = ordered / np.maximum(end_stock + ordered, 1.0)
    out["outstanding_ratio"] = outstanding / expected
    out["log_expected"] = np.log(expected)
    out["end_stock"] = end_stock
    out["stockout_last_week"] = raw["state_stockout"].astype("float64")
    po_days = ((raw["week_start"] - raw["po_ordered_at"]) / DAY).to_numpy(dtype="float64")
    out["days_since_po"] = po_days
    out["po_last_week"] = ((po_days > 0) & (po_days <= 7)).astype("float64")
    out["po_lead_days"] = raw["po_lead_days"].to_numpy()
    out["sup_late_share_26"] = raw["sup_late_share_26"].to_numpy()
    out["sup_delay_8"] = raw["sup_delay_8"].to_numpy()
    out["sup_delay_26"] = raw["sup_delay_26"].to_numpy()
    _promo_features(out, raw)
    _season(out, raw["week_start"])
    return out


def _stockout_label_rows(inv: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per product, store and week: did it run out, predicted on the week's Monday morning."""
    rows = _attach_promotions(_week_rows(inv, ["stockout"]), extras["promotions"])
    suppliers = extras["supplier_products"][["product_id", "supplier_id"]].drop_duplicates("product_id")
    rows = rows.merge(suppliers.astype("int64"), on="product_id", how="inner")
    rows["stockout"] = rows["stockout"].astype("int64")
    return rows


STOCKOUT_SIGNALS = FeatureView(
    name="stockout_signals",
    version=1,
    description="Stock after last week, expected demand, the pending purchase order and its supplier's lateness.",
    entity=(_PRODUCT, _STORE),
    request=(
        FeatureField("week_start", "date", "Monday of the target week."),
        *_PROMO_REQUEST,
        FeatureField("supplier_id", "int", "Supplier the product is bought from.", ge=1),
    ),
    tables=(
        INVENTORY_STATE,
        INVENTORY_STORE_DEMAND,
        INVENTORY_PRODUCT_DEMAND,
        PRODUCT_PURCHASE_ORDERS,
        SUPPLIER_DELIVERY_HISTORY,
    ),
    feature_names=(
        *_STOCK_FEATURES[:12],
        "state_age_weeks",
        "stock_if_late",
        "stock_if_on_time",
        "order_share",
        "outstanding_ratio",
        "log_expected",
        "end_stock",
        "stockout_last_week",
        "days_since_po",
        "po_last_week",
        "po_lead_days",
        "sup_late_share_26",
        "sup_delay_8",
        "sup_delay_26",
        *_STOCK_FEATURES[12:],
    ),
    transform=_stockout_transform,
    check=_check_monday,
    label_rows=_stockout_label_rows,
    label_sources=("promotions", "supplier_products"),
)


# ---------------------------------------------------------------------------------------------
# Supplier features shared by mdl-021 and mdl-024
# ---------------------------------------------------------------------------------------------

_SUPPLIER_TABLES = (
    SUPPLIER_DELIVERY_HISTORY,
    SUPPLIER_ASSESSMENT_LATEST,
    SUPPLIER_FINANCIALS_LATEST,
    SUPPLIER_PROFILE,
)
_SUPPLIER_FEATURES = (
    "sup_delay_8",
    "sup_delay_13",
    "sup_delay_26",
    "sup_delay_104",
    "sup_orders_8",
    "sup_orders_13",
    "sup_orders_26",
    "sup_delay_sd_26",
    "sup_late_share_26",
    "sup_peak_share_13",
    "sup_peak_share_26",
    "sup_delay_prev_q",
    "sup_orders_prev_q",
    "sup_delay_qtd",
    "sup_orders_qtd",
    "sup_peak_share_qtd",
    "sup_delay_recent_4",
    "sup_orders_recent_4",
    "sup_overdue_orders",
    "sup_overdue_days",
    "delay_trend",
    "assessed_tier",
    "assessed_tier_prev",
    "weeks_since_assessed",
    "financial_score",
    "days_payable",
    "financial_score_prev",
    "days_payable_prev",
    "distance_km",
    "certified",
)


def _supplier_features(out: pd.DataFrame, raw: pd.DataFrame, at: pd.Series) -> None:
    for name in _SUPPLIER_FEATURES[: _SUPPLIER_FEATURES.index("delay_trend")]:
        out[name] = raw[name].to_numpy(dtype="float64")
    out["delay_trend"] = raw["sup_delay_8"].to_numpy() - raw["sup_delay_104"].to_numpy()
    out["assessed_tier"] = raw["assessed_tier"].astype("float64")
    out["assessed_tier_prev"] = _nan_if_unknown(raw["assessed_tier_prev"].astype("float64"))
    out["weeks_since_assessed"] = _weeks_between(at, raw["last_assessed_at"])
    out["financial_score"] = raw["financial_score"].to_numpy(dtype="float64")
    out["days_payable"] = raw["days_payable"].to_numpy(dtype="float64")
    out["financial_score_prev"] = _nan_if_unknown(raw["financial_score_prev"])
    prev_payable = raw["days_payable_prev"].to_numpy(dtype="float64")
    out["days_payable_prev"] = np.where(prev_payable <= -999, np.nan, prev_payable)
    out["distance_km"] = _nan_if_unknown(raw["distance_km"])
    out["certified"] = raw["certified"].astype("float64")


# ---------------------------------------------------------------------------------------------
# mdl-021 supplier_performance: delivery delay of a purchase order
# ---------------------------------------------------------------------------------------------


def _order_delay_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    _supplier_features(out, raw, raw["ordered_at"])
    out["lead_days"] = ((raw["promised_at"] - raw["ordered_at"]) / DAY).to_numpy(dtype="float64")
    quantity = raw["quantity"].to_numpy(dtype="float64")
    out["log_quantity"] = np.log(np.where(quantity > 0, quantity, np.nan))
    woy = _iso_week(raw["ordered_at"])
    out["peak_season"] = (woy >= PEAK_SEASON_WEEK).astype("float64")
    out["week_of_year"] = woy
    return out


def _check_promise(raw: pd.DataFrame) -> pd.Series:
    ok = raw["promised_at"] >= raw["ordered_at"]
    return pd.Series(np.where(ok, "", "promised_at must not be before ordered_at"), index=raw.index)


def _order_delay_label_rows(pos: pd.DataFrame) -> pd.DataFrame:
    """One row per delivered purchase order: delay in days, predicted when the order is placed."""
    pos = _order_frame(pos)
    pos = pos[pos["delivered_at"].notna()]
    rows = pd.DataFrame(
        {
            "po_id": pos["po_id"].astype("int64"),
            "supplier_id": pos["supplier_id"].astype("int64"),
            "ordered_at": pos["ordered_at"],
            "promised_at": pos["promised_at"],
            "quantity": _as_float(pos["quantity"]),
            "delay_days": ((pos["delivered_at"] - pos["promised_at"]) / DAY).astype("float64"),
            AS_OF: pos["ordered_at"],
            "order_week": pos["ordered_at"].dt.normalize() - pd.to_timedelta(pos["ordered_at"].dt.weekday, unit="D"),
        }
    )
    return rows.reset_index(drop=True)


PURCHASE_ORDER_DELAY = FeatureView(
    name="purchase_order_delay",
    version=1,
    description="A purchase order's supplier history, audit tier, finances, distance, lead time, size and season.",
    entity=(FeatureField("po_id", "int", "Purchase order id.", ge=1),),
    request=(
        FeatureField("supplier_id", "int", "Supplier the order is placed with.", ge=1),
        FeatureField("ordered_at", "date", "When the order is placed."),
        FeatureField("promised_at", "date", "Delivery time the supplier promised."),
        FeatureField("quantity", "float", "Units ordered (may be null).", ge=0),
    ),
    tables=_SUPPLIER_TABLES,
    feature_names=(*_SUPPLIER_FEATURES, "lead_days", "log_quantity", "peak_season", "week_of_year"),
    transform=_order_delay_transform,
    check=_check_promise,
    label_rows=_order_delay_label_rows,
)


# ---------------------------------------------------------------------------------------------
# mdl-024 supply_chain_risk: risk tier of a supplier at the end of a quarter
# ---------------------------------------------------------------------------------------------


def _supplier_risk_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    _supplier_features(out, raw, raw["assessed_at"])
    woy = _iso_week(raw["assessed_at"])
    out["season_sin"] = np.sin(2.0 * np.pi * woy / 52.18)
    out["season_cos"] = np.cos(2.0 * np.pi * woy / 52.18)
    return out


def _supplier_risk_label_rows(assessments: pd.DataFrame) -> pd.DataFrame:
    """One row per supplier assessment: the assessed tier, predicted on the assessment day."""
    at = pd.to_datetime(assessments["assessed_at"])
    rows = pd.DataFrame(
        {
            "supplier_id": assessments["supplier_id"].astype("int64"),
            "assessed_at": at,
            "risk_tier": assessments["risk_tier"].astype(str),
            AS_OF: at,
            "quarter_start": at - (QUARTER - DAY),
        }
    )
    return rows.reset_index(drop=True)


SUPPLIER_RISK_SIGNALS = FeatureView(
    name="supplier_risk_signals",
    version=1,
    description="A supplier's recent delivery delays, previous audit tiers, finances and distance.",
    entity=(FeatureField("supplier_id", "int", "Supplier id.", ge=1),),
    request=(FeatureField("assessed_at", "date", "Day of the assessment (the last day of the quarter)."),),
    tables=_SUPPLIER_TABLES,
    feature_names=(*_SUPPLIER_FEATURES, "season_sin", "season_cos"),
    transform=_supplier_risk_transform,
    label_rows=_supplier_risk_label_rows,
)


# ---------------------------------------------------------------------------------------------
# mdl-022 logistics_route_optimization: travel time of one leg of a delivery run
# ---------------------------------------------------------------------------------------------

RUSH_HOURS = ((7, 9), (16, 18))
# Legs slower than this are broken telematics records (an outlier export), not traffic.
MIN_PLAUSIBLE_KMH = 8.0


def _leg_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    start = raw["leg_start_at"]
    hour = (start.dt.hour + start.dt.minute / 60.0).to_numpy(dtype="float64")
    whole = np.floor(hour)
    out["depot_id"] = raw["depot_id"].astype("float64")
    out["hour"] = hour
    out["rush_hour"] = np.any([(whole >= a) & (whole < b) for a, b in RUSH_HOURS], axis=0).astype("float64")
    weather = raw["weather"].str.strip().str.lower()
    out["rain"] = np.where(weather == "rain", 1.0, np.where(weather == "dry", 0.0, np.nan))
    vehicle = raw["vehicle_type"].str.strip().str.lower()
    out["truck"] = np.where(vehicle == "truck", 1.0, np.where(vehicle == "van", 0.0, np.nan))
    out["log_distance"] = np.log(np.maximum(raw["leg_distance_km"].to_numpy(dtype="float64"), 0.01))
    out["weekday"] = start.dt.weekday.astype("float64").to_numpy()
    return out


def _check_leg(raw: pd.DataFrame) -> pd.Series:
    ok = raw["leg_distance_km"] > 0
    return pd.Series(np.where(ok, "", "leg_distance_km must be positive"), index=raw.index)


def _leg_label_rows(stops: pd.DataFrame, extras: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per driven leg: travel minutes, predicted when the vehicle leaves the previous stop."""
    runs = extras["delivery_runs"][["run_id", "depot_id", "departed_at", "vehicle_type", "weather"]]
    stops = stops.assign(arrived_at=pd.to_datetime(stops["arrived_at"]))
    stops = stops.sort_values(["run_id", "stop_seq"], kind="stable").reset_index(drop=True)
    rows = stops.merge(runs, on="run_id", how="inner", validate="many_to_one")
    prev_same = np.r_[
        False,
        (rows["run_id"].to_numpy()[1:] == rows["run_id"].to_numpy()[:-1])
        & (rows["stop_seq"].to_numpy()[1:] == rows["stop_seq"].to_numpy()[:-1] + 1),
    ]
    prev_leave = rows["arrived_at"].shift(1) + pd.to_timedelta(rows["service_minutes"].shift(1), unit="min")
    first = (rows["stop_seq"] == 1).to_numpy()
    leg_start = pd.Series(
        np.where(first, pd.to_datetime(rows["departed_at"]), np.where(prev_same, prev_leave, pd.NaT)),
        dtype="datetime64[ns]",
    )
    travel = _as_float(rows["travel_minutes"])
    distance = _as_float(rows["leg_distance_km"])
    with np.errstate(divide="ignore", invalid="ignore"):
        kmh = 60.0 * distance / travel
    keep = (
        leg_start.notna().to_numpy() & np.isfinite(travel) & (travel > 0) & (distance > 0) & (kmh >= MIN_PLAUSIBLE_KMH)
    )
    out = pd.DataFrame(
        {
            "depot_id": rows["depot_id"].astype("int64"),
            "stop_id": rows["stop_id"].astype("int64"),
            "run_id": rows["run_id"].astype("int64"),
            "stop_seq": rows["stop_seq"].astype("int64"),
            "leg_start_at": leg_start,
            "leg_distance_km": distance,
            "vehicle_type": rows["vehicle_type"].astype(object),
            "weather": rows["weather"].fillna("unknown").astype(object),
            "travel_minutes": travel,
            AS_OF: leg_start,
            "run_week": pd.to_datetime(rows["departed_at"]).dt.normalize()
            - pd.to_timedelta(pd.to_datetime(rows["departed_at"]).dt.weekday, unit="D"),
        }
    )
    return out[keep].reset_index(drop=True)


DELIVERY_LEG_ETA = FeatureView(
    name="delivery_leg_eta",
    version=1,
    description="Road distance, depot, time of day, weather and vehicle of one leg of a delivery run.",
    entity=(FeatureField("depot_id", "int", "Depot the run starts from.", ge=1),),
    request=(
        FeatureField("leg_start_at", "date", "When the vehicle leaves for the stop (depot or previous stop)."),
        FeatureField("leg_distance_km", "float", "Road distance of the leg, km.", ge=0),
        FeatureField("vehicle_type", "str", "van or truck."),
        FeatureField("weather", "str", "dry, rain or unknown."),
    ),
    tables=(),
    feature_names=("depot_id", "hour", "rush_hour", "rain", "truck", "log_distance", "weekday"),
    transform=_leg_transform,
    check=_check_leg,
    label_rows=_leg_label_rows,
    label_sources=("delivery_runs",),
    scale_column="leg_distance_km",
    categorical=("depot_id",),
)


# ---------------------------------------------------------------------------------------------
# mdl-023 product_quality_predictor: is a production batch defective
# ---------------------------------------------------------------------------------------------


def _line_features(out: pd.DataFrame, raw: pd.DataFrame, week: pd.Series) -> None:
    age = _weeks_between(week, raw["line_week"])
    base = np.maximum(raw["line_rate_104"].to_numpy(dtype="float64"), 0.1)
    out["line_log_rate_104"] = np.log(base)
    for n in (1, 4, 13):
        out[f"line_rate_ratio_{n}"] = raw[f"line_rate_{n}"].to_numpy(dtype="float64") / base
    out["line_weeks_104"] = raw["line_weeks_104"].to_numpy(dtype="float64")
    out["since_maintenance"] = raw["since_maintenance_next"].to_numpy(dtype="float64") + np.maximum(age - 1, 0)
    out["line_age_weeks"] = age


def _batch_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    week = raw["started_at"].dt.normalize() - pd.to_timedelta(raw["started_at"].dt.weekday, unit="D")
    _line_features(out, raw, week)
    humidity = raw["humidity_pct"].to_numpy(dtype="float64")
    out["humidity_vs_13"] = humidity - raw["line_humidity_13"].to_numpy(dtype="float64")
    out["humidity_pct"] = humidity
    out["temperature_c"] = raw["temperature_c"].to_numpy(dtype="float64")
    out["line_speed"] = raw["line_speed"].to_numpy(dtype="float64")
    shift = raw["shift"].str.strip().str.lower()
    out["night_shift"] = np.where(shift == "night", 1.0, np.where(shift == "day", 0.0, np.nan))
    out["operator_experience_years"] = raw["operator_experience_years"].to_numpy(dtype="float64")
    out["material_moisture_pct"] = raw["material_moisture_pct"].to_numpy(dtype="float64")
    out["supplier_tier"] = raw["assessed_tier"].astype("float64")
    _season(out, raw["started_at"])
    return out


def _batch_label_rows(batches: pd.DataFrame) -> pd.DataFrame:
    """One row per batch: defective or not, predicted when the batch starts."""
    started = pd.to_datetime(batches["started_at"])
    rows = pd.DataFrame(
        {
            "batch_id": batches["batch_id"].astype("int64"),
            "line_id": batches["line_id"].astype("int64"),
            "supplier_id": batches["supplier_id"].astype("int64"),
            "started_at": started,
            "temperature_c": _as_float(batches["temperature_c"]),
            "humidity_pct": _as_float(batches["humidity_pct"]),
            "line_speed": _as_float(batches["line_speed"]),
            "shift": batches["shift"].astype(object),
            "operator_experience_years": _as_float(batches["operator_experience_years"]),
            "material_moisture_pct": _as_float(batches["material_moisture_pct"]),
            "defective": batches["defective"].astype("int64"),
            AS_OF: started,
            "batch_week": started.dt.normalize() - pd.to_timedelta(started.dt.weekday, unit="D"),
        }
    )
    return rows.reset_index(drop=True)


BATCH_QUALITY_SIGNALS = FeatureView(
    name="batch_quality_signals",
    version=1,
    description="Process conditions of a batch, its line's recent defect rate and its material supplier's risk.",
    entity=(FeatureField("batch_id", "int", "Batch id.", ge=1),),
    request=(
        FeatureField("line_id", "int", "Line the batch runs on.", ge=1),
        FeatureField("supplier_id", "int", "Supplier of the raw material.", ge=1),
        FeatureField("started_at", "date", "When the batch starts."),
        FeatureField("temperature_c", "float", "Process temperature, degrees Celsius (may be null)."),
        FeatureField("humidity_pct", "float", "Relative humidity, percent.", ge=0, le=100),
        FeatureField("line_speed", "float", "Line speed relative to nominal.", ge=0),
        FeatureField("shift", "str", "day or night."),
        FeatureField("operator_experience_years", "float", "Operator experience, years.", ge=0),
        FeatureField("material_moisture_pct", "float", "Raw material moisture, percent (may be null)."),
    ),
    tables=(LINE_WEEKLY_HISTORY, SUPPLIER_ASSESSMENT_LATEST),
    feature_names=(
        "line_log_rate_104",
        "line_rate_ratio_1",
        "line_rate_ratio_4",
        "line_rate_ratio_13",
        "since_maintenance",
        "line_age_weeks",
        "humidity_vs_13",
        "humidity_pct",
        "temperature_c",
        "line_speed",
        "night_shift",
        "operator_experience_years",
        "material_moisture_pct",
        "supplier_tier",
        "week_of_year",
        "season_sin",
        "season_cos",
    ),
    transform=_batch_transform,
    label_rows=_batch_label_rows,
)


# ---------------------------------------------------------------------------------------------
# mdl-025 inventory_turnover: turnover of a product over the next quarter
# ---------------------------------------------------------------------------------------------


def _turnover_transform(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    level = raw["product_turnover_13"].to_numpy(dtype="float64")
    sold_26 = np.maximum(raw["product_sold_26"].to_numpy(dtype="float64"), MIN_LEVEL)
    out["log_turnover_13"] = np.log(level)
    out["turnover_26_ratio"] = (
        26.0 / 2.0 * raw["product_sold_26"].to_numpy() / np.maximum(raw["product_on_hand_26"].to_numpy(), MIN_LEVEL)
    ) / level
    out["sales_trend_4"] = raw["product_sold_4"].to_numpy() / sold_26
    out["sales_trend_13"] = raw["product_sold_13"].to_numpy() / sold_26
    out["stockout_4"] = raw["product_stockout_4"].to_numpy()
    out["stockout_13"] = raw["product_stockout_13"].to_numpy()
    out["open_sales_ratio_13"] = raw["product_open_sold_13"].to_numpy() / sold_26
    out["stock_trend"] = raw["product_on_hand_13"].to_numpy() / np.maximum(raw["product_on_hand_26"].to_numpy(), 0.1)
    out["cover_weeks_13"] = raw["product_on_hand_13"].to_numpy() / np.maximum(raw["product_sold_13"].to_numpy(), 0.1)
    woy_end = _iso_week(raw["quarter_start"] + QUARTER - DAY)
    woy_start = _iso_week(raw["quarter_start"])
    out["holiday_quarter"] = ((woy_start <= 48) & (woy_end >= 51) | (woy_start > woy_end)).astype("float64")
    mid = _iso_week(raw["quarter_start"] + QUARTER / 2)
    out["season_sin"] = np.sin(2.0 * np.pi * mid / 52.18)
    out["season_cos"] = np.cos(2.0 * np.pi * mid / 52.18)
    out["data_age_weeks"] = _weeks_between(raw["quarter_start"], raw["product_week"])
    # Last year: how sales and turnover moved from the quarter before to the quarter ahead.
    ly = {
        k: _nan_if_unknown(raw[f"product_ly_{k}"]) for k in ("next_sold", "next_on_hand", "prev_sold", "prev_on_hand")
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ly_sales_growth"] = ly["next_sold"] / ly["prev_sold"]
        out["ly_turnover_change"] = (ly["next_sold"] / ly["next_on_hand"]) / (ly["prev_sold"] / ly["prev_on_hand"])
    return out


def _turnover_label_rows(inv: pd.DataFrame) -> pd.DataFrame:
    """One row per product and quarter (13-week blocks from the first week of data): realised turnover.

    Turnover = units sold in the quarter / mean units on hand at week start (all stores), computed per
    reported store-week so that a missing row does not bias it.
    """
    inv = _inventory_frame(inv)
    first = inv["week_start"].min()
    quarter = ((inv["week_start"] - first) // QUARTER).astype("int64")
    on_hand = _as_float(inv["on_hand_start"])
    frame = pd.DataFrame(
        {
            "product_id": inv["product_id"].astype("int64"),
            "quarter": quarter,
            "week_start": inv["week_start"],
            "sold": _as_float(inv["units_sold"]),
            "on_hand": on_hand,
        }
    )
    agg = frame.groupby(["product_id", "quarter"]).agg(
        sold=("sold", "mean"), on_hand=("on_hand", "mean"), weeks=("week_start", "nunique")
    )
    agg = agg[agg["weeks"] == 13].reset_index()
    quarter_start = first + agg["quarter"].to_numpy() * QUARTER
    rows = pd.DataFrame(
        {
            "product_id": agg["product_id"].astype("int64"),
            "quarter_start": pd.to_datetime(quarter_start),
            "turnover": 13.0 * agg["sold"].to_numpy() / np.maximum(agg["on_hand"].to_numpy(), 1e-9),
        }
    )
    rows[AS_OF] = rows["quarter_start"] + WEEK_DECISION
    return rows[np.isfinite(rows["turnover"]) & (rows["turnover"] > 0)].reset_index(drop=True)


PRODUCT_TURNOVER_SIGNALS = FeatureView(
    name="product_turnover_signals",
    version=1,
    description="Recent turnover, sales trend, stock cover and stock-outs of a product, per target quarter.",
    entity=(_PRODUCT,),
    request=(FeatureField("quarter_start", "date", "Monday the target quarter (13 weeks) starts."),),
    tables=(INVENTORY_PRODUCT_DEMAND,),
    feature_names=(
        "log_turnover_13",
        "turnover_26_ratio",
        "sales_trend_4",
        "sales_trend_13",
        "stockout_4",
        "stockout_13",
        "open_sales_ratio_13",
        "stock_trend",
        "cover_weeks_13",
        "holiday_quarter",
        "season_sin",
        "season_cos",
        "data_age_weeks",
        "ly_sales_growth",
        "ly_turnover_change",
    ),
    transform=_turnover_transform,
    label_rows=_turnover_label_rows,
    scale_column="product_turnover_13",
)


# ---------------------------------------------------------------------------------------------
# mdl-026 defect_rate_estimation: defects per 1,000 units of a line in a week
# ---------------------------------------------------------------------------------------------


def _defect_transform(raw: pd.DataFrame) -> pd.DataFrame:
    """Line level, recent deviations, weeks since maintenance and the week's humidity.

    ``ln rate`` is linear in humidity and (capped) weeks since maintenance: small trees on these few
    inputs fit it from ~1,500 line-weeks; ``humidity_vs_104`` (humidity against the line's two-year mean)
    is computed for inspection but not a model feature: it only repeats ``humidity`` and added noise.
    """
    out = pd.DataFrame(index=raw.index)
    _line_features(out, raw, raw["week_start"])
    humidity = raw["avg_humidity"].to_numpy(dtype="float64")
    out["humidity"] = humidity
    out["humidity_vs_104"] = humidity - raw["line_humidity_104"].to_numpy(dtype="float64")
    return out


def _defect_label_rows(weekly: pd.DataFrame) -> pd.DataFrame:
    """One row per line and week: defects per 1,000 units, estimated when the week ends (before its report)."""
    week = pd.to_datetime(weekly["week_start"])
    units = _as_float(weekly["units_produced"])
    rows = pd.DataFrame(
        {
            "line_id": weekly["line_id"].astype("int64"),
            "week_start": week,
            "avg_humidity": _as_float(weekly["avg_humidity"]),
            "defects_per_1000": 1000.0 * _as_float(weekly["defects"]) / np.maximum(units, 1.0),
            AS_OF: week + WEEK - pd.Timedelta(minutes=1),
        }
    )
    return rows[units > 0].reset_index(drop=True)


LINE_DEFECT_SIGNALS = FeatureView(
    name="line_defect_signals",
    version=2,
    description="A line's recent and long-run defect rate, weeks since maintenance and the week's humidity.",
    entity=(FeatureField("line_id", "int", "Production line id.", ge=1),),
    request=(
        FeatureField("week_start", "date", "Monday of the week."),
        FeatureField("avg_humidity", "float", "Mean shop-floor humidity of the week, percent (may be null)."),
    ),
    tables=(LINE_WEEKLY_HISTORY,),
    feature_names=(
        "line_log_rate_104",
        "line_rate_ratio_1",
        "line_rate_ratio_4",
        "line_rate_ratio_13",
        "since_maintenance",
        "humidity",
    ),
    transform=_defect_transform,
    check=_check_monday,
    label_rows=_defect_label_rows,
    scale_column="line_rate_104",
)
