"""Advancing a world: only the new day's rows appear, only rows changed that day change, and a
build advanced N days equals a build N days longer."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter

import pytest
from sim_helpers import TABLES, TINY, dump_tables

from simulator import advance_world, build_world, read_state
from simulator.world import load_world_config


def test_build_then_advance_equals_a_longer_build(tmp_path):
    advanced = build_world(TINY, tmp_path / "advanced")
    for _ in range(5):
        advance_world(tmp_path / "advanced")
    longer = build_world(dataclasses.replace(TINY, days=TINY.days + 5), tmp_path / "longer")
    assert dump_tables(advanced.ordering_db) == dump_tables(longer.ordering_db)
    assert advanced.truth.read_bytes() == longer.truth.read_bytes()
    config, as_of = read_state(tmp_path / "advanced")
    assert config == TINY and as_of.isoformat() == "2025-03-06"


def test_a_long_advance_through_openings_retirements_and_a_price_review(tmp_path):
    """Days 60-130 open JBR-03 (day 75), retire and delete SSN-001 (76, 104), reprice (121)."""
    advanced = build_world(TINY, tmp_path / "advanced")
    advance_world(tmp_path / "advanced", days=70)
    longer = build_world(dataclasses.replace(TINY, days=TINY.days + 70), tmp_path / "longer")
    assert dump_tables(advanced.ordering_db) == dump_tables(longer.ordering_db)
    assert advanced.truth.read_bytes() == longer.truth.read_bytes()
    truth = json.loads(longer.truth.read_text())
    assert {c["date"] for c in truth["planted"]["price_reviews"]["changes"]} == {
        "2025-01-31",
        "2025-05-02",
    }
    assert "JBR-03" in {s["store_code"] for s in truth["figures"]["stores"]}


def test_advancing_several_days_at_once_equals_one_at_a_time(tmp_path):
    stepped = build_world(TINY, tmp_path / "stepped")
    for _ in range(3):
        advance_world(tmp_path / "stepped", days=1)
    jumped = build_world(TINY, tmp_path / "jumped")
    advance_world(tmp_path / "jumped", days=3)
    assert dump_tables(stepped.ordering_db) == dump_tables(jumped.ordering_db)


def test_each_day_inserts_its_rows_and_updates_only_rows_changed_that_day(tmp_path):
    paths = build_world(TINY, tmp_path)
    columns = {table: _columns(paths.ordering_db, table) for table in TABLES}
    inserted = Counter()
    updated = Counter()
    for _ in range(10):
        before = _rows_by_key(paths.ordering_db)
        advance_world(tmp_path, days=1)
        after = _rows_by_key(paths.ordering_db)
        new_day = read_state(tmp_path)[1].isoformat()
        for table, rows in after.items():
            created = columns[table].index("created_at")
            stamp = columns[table].index("updated_at")
            assert set(before[table]) <= set(rows)
            for key, row in rows.items():
                old = before[table].get(key)
                if old is None:
                    inserted[table] += 1
                    assert row[created].startswith(new_day), (table, row)
                elif old != row:
                    updated[table] += 1
                    assert row[stamp].startswith(new_day) and old[stamp] < row[stamp], (table, row)
                else:
                    assert row[stamp] < new_day, (table, row)  # untouched rows settled earlier
    assert {"customers", "orders", "order_items"} <= set(inserted)
    assert updated["customers"] > 0 and updated["orders"] > 0


def _rows_by_key(db):
    return {table: {row[0]: row for row in rows} for table, rows in dump_tables(db).items()}


def _columns(db, table):
    conn = sqlite3.connect(db)
    try:
        return [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_truth_follows_the_world(tmp_path):
    paths = build_world(TINY, tmp_path)
    first = json.loads(paths.truth.read_text())
    advance_world(tmp_path, days=2)
    later = json.loads(paths.truth.read_text())
    assert (first["as_of"], later["as_of"]) == ("2025-03-01", "2025-03-03")
    assert later["figures"]["rows"]["orders"] > first["figures"]["rows"]["orders"]


def test_advance_needs_a_world(tmp_path):
    with pytest.raises(FileNotFoundError, match="no simulated world"):
        advance_world(tmp_path / "empty")
    build_world(TINY, tmp_path)
    with pytest.raises(ValueError, match="days must be >= 1"):
        advance_world(tmp_path, days=0)


def test_advance_refuses_a_database_that_is_not_the_world(tmp_path):
    paths = build_world(TINY, tmp_path)
    conn = sqlite3.connect(paths.ordering_db)
    conn.execute("DELETE FROM order_items WHERE order_item_id = 1")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="does not hold the world"):
        advance_world(tmp_path)


def test_build_replaces_an_existing_world(tmp_path):
    build_world(dataclasses.replace(TINY, seed=99, days=90), tmp_path)
    paths = build_world(TINY, tmp_path)
    fresh = build_world(TINY, tmp_path / "fresh")
    assert dump_tables(paths.ordering_db) == dump_tables(fresh.ordering_db)
    assert read_state(tmp_path) == (TINY, TINY.first_as_of)


def test_load_world_config(tmp_path):
    assert load_world_config(tmp_path) is None
    build_world(TINY, tmp_path)
    advance_world(tmp_path)
    assert load_world_config(tmp_path) == TINY  # the build config; the as-of date moved on
    (tmp_path / "world.json").write_text("{not json")
    assert load_world_config(tmp_path) is None
