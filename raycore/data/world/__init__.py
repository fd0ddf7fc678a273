"""The data world: a deterministic simulated business that knows its own truth.

Example:
    >>> from raycore.data.world import WorldConfig, generate_world
    >>> world = generate_world(WorldConfig(seed=7, scale="small"))
    >>> {"regions", "stores", "orders", "products"} <= set(world.tables)
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from raycore.data.world.config import SCALES, Scale, World, WorldConfig, domain_rng
from raycore.data.world.customers import generate_customers
from raycore.data.world.drift import DriftSpec
from raycore.data.world.infra import generate_infra
from raycore.data.world.inventory import generate_inventory
from raycore.data.world.marketing import generate_marketing
from raycore.data.world.offers import generate_offers
from raycore.data.world.products import generate_products
from raycore.data.world.retail import generate_retail
from raycore.data.world.risk import generate_risk
from raycore.data.world.supply import generate_supply

__all__ = ["SCALES", "DriftSpec", "Scale", "World", "WorldConfig", "domain_rng", "generate_world"]

# Domain generators, run in order; later ones may read tables of earlier ones.
GENERATORS: tuple[Callable[..., None], ...] = (
    generate_retail,
    generate_products,
    generate_customers,
    generate_supply,
    generate_inventory,
    generate_marketing,
    generate_offers,
    generate_risk,
    generate_infra,
)


def generate_world(config: WorldConfig | None = None, *, drift: DriftSpec | None = None) -> World:
    """Generate every table of the data world for a seed and scale, optionally with injected drift."""
    config = config or WorldConfig()
    world = World(config=config)
    for generate in GENERATORS:
        if drift is not None and "drift" in inspect.signature(generate).parameters:
            generate(config, world, drift=drift)
        else:
            generate(config, world)
    return world
