"""Evaluators of the supply-chain decision models: stock service level (mdl-019), routes (mdl-022).

``service_level``: the model recommends the stock to hold for a target service
level (a demand quantile). On the holdout, the realised service is the share of
weeks whose true, uncensored demand (the simulator's, which the business never
sees on stock-out weeks) the recommended stock covers; the gate metric is its
distance to the target. The oracle is the true demand quantile.

``route_eta_cost``: the ETA model's leg error (MAPE vs the driven minutes), and
the route the solver builds on the model's travel-time matrix for every holdout
run of at most ``max_stops`` stops, costed on the simulator's expected travel
times and compared with the exact optimum (Held-Karp) on the same costs.

Example (YAML):
    evaluation:
      evaluator: service_level
      params: {target: 0.95}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.errors import DataError
from raycore.models.custom.supply import RouteSolver, held_karp, path_cost
from raycore.training.evaluation import ORACLE_COLUMN, EvalContext, EvalResult, evaluator
from raycore.training.metrics import compute_metric

__all__ = ["route_eta_cost", "service_level"]

# Expected road distance per straight-line km, when the data cannot tell (it can: see _road_factor).
DEFAULT_ROAD_FACTOR = 1.3


@evaluator("service_level")
def service_level(ctx: EvalContext) -> EvalResult:
    """Realised service level of the recommended stock against true demand (see module docstring)."""
    target = float(ctx.params.get("target", 0.95))
    demand_table = str(ctx.params.get("demand_table", "store_inventory_weekly_truth"))
    demand_column = str(ctx.params.get("demand_column", "demand"))
    if ctx.spec.oracle is None:
        raise DataError(
            f"{ctx.spec.id}: service_level needs oracle.keys to find the true demand of each row"
        )
    keys = list(ctx.spec.oracle.keys)
    rows = ctx.holdout_rows
    truth = ctx.truth(demand_table)[[*keys, demand_column]].drop_duplicates(keys)
    demand = (
        rows[keys]
        .merge(truth, on=keys, how="left", validate="many_to_one")[demand_column]
        .to_numpy(dtype=float)
    )
    if np.isnan(demand).any():
        raise DataError(
            f"{int(np.isnan(demand).sum())} holdout row(s) of {ctx.spec.id} have no true demand"
        )
    stock = np.asarray(ctx.predict(), dtype="float64")
    sold = rows[ctx.spec.label].to_numpy(dtype="float64")

    def scores(level: np.ndarray) -> dict[str, float]:
        served = float(np.mean(demand <= level))
        return {
            "service_level_error": abs(served - target),
            "realised_service": served,
            "mean_stock": float(np.mean(level)),
            "pinball_loss": _pinball(demand, level, target),
            "observed_service": float(np.mean(sold <= level)),
        }

    metrics = scores(stock)
    oracle = (
        scores(rows[ORACLE_COLUMN].to_numpy(dtype="float64"))
        if ORACLE_COLUMN in rows.columns
        else {}
    )
    notes = (
        f"realised service {metrics['realised_service']:.4f} (target {target}) on {len(rows):,} holdout "
        f"product-store-weeks; 'observed_service' counts only what sales show (censored on stock-out weeks)"
    )
    return EvalResult(metrics, oracle, notes)


def _pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    diff = y - q
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))


@evaluator("route_eta_cost")
def route_eta_cost(ctx: EvalContext) -> EvalResult:
    """Leg ETA MAPE, and solver route cost over the exact optimum on small holdout runs."""
    max_stops = int(ctx.params.get("max_stops", 9))
    max_runs = int(ctx.params.get("max_runs", 300))
    rows = ctx.holdout_rows
    y = rows[ctx.spec.label].to_numpy(dtype="float64")
    metrics = {"eta_mape": compute_metric("mape", y_true=y, y_pred=ctx.predict())}
    oracle: dict[str, float] = {"route_cost_ratio": 1.0}
    if ORACLE_COLUMN in rows.columns:
        oracle["eta_mape"] = compute_metric(
            "mape", y_true=y, y_pred=rows[ORACLE_COLUMN].to_numpy(dtype="float64")
        )

    runs = _small_runs(ctx, max_stops=max_stops, max_runs=max_runs)
    road_factor = _road_factor(ctx)
    speed = ctx.truth("delivery_runs_truth").set_index("run_id")["region_speed_kmh"]
    solver = RouteSolver()
    ratios, driven = [], []
    requests, blocks = [], []
    for run in runs:
        xy, meta = run["xy"], run["meta"]
        n = len(xy) - 1
        i, j = np.nonzero(~np.eye(n + 1, dtype=bool) & (np.arange(n + 1)[None, :] > 0))
        km = np.linalg.norm(xy[i] - xy[j], axis=1) * road_factor
        requests.append(
            pd.DataFrame(
                {
                    "depot_id": meta["depot_id"],
                    "leg_start_at": meta["departed_at"],
                    "leg_distance_km": np.maximum(km, 0.01),
                    "vehicle_type": meta["vehicle_type"],
                    "weather": meta["weather"],
                }
            )
        )
        blocks.append((i, j))
    minutes: np.ndarray = (
        np.asarray(ctx.predict(pd.concat(requests, ignore_index=True)), dtype="float64")
        if requests
        else np.zeros(0)
    )
    start = 0
    for run, (i, j) in zip(runs, blocks, strict=True):
        xy, meta = run["xy"], run["meta"]
        n = len(xy) - 1
        model_cost = np.zeros((n + 1, n + 1))
        model_cost[i, j] = minutes[start : start + len(i)]
        start += len(i)
        order = solver.solve(model_cost)
        # Scored on the simulator's expected minutes, 60 * road km / region speed (weather and vehicle
        # scale a whole run alike and cancel in the ratio; rush hours are left aside).
        kmh = float(speed.get(meta["run_id"], np.nan))
        true_cost = 60.0 * road_factor * np.linalg.norm(xy[:, None] - xy[None], axis=2) / kmh
        best, _ = held_karp(true_cost)
        ratios.append(path_cost(true_cost, order) / best)
        driven.append(path_cost(true_cost, list(range(1, n + 1))) / best)
    if not ratios:
        raise DataError(
            f"{ctx.spec.id}: no holdout run with at most {max_stops} complete stops to route"
        )
    r = np.asarray(ratios)
    metrics.update(
        {
            "route_cost_ratio": float(r.mean()),
            "route_cost_ratio_p95": float(np.quantile(r, 0.95)),
            "route_cost_ratio_max": float(r.max()),
            "route_within_10pct": float(np.mean(r <= 1.10 + 1e-9)),
            "driven_route_cost_ratio": float(np.mean(driven)),
            "routed_runs": float(len(r)),
        }
    )
    notes = (
        f"{len(r)} holdout runs of <= {max_stops} stops: solver {r.mean():.4f} x optimum "
        f"(max {r.max():.4f}); the drivers' own order {np.mean(driven):.4f} x; road factor {road_factor:.3f}"
    )
    return EvalResult(metrics, oracle, notes)


def _small_runs(ctx: EvalContext, *, max_stops: int, max_runs: int) -> list[dict]:
    """Holdout runs whose every stop is in silver, with depot + stop coordinates (depot first)."""
    ids = np.unique(ctx.holdout_rows["run_id"].to_numpy())
    runs = ctx.table("delivery_runs")
    runs = runs[runs["run_id"].isin(ids) & (runs["n_stops"] <= max_stops)]
    stops = ctx.table("delivery_stops")
    stops = stops[stops["run_id"].isin(runs["run_id"])].sort_values(["run_id", "stop_seq"])
    counts = stops.groupby("run_id")["stop_id"].count()
    runs = runs[runs["run_id"].map(counts).fillna(0).to_numpy() == runs["n_stops"].to_numpy()]
    runs = runs.sort_values("run_id").head(max_runs)
    depots = ctx.table("depots").set_index("depot_id")
    by_run = {k: g for k, g in stops.groupby("run_id")}
    out = []
    for run in runs.itertuples(index=False):
        if run.depot_id not in depots.index:
            continue
        g = by_run[run.run_id]
        depot = depots.loc[run.depot_id, ["x_km", "y_km"]].to_numpy(dtype="float64")
        xy = np.vstack([depot, g[["x_km", "y_km"]].to_numpy(dtype="float64")])
        weather = run.weather if isinstance(run.weather, str) else "unknown"
        meta = {
            "run_id": run.run_id,
            "depot_id": int(run.depot_id),
            "departed_at": pd.Timestamp(run.departed_at),
            "vehicle_type": str(run.vehicle_type),
            "weather": weather,
        }
        out.append({"xy": xy, "meta": meta})
    return out


def _road_factor(ctx: EvalContext) -> float:
    """Median road km per straight-line km of the training legs (the solver's distances are straight lines)."""
    ids: np.ndarray = (
        np.unique(ctx.train_rows["run_id"].to_numpy())
        if "run_id" in ctx.train_rows.columns
        else np.zeros(0)
    )
    stops = ctx.table("delivery_stops")
    stops = stops[stops["run_id"].isin(ids)].sort_values(["run_id", "stop_seq"])
    same = (stops["run_id"].to_numpy()[1:] == stops["run_id"].to_numpy()[:-1]) & (
        stops["stop_seq"].to_numpy()[1:] == stops["stop_seq"].to_numpy()[:-1] + 1
    )
    xy = stops[["x_km", "y_km"]].to_numpy(dtype="float64")
    straight = np.linalg.norm(xy[1:] - xy[:-1], axis=1)[same]
    road = stops["leg_distance_km"].to_numpy(dtype="float64")[1:][same]
    ok = straight > 0.5
    return float(np.median(road[ok] / straight[ok])) if ok.sum() >= 20 else DEFAULT_ROAD_FACTOR
