"""A deterministic simulated restaurant chain, standing in for its real systems.

Today it produces the ordering platform's database (SQLite, from schema.sql) and a truth file of
what was generated; more channels will read the same latent population.
"""

from simulator.config import WorldConfig, WorldPaths
from simulator.world import advance_world, build_world, read_state

__all__ = ["WorldConfig", "WorldPaths", "advance_world", "build_world", "read_state"]
