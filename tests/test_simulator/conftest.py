"""Simulated worlds shared by the simulator tests: build once per session, only read them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sim_helpers import TINY, rows

from simulator import WorldConfig, WorldPaths, build_world


@pytest.fixture(scope="session")
def tiny_sim(tmp_path_factory: pytest.TempPathFactory) -> WorldPaths:
    """A 60-day world of about 150 guests."""
    return build_world(TINY, tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def default_sim(tmp_path_factory: pytest.TempPathFactory) -> WorldPaths:
    """The default world (about 2,000 guests over 180 days): enough rows for shares and rates."""
    return build_world(WorldConfig(), tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def query(tiny_sim: WorldPaths) -> Callable[[str], list[tuple]]:
    """Run SQL against the tiny world."""
    return lambda sql: rows(tiny_sim.ordering_db, sql)
