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
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

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
