"""Dagster's SQLite files under DAGSTER_HOME are written without a disk sync per event, and its
event log without a new engine and connection per write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log import SqliteEventLogStorage
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from orchestration.instance_storage import PooledSqliteEventLogStorage, relax_instance_storage
from regulars.settings import prepare_dagster_home

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


def test_the_event_log_regulars_configures_reuses_its_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    prepare_dagster_home(home)
    event_log = home / "history" / "runs"

    checks = [dg.AssetCheckSpec(f"check_{number}", asset="dish") for number in range(50)]

    @dg.asset(check_specs=checks)
    def dish():
        yield dg.Output(1)
        for check in checks:
            yield dg.AssetCheckResult(check_name=check.name, passed=True)

    opened: list[str] = []

    def count(dbapi_connection, _record) -> None:
        rows = dbapi_connection.execute("pragma database_list").fetchall()
        path = next(file for _, name, file in rows if name == "main")
        if Path(path).parent == event_log:
            opened.append(Path(path).name)

    event.listen(Engine, "connect", count)
    try:
        with dg.DagsterInstance.get() as instance:
            assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
            run_id = dg.materialize([dish], instance=instance).run_id
            written = len(instance.get_records_for_run(run_id, limit=10_000).records)
    finally:
        event.remove(Engine, "connect", count)

    # 50 checks: each planned, output and evaluated, beside the materialisation and the steps.
    assert written > 150
    # Dagster's own storage opens two or three connections per event (over 300 here); kept
    # engines open a fixed few, to create the files and look for their tables (9 here).
    assert len(opened) < 20, opened

    # Dagster's default storage reads every event from the same files.
    default = SqliteEventLogStorage(str(event_log))
    assert len(default.get_records_for_run(run_id, limit=10_000).records) == written
    assert default.get_latest_materialization_events([dish.key])[dish.key] is not None
