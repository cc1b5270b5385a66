"""Waiting for the warehouse file when another process holds it, and saying which one.

DuckDB takes one writer process per file, and a writer excludes readers of other processes. A
program left open on the warehouse (a notebook, the DuckDB CLI, a BI tool pointed at it rather
than at the serving copy) makes every warehouse step fail; dlt's error for it blames the
credentials or the network, dbt's is a page of log. So each step first waits here, with
exponential back-off, and if the file stays locked it fails with one paragraph naming the
process (pid and command line) and what to do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from regulars.settings import Settings

# 1 + 2 + 4 + 8 + 16 + 30 + 30 s: a minute and a half, long enough for a dashboard's query or a
# short script to finish, short enough that a forgotten notebook is reported within a run.
ATTEMPTS = 8
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0

_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class WarehouseLocked(RuntimeError):
    """The warehouse stayed locked by another process for every attempt."""


def holder(error: duckdb.Error) -> str | None:
    """`PID 123 (python notebook.py)` from DuckDB's lock error; None if it is not one."""
    found = _HOLDER.search(str(error))
    if not found:
        return None
    pid = found["pid"]
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    except OSError:  # gone already, or not Linux
        command = found["program"]
    return f"PID {pid} ({command[:200]})"


def wait_for_warehouse(
    path: Path,
    read_only: bool = False,
    attempts: int = ATTEMPTS,
    first_delay: float = FIRST_DELAY_SECONDS,
    log: Callable[[str], None] | None = None,
) -> None:
    """Return once this process can open `path` (for writing unless `read_only`)."""
    if not path.exists():
        return  # the first run creates it
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            duckdb.connect(str(path), read_only=read_only).close()
            return
        except duckdb.ConnectionException:
            # This process has the file open already, in the other mode: it holds the lock, so
            # no other process can.
            return
        except duckdb.IOException as error:
            held_by = holder(error)
            if held_by is None:
                raise
            if attempt == attempts:
                raise WarehouseLocked(
                    f"The warehouse {path} is locked by {held_by}, still after {attempts} tries "
                    f"over {_waited(first_delay, attempts):.0f} s. Close that program's "
                    "connection (BI tools and notebooks should read the serving copy, "
                    "warehouse/serving.duckdb, instead), or stop it with `kill <pid>`, then run "
                    "again."
                ) from None
            if log is not None:
                log(f"The warehouse is locked by {held_by}; trying again in {delay:.0f} s.")
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)


def connect(settings: Settings, path: Path | None = None, read_only: bool = False):
    """A DuckDB connection to the warehouse (or `path`) within the memory bound of Regulars' own
    processes (Settings.duckdb_steps_memory_limit).

    The settings are SET after connecting, not passed to `duckdb.connect`: DuckDB refuses a second
    connection of one process to a file opened with another config (dlt opens it without).
    """
    connection = duckdb.connect(str(path or settings.warehouse_path), read_only=read_only)
    try:
        connection.execute(f"set memory_limit = '{settings.duckdb_steps_memory_limit}'")
        spill = str(settings.duckdb_temp_directory)
        (current,) = connection.execute("select current_setting('temp_directory')").fetchone()
        # DuckDB cannot switch once the database has spilled, even to the same folder.
        if current != spill:
            settings.duckdb_temp_directory.mkdir(parents=True, exist_ok=True)
            connection.execute("set temp_directory = '" + spill.replace("'", "''") + "'")
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def kept_open(settings: Settings) -> Iterator[None]:
    """Keep the warehouse database open in this process while the block runs.

    DuckDB opens a file once per process, shares it between that process's connections and
    closes it, with a checkpoint, when the last of them closes. dlt connects and disconnects for
    each of its operations (a dozen in a small load), so a step that loads with dlt opened and
    closed the whole database each time: a one-row load into the warehouse of a 100,000-guest
    year took 0.48 s, 0.13 s with the file held open around it. Held for one step, not the run:
    dbt's process needs the file between steps, and a held database keeps its memory.
    """
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(settings.warehouse_path))
    try:
        yield
    finally:
        connection.close()


