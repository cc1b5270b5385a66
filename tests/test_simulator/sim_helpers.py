"""Helpers shared by the simulator tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from simulator import WorldConfig

TABLES = ("stores", "menu_items", "customers", "orders", "order_items")
TINY = WorldConfig(seed=7, customers=700, days=60, start_date=date(2025, 1, 1), provinces=3)


def dump_tables(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order: what "same DB content" means here."""
    conn = sqlite3.connect(db)
    try:
        return {
            name: conn.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall() for name in TABLES
        }
    finally:
        conn.close()


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
