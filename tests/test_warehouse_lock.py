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
    # Half the configured 100MB: this process holds Python's data beside DuckDB; dbt's has it all.
    assert first == second == ("47.6 MiB", str(tmp_path / "spill"))

    credentials = warehouse_destination(regulars_env).config_params["credentials"]
    assert credentials.global_config["memory_limit"] == "50MB"
    monkeypatch.setenv("REGULARS_DUCKDB_MEMORY_LIMIT", "1500MiB")
    assert regulars_env.duckdb_steps_memory_limit == "750MiB"
    monkeypatch.setenv("REGULARS_DUCKDB_MEMORY_LIMIT", " 2.5GB ")
    assert regulars_env.duckdb_steps_memory_limit == "1.25GB"

    monkeypatch.setenv("REGULARS_DUCKDB_MEMORY_LIMIT", "4 gigs")
    with pytest.raises(ValueError, match=r"REGULARS_DUCKDB_MEMORY_LIMIT='4 gigs'.*4GB or 1500MiB"):
        warehouse.connect(regulars_env)


def test_dbt_keeps_building_after_a_model_spills(tmp_path: Path) -> None:
    """dbt on the project's own profile, with a memory limit a model's sort exceeds: it spills to
    the configured folder, and the models after it still build under the same bound (a setting
    applied again per cursor fails once DuckDB has spilled)."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: spills\nversion: '1.0'\nprofile: regulars\n"
        "models:\n  spills:\n    +materialized: table\n"
    )
    # About 64 MB to sort under a 40 MB limit: it spills (DuckDB removes its spill files and
    # folder when it closes, so nothing is left to look at; with the limit as a per-cursor
    # `settings`, this build failed at `after_the_spill`).
    (project / "models" / "sorted_draws.sql").write_text(
        "select range as n, random() as draw from range(4000000) order by draw"
    )
    (project / "models" / "after_the_spill.sql").write_text(
        "select count(*) as draws, current_setting('memory_limit') as memory_limit, "
        "current_setting('temp_directory') as temp_directory from {{ ref('sorted_draws') }}"
    )
    warehouse = tmp_path / "warehouse.duckdb"
    spill = tmp_path / "spill"
    dbt = Path(sys.executable).with_name("dbt")
    profiles = Path(__file__).resolve().parent.parent / "dbt_project"
    environment = {
        "PATH": str(dbt.parent),
        "HOME": str(tmp_path),
        "REGULARS_ENGINE": "duckdb",
        "REGULARS_WAREHOUSE": str(warehouse),
        "REGULARS_DUCKDB_MEMORY_LIMIT": "40MB",
        "REGULARS_DUCKDB_TEMP_DIRECTORY": str(spill),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }

    built = subprocess.run(
        [str(dbt), "run", "--profiles-dir", str(profiles), "--project-dir", str(project)],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert built.returncode == 0, built.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("select * from main.after_the_spill").fetchone() == (
            4_000_000,
            "38.1 MiB",
            str(spill),
        )