def _waited(first_delay: float, attempts: int) -> float:
    return sum(min(first_delay * 2**n, MAX_DELAY_SECONDS) for n in range(attempts - 1))


def spark_table_location(settings: Settings, schema: str, table: str) -> str:
    """Where Spark keeps a managed table: `<warehouse>/<schema>.db/<table>`, its Hive layout."""
    root = settings.spark_warehouse
    # Hadoop's S3 connector is `s3a://`; DuckDB's (httpfs) is `s3://`, the same objects.
    if root.startswith("s3a://"):
        root = "s3://" + root.removeprefix("s3a://")
    return f"{root}/{schema.lower()}.db/{table.lower()}"


@dataclass(frozen=True)
class BuiltTable:
    """A table dbt built, and the column types its model declares (its contract), in order:
    empty when the model declares none."""

    schema: str
    table: str
    declared: Mapping[str, str] = field(default_factory=dict)

    @property
    def relation(self) -> tuple[str, str]:
        return self.schema, self.table


def expose_spark_tables(settings: Settings, tables: Iterable[BuiltTable]) -> dict[str, str]:
    """Views in the warehouse file over the Parquet files of tables dbt built on Spark.

    Everything after dbt (row counts, the fits' figures, audiences, the serving copy) reads the
    warehouse file with DuckDB. On Spark the marts are Parquet files in Spark's warehouse: a
    view `schema.table` over each table's files makes them readable there as they are, with no
    copy and no Spark session in Dagster's process. A table DuckDB built there before (the
    engine changed) gives way to the view. Returns the tables that got no view, with why.

    Spark writes an empty unpartitioned table as one Parquet file with its schema, but an empty
    partitioned one (a chain without the channel that feeds it) as a folder with no file at
    all. Such a table becomes an empty view of its declared columns and types; without a
    contract there is nothing to read its columns from, and it is reported.
    """
    skipped: dict[str, str] = {}
    connection = connect(settings)
    try:
        kinds = dict(
            connection.execute(
                "select table_schema || '.' || table_name, table_type"
                " from information_schema.tables where table_catalog = current_database()"
            ).fetchall()
        )
        for built in tables:
            schema, table = built.schema, built.table
            name = f'"{schema}"."{table}"'
            files = f"{spark_table_location(settings, schema, table)}/**/*.parquet"
            connection.execute("begin")
            try:
                [(found,)] = connection.execute("select count(*) from glob(?)", [files]).fetchall()
                if found:
                    # hive_partitioning: an insert_overwrite table's partition column is in its
                    # folders' names (`event_date=2025-03-01/`), as Spark wrote it.
                    query = (
                        f"select * from read_parquet('{_quoted(files)}', hive_partitioning = true)"
                    )
                elif built.declared:
                    query = _empty_relation(built.declared)
                else:
                    raise LookupError(
                        f"no Parquet file under {files}, and the model declares no column "
                        "types (a contract) to make an empty view of"
                    )
                connection.execute(f'create schema if not exists "{schema}"')
                if kinds.get(f"{schema}.{table}") == "BASE TABLE":
                    connection.execute(f"drop table {name}")
                connection.execute(f"create or replace view {name} as {query}")
                connection.execute("commit")
            except (duckdb.Error, LookupError) as error:
                connection.execute("rollback")
                skipped[f"{schema}.{table}"] = (
                    str(error) if isinstance(error, LookupError) else f"{files}: {error}"
                )
    finally:
        connection.close()
    return skipped


def _empty_relation(declared: Mapping[str, str]) -> str:
    # Spark's type names that contracts use (string, bigint, decimal(18,2), timestamp, …) are
    # DuckDB type names too; one that is not fails here and is reported with the table.
    columns = ", ".join(
        f'cast(null as {data_type}) as "{column}"' for column, data_type in declared.items()
    )
    return f"select {columns} where false"


def _quoted(text: str) -> str:
    return text.replace("'", "''")
