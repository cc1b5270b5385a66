"""Dagster's SQLite instance storage without two disk syncs per event.

Dagster's default storage keeps runs, the event log and schedules in SQLite files under
DAGSTER_HOME, in WAL mode. It opens a connection for every event it writes and closes it after:
each commit is synced to disk (SQLite's `synchronous = FULL`), and each close of the file's last
connection checkpoints the WAL into the database and syncs again. A materialisation of the
demo writes thousands of events (every dbt test is an asset check, every day partition a
materialisation); on this machine that was about 60 s of an 80 s run's Dagster overhead at 300
guests (bench/bench_dagster_overhead.py).

So, for the SQLite files of this Dagster home only, and in processes that load Regulars' code:
- `synchronous = NORMAL`, which in WAL mode syncs at checkpoints rather than at every commit.
  SQLite's documentation: the database stays consistent; a power loss (not a crash of the
  process) may lose the last events written before it, which a re-run writes again;
- one idle connection kept open to each file, so that closing Dagster's per-event connection
  no longer checkpoints; SQLite still checkpoints whenever the WAL reaches 1,000 pages.

An idle connection holds no lock in WAL mode: the UI, the daemon and other runs read and write
the files as before. A deployment on PostgreSQL storage (dagster-postgres) is not touched.

The event log also keeps its engines (PooledSqliteEventLogStorage, which the instance config
Regulars writes names). Dagster builds a SQLAlchemy engine for every connection it opens, a few
per event, so each insert is compiled again and each connection opened and closed; kept, an
engine reuses its compiled statements and its connection. With both, the same 914 events of a
run (300 asset checks) took 2.8 ms an event instead of 6.2.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

# A run's events have a file of their own: a long-lived process (a code server) keeps only the
# newest few open, the runs file, the index and schedules among them as they are written often.
KEPT_AT_MOST = 16
_kept: dict[str, sqlite3.Connection] = {}
_lock = threading.Lock()
_installed = False


def relax_instance_storage() -> None:
    """Apply the settings above to every SQLite connection under DAGSTER_HOME from now on."""
    global _installed
    with _lock:
        if _installed:
            return
        event.listen(Engine, "connect", _on_connect)
        _installed = True


def _dagster_home() -> Path | None:
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).resolve() if home else None


def _on_connect(dbapi_connection, _record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    home = _dagster_home()
    if home is None:
        return
    rows = dbapi_connection.execute("pragma database_list").fetchall()
    path = next((file for _, name, file in rows if name == "main"), "")
    if not path or not Path(path).resolve().is_relative_to(home):
        return
    dbapi_connection.execute("pragma synchronous = normal")
    with _lock:
        kept = _kept.pop(path, None) or sqlite3.connect(path, check_same_thread=False)
        # A connection counts as open on the WAL once it has read in WAL mode; a file Dagster
        # creates switches to WAL after this first connect, so read again each time (cheap).
        kept.execute("pragma schema_version").fetchone()
        # Newest used last: the oldest goes first. check_same_thread is off because it is only
        # held, read under the lock, and closed by whichever thread ends the process or evicts it.
        _kept[path] = kept
        if len(_kept) > KEPT_AT_MOST:
            _kept.pop(next(iter(_kept))).close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (one file per run and an index), each file's engine and
    connection kept for the next write instead of built and closed around every one.

    Configured in the instance's dagster.yaml by the Dagster home, as Dagster's default storage
    is: the files are where Dagster's own SQLite storage keeps them, so either class reads what
    the other wrote. Subclassing a storage is Dagster's documented way to change one; `_connect`
    is the one method that opens connections, and the Dagster version is pinned.
    """

    def __init__(self, base_dir: str, inst_data=None):
        # Before Dagster's __init__, which may connect to create the index.
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables_found: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        # Where Dagster's default SQLite storage keeps a home's event log.
        base_dir = os.path.join(config_value["dagster_home"], "history", "runs", "")
        return cls(base_dir, inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():
            # A forked child must not share its parent's open connections: it starts its own.
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.pop(shard, None) or create_engine(
            self.conn_string_for_shard(shard),
            pool_size=1,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        # Newest used last: a long-lived process (the UI's, the daemon's) keeps the index and
        # the few runs it last wrote or read open, and closes the rest.
        self._engines[shard] = engine
        if len(self._engines) > KEPT_AT_MOST:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def has_table(self, table_name: str) -> bool:
        # Asked before every asset check event is stored, each time on an engine of its own. A
        # table, once there, stays: Dagster's migrations add tables and never drop one.
        if table_name not in self._tables_found and super().has_table(table_name):
            self._tables_found.add(table_name)
        return table_name in self._tables_found

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        # Open connections would go on writing to the files wipe deletes.
        self._close_engines()
        super().wipe()

    def dispose(self) -> None:
        self._close_engines()
        super().dispose()
