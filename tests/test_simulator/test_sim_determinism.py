"""Same seed and parameters give the same world; another seed gives another one."""

from __future__ import annotations

import dataclasses
import json

from sim_helpers import TINY, dump_tables

from simulator import build_world


def test_two_builds_are_identical(tmp_path):
    first = build_world(TINY, tmp_path / "a")
    second = build_world(TINY, tmp_path / "b")
    assert first.truth.read_bytes() == second.truth.read_bytes()
    assert dump_tables(first.ordering_db) == dump_tables(second.ordering_db)


def test_another_seed_gives_another_world(tmp_path, tiny_sim):
    other = build_world(dataclasses.replace(TINY, seed=8), tmp_path)
    assert dump_tables(other.ordering_db)["orders"] != dump_tables(tiny_sim.ordering_db)["orders"]
    assert (
        json.loads(other.truth.read_text())["figures"]
        != json.loads(tiny_sim.truth.read_text())["figures"]
    )


def test_pinned_figures_of_the_tiny_world(tiny_sim):
    """Concrete figures of seed 7: any change to the generative model shows up here first.
    Update them deliberately when the model is changed on purpose."""
    figures = json.loads(tiny_sim.truth.read_text())["figures"]
    assert figures["rows"] == {
        "stores": 7,
        "menu_items": 37,
        "customers": 163,
        "orders": 300,
        "order_items": 637,
        "order_feedback": 46,
    }
    assert figures["completed_revenue"] == 27_758_700
    assert figures["orders_by_status"] == {"cancelled": 11, "completed": 283, "refunded": 6}
    assert figures["customers_acquired_by_month"] == {"2025-01": 63, "2025-02": 94, "2025-03": 6}
    assert figures["customers_churned_by_month"] == {"2025-01": 2, "2025-02": 12}
