"""In-app feedback: the order_feedback table fits schema.sql, grows by increments like the other
tables, and rates the planted dish and store worst."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from ops_helpers import OPS_WORLD, as_of

from simulator import WorldConfig
from simulator.model.clock import end_of_day_us
from simulator.model.feedback import (
    COMMENTS,
    NEGATIVE,
    PLANTED_ITEM,
    PLANTED_STORE,
    POSITIVE,
    feedback_truth,
)
from simulator.model.snapshot import order_feedback_table, ordering_tables
from simulator.model.timeline import simulate
from simulator.writers.sqlite import apply_increment, write_database


def _tables(config: WorldConfig, extra_days: int = 0) -> dict:
    """The ordering tables plus order_feedback, as the lead's snapshot will hold them."""
    day = as_of(config, extra_days)
    tl = simulate(config, day)
    tables = ordering_tables(tl, day)
    tables["order_feedback"] = order_feedback_table(tl, end_of_day_us(day))
    return tables


def _dump(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM order_feedback ORDER BY 1").fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("feedback") / "ordering.sqlite"
    write_database(path, _tables(OPS_WORLD))  # foreign keys and CHECKs are enforced
    return path


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_feedback_follows_completed_orders(db):
    [(n, orders)] = rows(db, "SELECT count(*), count(DISTINCT order_id) FROM order_feedback")
    [(completed,)] = rows(
        db, "SELECT count(*) FROM orders WHERE completed_at IS NOT NULL AND deleted_at IS NULL"
    )
    assert n == orders and 0.1 < n / completed < 0.2  # about 15% of completed orders
    assert rows(db, "PRAGMA foreign_key_check") == []
    assert rows(
        db,
        """
        SELECT count(*) FROM order_feedback f JOIN orders o USING (order_id)
        WHERE o.completed_at IS NULL OR f.created_at <= o.completed_at
           OR f.customer_id != o.customer_id OR f.store_id != o.store_id
           OR f.submitted_at >= f.created_at OR f.updated_at != f.created_at
        """,
    ) == [(0,)]
    # Most answer right away, some days later.
    [(within_hour, later_day)] = rows(
        db,
        """
        SELECT avg(julianday(f.created_at) - julianday(o.completed_at) < 1 / 24.0),
               avg(julianday(f.created_at) - julianday(o.completed_at) > 1)
        FROM order_feedback f JOIN orders o USING (order_id)
        """,
    )
    assert 0.3 < within_hour < 0.8 and 0.01 < later_day < 0.2


def test_comments_name_a_dish_of_the_order_and_match_the_scores(db):
    found = rows(
        db,
        "SELECT feedback_id, order_id, menu_item_id, food_rating, price_rating, service_rating, "
        "comment FROM order_feedback WHERE comment IS NOT NULL",
    )
    assert 0.15 < len(found) / rows(db, "SELECT count(*) FROM order_feedback")[0][0] < 0.5
    dishes = dict(rows(db, "SELECT menu_item_id, name FROM menu_items"))
    lines = set(rows(db, "SELECT order_id, menu_item_id FROM order_items"))
    negative = _templates(NEGATIVE)
    positive = _templates(POSITIVE)
    for _, order_id, item, food, price, service, comment in found:
        if item is not None:
            assert (order_id, item) in lines and dishes[item] in comment
        text = comment if item is None else comment.replace(dishes[item], "{item}")
        if text in negative:
            assert min(food, price, service) <= 2
        if text in positive:
            assert max(food, price, service) == 5


def test_build_then_increment_equals_a_longer_build(tmp_path):
    advanced, longer = tmp_path / "advanced.sqlite", tmp_path / "longer.sqlite"
    write_database(advanced, _tables(OPS_WORLD))
    before = len(_dump(advanced))
    apply_increment(advanced, _tables(OPS_WORLD, 5), end_of_day_us(as_of(OPS_WORLD)))
    write_database(longer, _tables(OPS_WORLD, 5))
    assert _dump(advanced) == _dump(longer)
    assert len(_dump(longer)) > before


def test_the_planted_dish_and_store_are_rated_worst():
    config = WorldConfig()  # the default world: about 1,000 responses
    tl = simulate(config, config.first_as_of)
    truth = feedback_truth(tl, end_of_day_us(config.first_as_of))
    assert truth["responses"] > 800
    assert truth["worst_item_by_mean_food"] == PLANTED_ITEM
    assert truth["worst_store_by_mean_service"] == PLANTED_STORE
    item, store = truth["planted_item_food"], truth["planted_store_service"]
    assert item["mean_other_orders"] - item["mean"] > 0.7
    assert store["mean_other_stores"] - store["mean"] > 0.6
    # The figures are those of the table.
    table = order_feedback_table(tl, end_of_day_us(config.first_as_of)).columns
    assert truth["mean_rating"]["food"] == round(float(np.mean(table["food_rating"])), 4)
    assert truth["responses"] == table["feedback_id"].size


def _templates(sentiment: int) -> set[str]:
    return {
        text
        for (_, s), languages in COMMENTS.items()
        if s == sentiment
        for templates in languages
        for text in templates
    }
