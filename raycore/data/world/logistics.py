"""Logistics: depots, delivery runs and their stops, with travel times (part of the supply domain).

One depot per region at U(0, 400) km coordinates; runs on uniform days, 3 + Poisson(4.5) stops
(at most 12) uniform in a 30 km square around the depot, driven in nearest-neighbour order with
random adjacent swaps (w.p. 0.3 each) as drivers do:

    leg_km    = euclid(previous stop, stop) * U(1.15, 1.45)            (road factor)
    speed     = REGION_SPEED_r * rush(hour) * (0.85 if rain) * (0.9 if truck)  km/h,
                REGION_SPEED_r ~ U(REGION_SPEED), rush = 0.7 in 7-9h and 16-18h
    travel_min = 60 leg_km / speed * exp(N(0, TRAVEL_NOISE) - TRAVEL_NOISE**2 / 2)
    service_min = 4 + Gamma(2, 3);  the clock advances by travel + service

Oracle ETA: ``delivery_stops_truth.expected_travel_minutes`` = 60 leg_km / speed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.data.world.config import World, WorldConfig
from raycore.data.world.mess import MessRates

__all__ = ["REGION_SPEED", "RUNS_MESS", "STOPS_MESS", "TRAVEL_NOISE", "delivery_tables"]

REGION_SPEED = (32.0, 48.0)
TRAVEL_NOISE = 0.085
VEHICLES = ("van", "truck")
RUNS_MESS = MessRates(missing=0.01, unknown_category=0.005, late=0.01, duplicate=0.005)
STOPS_MESS = MessRates(missing=0.01, outlier=0.002, late=0.02, duplicate=0.005)

_DAY_NS = 86400 * 10**9


def delivery_tables(
    config: WorldConfig, world: World, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Depots, delivery runs and stops (+ run and stop truth), drawn from the supply stream ``rng``."""
    region_ids = world.tables["regions"]["region_id"].to_numpy()
    n_reg = len(region_ids)
    depot_xy = rng.uniform(0, 400, (n_reg, 2))
    region_speed = rng.uniform(*REGION_SPEED, n_reg)
    n_runs, n_days = config.size("n_delivery_runs"), config.size("n_weeks") * 7
    max_stops = 12
    day = np.sort(rng.integers(0, n_days, n_runs))
    depot = rng.integers(0, n_reg, n_runs)
    n_stops = np.minimum(3 + rng.poisson(4.5, n_runs), max_stops)
    vehicle = rng.random(n_runs) < 0.3
    rain = rng.random(n_runs) < 0.2
    depart_h = rng.uniform(6.0, 10.0, n_runs)
    xy = depot_xy[depot][:, None, :] + rng.uniform(-15, 15, (n_runs, max_stops, 2))
    valid = np.arange(max_stops)[None, :] < n_stops[:, None]
    # nearest-neighbour route from the depot, vectorised over runs
    pos = depot_xy[depot].copy()
    visited = ~valid
    route = np.zeros((n_runs, max_stops), dtype=np.int64)
    rows = np.arange(n_runs)
    for k in range(max_stops):
        dist = np.linalg.norm(xy - pos[:, None, :], axis=2) + np.where(visited, np.inf, 0.0)
        nxt = dist.argmin(axis=1)
        route[:, k] = nxt
        visited[rows, nxt] = True
        pos = xy[rows, nxt]
    swap = (rng.random((n_runs, max_stops - 1)) < 0.3) & (
        np.arange(1, max_stops)[None, :] < n_stops[:, None]
    )
    for k in range(max_stops - 1):
        a, b = route[:, k].copy(), route[:, k + 1].copy()
        route[:, k] = np.where(swap[:, k], b, a)
        route[:, k + 1] = np.where(swap[:, k], a, b)
    ordered_xy = xy[rows[:, None], route]
    prev = np.concatenate([depot_xy[depot][:, None, :], ordered_xy[:, :-1]], axis=1)
    road_km = np.linalg.norm(ordered_xy - prev, axis=2) * rng.uniform(
        1.15, 1.45, (n_runs, max_stops)
    )
    service = 4 + rng.gamma(2.0, 3.0, (n_runs, max_stops))
    noise = np.exp(rng.normal(0, TRAVEL_NOISE, (n_runs, max_stops)) - TRAVEL_NOISE**2 / 2)
    clock = depart_h.copy()
    travel = np.zeros((n_runs, max_stops))
    expected = np.zeros((n_runs, max_stops))
    arrive_h = np.zeros((n_runs, max_stops))
    for k in range(max_stops):  # legs in order: speed depends on the clock
        hour = np.floor(clock) % 24
        rush = np.where(((hour >= 7) & (hour < 9)) | ((hour >= 16) & (hour < 18)), 0.7, 1.0)
        speed = region_speed[depot] * rush * np.where(rain, 0.85, 1.0) * np.where(vehicle, 0.9, 1.0)
        expected[:, k] = 60 * road_km[:, k] / speed
        travel[:, k] = expected[:, k] * noise[:, k]
        arrive_h[:, k] = clock + travel[:, k] / 60
        clock = np.where(valid[:, k], arrive_h[:, k] + service[:, k] / 60, clock)
    start_ns = pd.Timestamp(config.start).value
    run_id = np.arange(1, n_runs + 1, dtype="int64")
    depart_ns = start_ns + day * _DAY_NS + np.round(depart_h * 3600).astype(np.int64) * 10**9
    depots = pd.DataFrame(
        {
            "depot_id": np.arange(1, n_reg + 1, dtype="int64"),
            "region_id": region_ids.astype("int64"),
            "x_km": np.round(depot_xy[:, 0], 3),
            "y_km": np.round(depot_xy[:, 1], 3),
        }
    )
    runs = pd.DataFrame(
        {
            "run_id": run_id,
            "depot_id": depot.astype("int64") + 1,
            "departed_at": depart_ns.astype("datetime64[ns]"),
            "vehicle_type": np.asarray(VEHICLES, dtype=object)[vehicle.astype(int)],
            "weather": np.where(rain, "rain", "dry").astype(object),
            "n_stops": n_stops.astype("int64"),
        }
    )
    r_idx, k_idx = np.nonzero(valid)
    stop_id = np.arange(1, len(r_idx) + 1, dtype="int64")
    arrived_ns = (
        start_ns
        + day[r_idx] * _DAY_NS
        + np.round(arrive_h[r_idx, k_idx] * 3600).astype(np.int64) * 10**9
    )
    stops = pd.DataFrame(
        {
            "stop_id": stop_id,
            "run_id": run_id[r_idx],
            "stop_seq": k_idx.astype("int64") + 1,
            "x_km": np.round(ordered_xy[r_idx, k_idx, 0], 3),
            "y_km": np.round(ordered_xy[r_idx, k_idx, 1], 3),
            "leg_distance_km": np.round(road_km[r_idx, k_idx], 3),
            "travel_minutes": np.round(travel[r_idx, k_idx], 2),
            "arrived_at": arrived_ns.astype("datetime64[ns]"),
            "service_minutes": np.round(service[r_idx, k_idx], 1),
        }
    )
    stops_truth = pd.DataFrame(
        {"stop_id": stop_id, "expected_travel_minutes": expected[r_idx, k_idx]}
    )
    runs_truth = pd.DataFrame({"run_id": run_id, "region_speed_kmh": region_speed[depot]})
    return depots, runs, stops, runs_truth, stops_truth
