"""Writes snapshots of the ordering DB to SQLite: a fresh database, or one day's increment.

The schema comes from schema.sql unchanged; each write is one transaction of executemany calls.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from simulator.model.snapshot import Table

SCHEMA = Path(__file__).parents[1] / "schema.sql"


@contextmanager
def _transaction(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # cheap proof that parents come first
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: index pages stay in memory
        conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, table: Table, mask: np.ndarray | None = None) -> int:
    names = list(table.columns)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    conn.executemany(sql, table.rows(mask))
    return len(table) if mask is None else int(mask.sum())


def _update(conn: sqlite3.Connection, table: Table, mask: np.ndarray) -> int:
    names = [name for name in table.columns if name != table.primary_key]
    assignments = ", ".join(f"{name} = ?" for name in names)
    sql = f"UPDATE {table.name} SET {assignments} WHERE {table.primary_key} = ?"
    conn.executemany(sql, table.rows(mask, [*names, table.primary_key]))
    return int(mask.sum())


def write_database(path: Path, tables: dict[str, Table]) -> None:
    """Create a new database at `path` (replacing any) holding `tables`."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(SCHEMA.read_text())
    finally:
        conn.close()
    with _transaction(tmp) as conn:
        for table in tables.values():
            _insert(conn, table)
    tmp.replace(path)


def table_counts(path: Path, names: list[str]) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}
    finally:
        conn.close()


def apply_increment(path: Path, tables: dict[str, Table], since_us: int) -> dict[str, dict]:
    """Bring a database holding the snapshot up to `since_us` to `tables`: insert the rows created
    after since_us, update the rows created before it but changed after it, touch nothing else."""
    changes = {}
    with _transaction(path) as conn:
        for table in tables.values():
            new = table.created_us > since_us
            changed = (table.updated_us > since_us) & ~new
            changes[table.name] = {
                "inserted": _insert(conn, table, new),
                "updated": _update(conn, table, changed),
            }
    return changes
