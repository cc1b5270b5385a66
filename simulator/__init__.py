"""A deterministic simulated restaurant chain, standing in for its real systems.

simulator.model draws what happens, simulator.writers write each system's files from it, and
simulator.world runs the one and then the other; see README.md.
"""

from simulator.config import WorldConfig, WorldPaths
from simulator.world import WorldRefused, advance_world, build_world, read_state

__all__ = [
    "WorldConfig",
    "WorldPaths",
    "WorldRefused",
    "advance_world",
    "build_world",
    "read_state",
]
