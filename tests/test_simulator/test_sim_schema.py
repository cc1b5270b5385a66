"""The generated database honours schema.sql, its keys and SQLAlchemy's DateTime format."""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

SCHEMA = Path(__file__).parents[2] / "simulator" / "schema.sql"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")


def _reflect(url: str) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(sa.create_engine(url))
    return metadata


def _describe(metadata: sa.MetaData) -> dict:
    return {
        name: {
            "columns": [(c.name, str(c.type), c.nullable) for c in table.columns],
            "primary_key": [c.name for c in table.primary_key],
            "foreign_keys": sorted(
                (fk.parent.name, fk.column.table.name, fk.column.name) for fk in table.foreign_keys
            ),
            "indexes": sorted(index.name for index in table.indexes),
        }
        for name, table in metadata.tables.items()
    }


def test_tables_and_columns_match_schema_sql(tiny_sim, tmp_path):
    reference = tmp_path / "reference.sqlite"
    conn = sqlite3.connect(reference)
    conn.executescript(SCHEMA.read_text())
    conn.close()
    expected = _describe(_reflect(f"sqlite:///{reference}"))
    assert set(expected) == {
        "stores",
        "menu_items",
        "customers",
        "orders",
        "order_items",
        "order_feedback",
    }
    assert _describe(_reflect(f"sqlite:///{tiny_sim.ordering_db}")) == expected


def test_sqlalchemy_reads_timestamps_and_dates(tiny_sim):
    engine = sa.create_engine(f"sqlite:///{tiny_sim.ordering_db}")
    metadata = sa.MetaData()
    orders = sa.Table("orders", metadata, autoload_with=engine)
    stores = sa.Table("stores", metadata, autoload_with=engine)
    with engine.connect() as conn:
        placed, completed, updated = conn.execute(
            sa.select(orders.c.placed_at, orders.c.completed_at, orders.c.updated_at).limit(1)
        ).one()
        opened_on = conn.execute(sa.select(stores.c.opened_on).limit(1)).scalar_one()
    assert isinstance(placed, datetime) and isinstance(completed, datetime)
    assert placed.microsecond != 0 and updated >= placed
    assert isinstance(opened_on, date)


def test_every_timestamp_has_the_microsecond_format(query):
    columns = {
        "stores": ["created_at", "updated_at"],
        "menu_items": ["created_at", "updated_at", "deleted_at"],
        "customers": ["signed_up_at", "created_at", "updated_at", "deleted_at"],
        "orders": ["placed_at", "completed_at", "cancelled_at", "refunded_at", "updated_at"],
        "order_items": ["created_at", "updated_at"],
    }
    for table, names in columns.items():
        for name in names:
            values = [v for (v,) in query(f"SELECT {name} FROM {table}") if v is not None]
            assert all(TIMESTAMP.match(v) for v in values), (table, name)
    assert all(
        re.match(r"^\d{4}-\d{2}-\d{2}$", d) for (d,) in query("SELECT opened_on FROM stores")
    )


def test_primary_keys_unique_and_foreign_keys_resolve(query):
    for table, key in [
        ("stores", "store_id"),
        ("menu_items", "menu_item_id"),
        ("customers", "customer_id"),
        ("orders", "order_id"),
        ("order_items", "order_item_id"),
    ]:
        [(rows, distinct)] = query(f"SELECT count(*), count(DISTINCT {key}) FROM {table}")
        assert rows == distinct > 0, table
    assert query("PRAGMA foreign_key_check") == []
    orphans = query(
        """
        SELECT count(*) FROM order_items i
        LEFT JOIN orders o USING (order_id) LEFT JOIN menu_items m USING (menu_item_id)
        WHERE o.order_id IS NULL OR m.menu_item_id IS NULL
        """
    )
    assert orphans == [(0,)]
    [(unhomed,)] = query(
        "SELECT count(*) FROM customers c LEFT JOIN stores s ON s.store_id = c.home_store_id "
        "WHERE s.store_id IS NULL"
    )
    assert unhomed == 0
