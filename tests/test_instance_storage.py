"""Dagster's SQLite files under DAGSTER_HOME are written without a disk sync per event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text

from orchestration.instance_storage import relax_instance_storage

FULL, NORMAL = 2, 1


def synchronous_and_wal(database: Path) -> tuple[int, bool]:
    """A write as Dagster makes one: an engine and a connection of its own on a WAL file."""
    with sqlite3.connect(database) as setup:
        setup.execute("pragma journal_mode = wal")
        setup.execute("create table if not exists t (x integer)")
    setup.close()
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        connection.execute(text("insert into t values (1)"))
        connection.commit()
        synchronous = connection.execute(text("pragma synchronous")).scalar()
    engine.dispose()
    # Closing a file's last connection checkpoints the WAL and deletes it.
    return synchronous, database.with_name(database.name + "-wal").exists()


def test_only_the_dagster_home_files_are_relaxed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    relax_instance_storage()

    assert synchronous_and_wal(home / "events.db") == (NORMAL, True)
    # Any other SQLite file (the ordering platform's, read by dlt) keeps SQLite's defaults.
    assert synchronous_and_wal(tmp_path / "ordering.sqlite") == (FULL, False)


def test_a_run_on_the_relaxed_instance_keeps_its_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    relax_instance_storage()

    @dg.asset
    def dish() -> int:
        return 1

    with dg.DagsterInstance.get() as instance:
        for _ in range(3):
            assert dg.materialize([dish], instance=instance).success
        records = instance.fetch_materializations(dish.key, limit=10).records
        assert len(records) == 3
