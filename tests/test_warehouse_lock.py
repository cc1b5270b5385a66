"""Warehouse steps wait for a lock another process holds, and name it when it stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from regulars.warehouse import WarehouseLocked, wait_for_warehouse
from tests import processes


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process with the file open for writing, for `seconds`; started once it holds it."""
    script = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
        "print('holding', flush=True); time.sleep(float(sys.argv[2]))"
    )
    holder = processes.start(
        [sys.executable, "-c", script, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "regulars.duckdb"
    duckdb.connect(str(path)).close()
    return path


def test_a_step_waits_while_another_process_holds_the_file_then_goes_on(warehouse: Path):
    holder = hold(warehouse, 1.5)
    said: list[str] = []
    try:
        wait_for_warehouse(warehouse, attempts=6, first_delay=0.5, log=said.append)
        # The lock goes as the holder closes its connection: it ends by itself, not killed.
        assert holder.wait(timeout=30) == 0
    finally:
        processes.stop(holder)
    assert 1 <= len(said) <= 4
    assert f"locked by PID {holder.pid} (" in said[0]


def test_a_lock_that_stays_is_reported_with_the_process_holding_it(warehouse: Path):
    holder = hold(warehouse, 60)
    said: list[str] = []
    try:
        with pytest.raises(WarehouseLocked) as raised:
            wait_for_warehouse(
                warehouse, read_only=True, attempts=3, first_delay=0.2, log=said.append
            )
    finally:
        processes.stop(holder)
    message = str(raised.value)
    assert f"locked by PID {holder.pid} ({sys.executable} -c import duckdb" in message
    assert "still after 3 tries" in message and "serving.duckdb" in message
    assert len(said) == 2  # two waits (0.2 s, then 0.4 s) between the three tries


def test_other_errors_are_not_taken_for_a_lock(tmp_path: Path):
    not_duckdb = tmp_path / "regulars.duckdb"
    not_duckdb.write_text("this is not a database")
    with pytest.raises(duckdb.Error):
        wait_for_warehouse(not_duckdb, attempts=2, first_delay=0.1)


def test_connections_hold_the_memory_bound_and_spill_where_settings_say(
    regulars_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from ingestion.pipelines import warehouse_destination
    from regulars import warehouse

    monkeypatch.setenv("REGULARS_DUCKDB_MEMORY_LIMIT", "100MB")
    monkeypatch.setenv("REGULARS_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    regulars_env.warehouse_path.parent.mkdir(parents=True)
    settings_of = "select current_setting('memory_limit'), current_setting('temp_directory')"
    with warehouse.connect(regulars_env) as connection:
        first = connection.execute(settings_of).fetchone()
        # A second connection of this process shares the database: the settings hold there too.
        with warehouse.connect(regulars_env) as again:
            second = again.execute(settings_of).fetchone()
    assert first == second == ("95.3 MiB", str(tmp_path / "spill"))

    credentials = warehouse_destination(regulars_env).config_params["credentials"]
    assert credentials.global_config["memory_limit"] == "100MB"

    monkeypatch.setenv("REGULARS_DUCKDB_MEMORY_LIMIT", "4 gigs")
    with pytest.raises(ValueError, match=r"REGULARS_DUCKDB_MEMORY_LIMIT='4 gigs'.*4GB or 1500MiB"):
        warehouse.connect(regulars_env)
