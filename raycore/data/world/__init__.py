"""The data world: a deterministic simulated business that knows its own truth.

Example:
    >>> from raycore.data.world import WorldConfig, generate_world
    >>> world = generate_world(WorldConfig(seed=7, scale="small"))
    >>> sorted(world.tables)[:2]
    ['regions', 'store_sales_weekly']
"""

from __future__ import annotations

from raycore.data.world.config import SCALES, Scale, World, WorldConfig, domain_rng
from raycore.data.world.retail import generate_retail

__all__ = ["SCALES", "Scale", "World", "WorldConfig", "domain_rng", "generate_world"]

# Domain generators, run in order; later ones may read tables of earlier ones.
GENERATORS = (generate_retail,)


def generate_world(config: WorldConfig | None = None) -> World:
    """Generate every table of the data world for a seed and scale."""
    config = config or WorldConfig()
    world = World(config=config)
    for generate in GENERATORS:
        generate(config, world)
    return world
