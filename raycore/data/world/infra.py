"""Infrastructure metric streams (5-minute points) with injected, labelled anomalies.

Hosts h (role, datacenter), metrics m in METRICS, over the last ``n_metric_days`` of the world:

    expected_hmt = L_hm * (1 + A_hm sin(2 pi (hour_t - phi_h) / 24)) * (WEEKEND_FACTOR if weekend)
    value_hmt    = expected_hmt + s_hm * T_t + shift_hmt     (T: Student-t, NOISE_DOF dof, unit variance)
    L_hm ~ METRIC_LEVEL[m] * LogNormal(0, 0.2),  A_hm ~ U(0.1, 0.4),  s_hm = NOISE_SHARE[m] * L_hm

Anomaly events per stream ~ Poisson(EVENTS_PER_DAY * days); each is one of

    spike        1 point,     shift = +-U(SPIKE_SIGMAS) s_hm
    level_shift  6-36 points, shift = +U(SHIFT_SIGMAS) s_hm
    dropout      3-12 points, value = 5% of expected (a dead exporter or a stalled host)

A point is anomalous (``infra_metrics_truth.is_anomaly``) when an event covers it; the oracle
score is |value - expected| / s_hm, the residual under the true generating function.
Covariate drift (``infra_metrics.value``) scales L_hm by (1 + m) from the drift start; it is a new
normal, not an anomaly. cpu_pct and memory_pct are clipped to [0, 100].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.data.world.config import World, WorldConfig, domain_rng
from raycore.data.world.drift import DriftSpec, active, record_drift
from raycore.data.world.mess import MessRates, make_messy

__all__ = ["ANOMALY_KINDS", "HOSTS_MESS", "METRICS", "METRICS_MESS", "generate_infra"]

METRICS = ("cpu_pct", "memory_pct", "latency_ms", "network_mbps")
METRIC_LEVEL = np.array([30.0, 40.0, 120.0, 300.0])
NOISE_SHARE = np.array([0.06, 0.03, 0.08, 0.07])
ROLES = ("web", "db", "cache", "batch")
DATACENTERS = ("dc_east", "dc_west", "dc_central")
ANOMALY_KINDS = ("none", "spike", "level_shift", "dropout")
SPIKE_SIGMAS, SHIFT_SIGMAS = (7.0, 12.0), (5.0, 8.0)
EVENTS_PER_DAY, WEEKEND_FACTOR, POINTS_PER_DAY, NOISE_DOF = 0.35, 0.9, 288, 8
METRICS_MESS = MessRates(missing=0.005, malformed=0.002, late=0.01, duplicate=0.005)
HOSTS_MESS = MessRates(unknown_category=0.02)


def generate_infra(config: WorldConfig, world: World, *, drift: DriftSpec | None = None) -> None:
    """Add hosts and infra_metrics (+ truth with anomaly labels) to ``world``.

    Example:
        >>> generate_infra(WorldConfig(), world)  # doctest: +SKIP
    """
    rng = domain_rng(config, "infra")
    n_hosts, n_days = config.size("n_hosts"), config.size("n_metric_days")
    n_m, n_t = len(METRICS), n_days * POINTS_PER_DAY
    end = pd.Timestamp(config.start) + pd.Timedelta(weeks=config.size("n_weeks"))
    ts = pd.date_range(end - pd.Timedelta(days=n_days), periods=n_t, freq="5min")
    n_streams = n_hosts * n_m
    level = METRIC_LEVEL[np.arange(n_streams) % n_m] * np.exp(rng.normal(0.0, 0.2, n_streams))
    amp = rng.uniform(0.1, 0.3, n_streams)
    phase = np.repeat(rng.uniform(8.0, 16.0, n_hosts), n_m)
    scale = NOISE_SHARE[np.arange(n_streams) % n_m] * level
    hour = (ts.hour + ts.minute / 60).to_numpy()
    weekend = np.where(ts.weekday >= 5, WEEKEND_FACTOR, 1.0)
    drifted = np.zeros(n_t, dtype=bool)
    growth = np.ones(n_t)
    if d := active(drift, "infra_metrics"):
        drifted = d.after(ts)
        growth = np.where(drifted, 1 + d.magnitude, 1.0)
        record_drift(
            world,
            d,
            table="infra_metrics",
            column="value",
            rows_affected=int(drifted.sum()) * n_streams,
        )
    # (time, stream) arrays: rows are time-major
    expected = (
        (level[None, :] * growth[:, None])
        * (1 + amp[None, :] * np.sin(2 * np.pi * (hour[:, None] - phase[None, :]) / 24))
        * weekend[:, None]
    )
    noise = (
        scale[None, :]
        * rng.standard_t(NOISE_DOF, (n_t, n_streams))
        * np.sqrt((NOISE_DOF - 2) / NOISE_DOF)
    )

    n_events = rng.poisson(EVENTS_PER_DAY * n_days, n_streams)
    ev_stream = np.repeat(np.arange(n_streams), n_events)
    n_ev = len(ev_stream)
    kind = rng.choice(3, n_ev, p=[0.45, 0.4, 0.15]) + 1
    length = np.select(
        [kind == 1, kind == 2], [1, rng.integers(6, 37, n_ev)], rng.integers(3, 13, n_ev)
    )
    start = rng.integers(0, n_t - 1, n_ev)
    stop = np.minimum(start + length, n_t)
    sign = np.where(rng.random(n_ev) < 0.5, -1.0, 1.0)
    magnitude = (
        np.where(
            kind == 1, sign * rng.uniform(*SPIKE_SIGMAS, n_ev), rng.uniform(*SHIFT_SIGMAS, n_ev)
        )
        * scale[ev_stream]
    )
    shift_diff = np.zeros((n_t + 1, n_streams))
    cover_diff = np.zeros((n_t + 1, n_streams), dtype=np.int64)
    drop_diff = np.zeros((n_t + 1, n_streams), dtype=np.int64)
    not_drop = kind != 3
    np.add.at(shift_diff, (start[not_drop], ev_stream[not_drop]), magnitude[not_drop])
    np.add.at(shift_diff, (stop[not_drop], ev_stream[not_drop]), -magnitude[not_drop])
    np.add.at(cover_diff, (start, ev_stream), 1)
    np.add.at(cover_diff, (stop, ev_stream), -1)
    np.add.at(drop_diff, (start[~not_drop], ev_stream[~not_drop]), 1)
    np.add.at(drop_diff, (stop[~not_drop], ev_stream[~not_drop]), -1)
    shift = np.cumsum(shift_diff, axis=0)[:n_t]
    covered = np.cumsum(cover_diff, axis=0)[:n_t] > 0
    dropped = np.cumsum(drop_diff, axis=0)[:n_t] > 0
    kind_grid = np.zeros((n_t, n_streams), dtype=np.int64)
    for k in (2, 1, 3):  # paint event kinds (a short loop over kinds); dropout wins overlaps
        sel = kind == k
        kd = np.zeros((n_t + 1, n_streams), dtype=np.int64)
        np.add.at(kd, (start[sel], ev_stream[sel]), 1)
        np.add.at(kd, (stop[sel], ev_stream[sel]), -1)
        kind_grid = np.where(np.cumsum(kd, axis=0)[:n_t] > 0, k, kind_grid)
    value = np.where(dropped, 0.05 * expected + 0.1 * noise, expected + noise + shift)
    pct = (np.arange(n_streams) % n_m) < 2
    value = np.where(pct[None, :], np.clip(value, 0.0, 100.0), np.maximum(value, 0.0))

    host_of = np.arange(n_streams) // n_m
    t_idx, s_idx = np.divmod(np.arange(n_t * n_streams), n_streams)
    hid = np.arange(1, n_hosts + 1, dtype="int64")
    frame = pd.DataFrame(
        {
            "host_id": hid[host_of[s_idx]],
            "metric": np.asarray(METRICS, dtype=object)[s_idx % n_m],
            "ts": ts.to_numpy()[t_idx],
            "value": np.round(value.ravel(), 3),
        }
    )
    truth = pd.DataFrame(
        {
            "host_id": frame["host_id"],
            "metric": frame["metric"],
            "ts": frame["ts"],
            "expected_value": expected.ravel(),
            "noise_scale": np.tile(scale, n_t),
            "is_anomaly": covered.ravel(),
            "anomaly_kind": np.asarray(ANOMALY_KINDS, dtype=object)[kind_grid.ravel()],
            "drifted": np.repeat(drifted, n_streams),
        }
    )
    hosts = pd.DataFrame(
        {
            "host_id": hid,
            "role": np.asarray(ROLES, dtype=object)[rng.integers(0, len(ROLES), n_hosts)],
            "datacenter": np.asarray(DATACENTERS, dtype=object)[
                rng.integers(0, len(DATACENTERS), n_hosts)
            ],
        }
    )
    world.tables["hosts"] = make_messy(
        hosts,
        config=config,
        table="hosts",
        rates=HOSTS_MESS,
        event_column=None,
        unknown=["datacenter"],
    )
    world.tables["infra_metrics"] = make_messy(
        frame,
        config=config,
        table="infra_metrics",
        rates=METRICS_MESS,
        event_column="ts",
        base_lag=pd.Timedelta(seconds=30),
        jitter=pd.Timedelta(minutes=2),
        missing=["value"],
        malformed=["value"],
    )
    world.truth["infra_metrics_truth"] = truth
