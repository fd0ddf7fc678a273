"""Configuration of the simulated business: seed, scale and calendar."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["SCALES", "Scale", "World", "WorldConfig", "domain_rng"]

Scale = Literal["small", "medium", "large"]

# Sizes per scale. `small` generates in seconds; `large` reaches >= 10M rows across tables.
SCALES: dict[str, dict[str, int]] = {
    "small": {
        "n_regions": 6, "n_stores": 40, "n_weeks": 156,
        "n_customers": 4_000, "n_products": 400, "n_inventory_products": 40, "n_inventory_stores": 40,
        "n_offer_sessions": 8_000, "n_journeys": 20_000, "n_campaigns": 2_000, "n_suppliers": 150,
        "n_lines": 12, "n_delivery_runs": 3_000, "n_applications": 20_000, "n_instruments": 8,
        "n_hosts": 12, "n_metric_days": 14,
    },
    "medium": {
        "n_regions": 8, "n_stores": 400, "n_weeks": 208,
        "n_customers": 40_000, "n_products": 800, "n_inventory_products": 60, "n_inventory_stores": 150,
        "n_offer_sessions": 80_000, "n_journeys": 150_000, "n_campaigns": 3_000, "n_suppliers": 400,
        "n_lines": 40, "n_delivery_runs": 20_000, "n_applications": 150_000, "n_instruments": 16,
        "n_hosts": 48, "n_metric_days": 21,
    },
    "large": {
        "n_regions": 12, "n_stores": 4000, "n_weeks": 260,
        "n_customers": 50_000, "n_products": 2_000, "n_inventory_products": 100, "n_inventory_stores": 200,
        "n_offer_sessions": 400_000, "n_journeys": 800_000, "n_campaigns": 10_000, "n_suppliers": 1_200,
        "n_lines": 120, "n_delivery_runs": 100_000, "n_applications": 800_000, "n_instruments": 40,
        "n_hosts": 160, "n_metric_days": 28,
    },
}


@dataclass(frozen=True)
class WorldConfig:
    """Seed, scale and calendar of one data world; equal configs give equal worlds."""

    seed: int = 7
    scale: Scale = "small"
    start: date = date(2023, 1, 2)  # a Monday: weeks start on Mondays

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, got {self.scale!r}")
        if self.start.weekday() != 0:
            raise ValueError(f"start must be a Monday, got {self.start} ({self.start:%A})")

    def size(self, key: str) -> int:
        return SCALES[self.scale][key]

    def weeks(self) -> pd.DatetimeIndex:
        """The Monday of every simulated week."""
        return pd.date_range(self.start, periods=self.size("n_weeks"), freq="7D")


def domain_rng(config: WorldConfig, domain: str) -> np.random.Generator:
    """An independent random stream per domain, so adding a domain changes no other table."""
    digest = hashlib.sha256(domain.encode()).digest()
    return np.random.default_rng(np.random.SeedSequence([config.seed, int.from_bytes(digest[:8], "little")]))


@dataclass
class World:
    """Generated tables (what a business would have) and truth tables (what only the simulator knows)."""

    config: WorldConfig
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)

    def row_counts(self) -> dict[str, int]:
        return {name: len(df) for name, df in {**self.tables, **self.truth}.items()}
