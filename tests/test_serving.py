"""The serving copy on its own: what a publish writes, and what readers of the previous one see.

The copy under a running pipeline, read by a polling BI tool, is tested in test_end_to_end.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from regulars.serving import (
    Relation,
    ServingError,
    describe,
    publish,
    publish_postgres,
    serving_path,
)
from regulars.settings import Settings
from tests.postgres import postgres_server, server_binaries

ORDERS, STORES, NEVER_BUILT = (
    Relation("marts", "fct_orders"),
    Relation("marts", "dim_stores"),
    Relation("marts", "not_built_yet"),
)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "No PostgreSQL server here: install Debian's postgresql (`make test` does when run "
            "as root) for the serving copy's PostgreSQL tests."
        )
    with postgres_server(binaries) as url:
        yield url


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "regulars.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts")
        connection.execute(
            "create table marts.fct_orders as "
            "select range as order_id, (range * 1.5)::decimal(18, 2) as net_revenue from range(7)"
        )
        connection.execute("create table marts.dim_stores as select 'JKT-01' as store_code")
        connection.execute("create schema staging")
        connection.execute("create table staging.stg_secrets as select 'not for BI' as email")
    return path


def test_a_publish_copies_the_marts_it_is_given_and_says_which_run(warehouse: Path, tmp_path: Path):
    target = tmp_path / "serving" / "serving.duckdb"
    publication = publish(warehouse, target, [ORDERS, STORES, NEVER_BUILT], "run-1")

    assert publication.rows == {ORDERS: 7, STORES: 1}
    assert publication.missing == [NEVER_BUILT]
    with duckdb.connect(str(target), read_only=True) as serving:
        assert serving.execute(
            "select run_id, tables_published, rows_published from serving.published"
        ).fetchall() == [("run-1", 2, 8)]
        assert serving.execute(
            "select sum(net_revenue), typeof(any_value(net_revenue)) from marts.fct_orders"
        ).fetchone() == (31.5, "DECIMAL(18,2)")
        assert serving.execute("select * from published_tables order by 2").fetchall() == [
            ("marts", "dim_stores", 1),
            ("marts", "fct_orders", 7),
        ]
        schemas = {
            s
            for (s,) in serving.execute(
                "select distinct table_schema from information_schema.tables"
            ).fetchall()
        }
    # Only what was asked for: staging (and whatever else the warehouse holds) stays behind.
    assert schemas == {"marts", "main"}
    # Nothing of the draft is left beside the copy.
    assert sorted(p.name for p in target.parent.iterdir()) == ["serving.duckdb"]


def test_a_reader_of_the_previous_copy_keeps_it_and_the_next_reader_gets_the_new_one(
    warehouse: Path, tmp_path: Path
):
    target = tmp_path / "serving.duckdb"
    publish(warehouse, target, [ORDERS], "run-1")
    reader = duckdb.connect(str(target), read_only=True)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("insert into marts.fct_orders values (7, 100)")

    # The reader holds the file open: the publish neither waits for it nor fails on its lock.
    publish(warehouse, target, [ORDERS], "run-2")

    assert reader.execute("select run_id from published").fetchone() == ("run-1",)
    assert reader.execute("select count(*) from marts.fct_orders").fetchone() == (7,)
    reader.close()
    with duckdb.connect(str(target), read_only=True) as fresh:
        assert fresh.execute("select run_id from published").fetchone() == ("run-2",)
        assert fresh.execute("select count(*) from marts.fct_orders").fetchone() == (8,)


def test_the_copy_sits_beside_the_warehouse_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("REGULARS_SERVING_PATH", raising=False)
    assert serving_path(tmp_path / "w" / "regulars.duckdb") == tmp_path / "w" / "serving.duckdb"
    monkeypatch.setenv("REGULARS_SERVING_PATH", str(tmp_path / "bi" / "marts.duckdb"))
    assert serving_path(tmp_path / "w" / "regulars.duckdb") == tmp_path / "bi" / "marts.duckdb"


def test_the_summary_line_names_the_run_and_the_size(warehouse: Path, tmp_path: Path):
    target = tmp_path / "serving.duckdb"
    assert describe(target).startswith("Serving copy for BI: none yet")
    publish(warehouse, target, [ORDERS, STORES], "0123456789abcdef")
    assert f"{target} (2 marts, 8 rows, run 01234567, published " in describe(target)


def postgres_rows(url: str, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    connection.close()
    return rows


def test_a_publication_replaces_the_previous_one_in_postgresql_whole(
    warehouse: Path, tmp_path: Path, postgres_url: str
):
    copy = tmp_path / "serving.duckdb"
    publish(warehouse, copy, [ORDERS, STORES], "run-1")
    first = publish_postgres(copy, postgres_url, workdir=tmp_path)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("delete from marts.fct_orders where order_id >= 5")
    publish(warehouse, copy, [ORDERS], "run-2")

    second = publish_postgres(copy, postgres_url, workdir=tmp_path)

    assert first.rows == {"published": 1, "published_tables": 2, "fct_orders": 7, "dim_stores": 1}
    assert second.rows == {"published": 1, "published_tables": 1, "fct_orders": 5}
    assert postgres_rows(postgres_url, "select run_id from marts.published") == [("run-2",)]
    # The money keeps its exact type; dim_stores went with the publication that had it.
    assert postgres_rows(
        postgres_url,
        "select sum(net_revenue)::text, pg_typeof(min(net_revenue))::text from marts.fct_orders",
    ) == [("15.00", "numeric")]
    schemas = postgres_rows(
        postgres_url,
        "select schema_name from information_schema.schemata "
        "where schema_name like 'marts%' order by 1",
    )
    assert schemas == [("marts",)]
    assert postgres_rows(
        postgres_url,
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'dim_stores'",
    ) == [(0,)]


def numeric_sums(rows_of: callable, tables: list[str], columns: dict[str, list[str]]) -> dict:
    """Rows and the sum of every numeric column per table, the same SQL on both engines (each
    value to 4 places first, so a double sums alike whichever engine adds it)."""
    sums = {
        table: "".join(f", round(sum({column}::decimal(38, 4)), 2)" for column in columns[table])
        for table in tables
    }
    return {
        table: rows_of(f"select count(*){sums[table]} from marts.{table}")[0] for table in tables
    }


def test_the_marts_read_the_same_in_postgresql_and_a_reader_never_sees_a_mix(
    marts_world: Settings, tmp_path: Path, postgres_url: str
):
    """Every mart's rows and the sum of every numeric column equal DuckDB's, to the cent; a
    reader polling during the next publication sees one publication at a time."""
    copy = serving_path(marts_world.warehouse_path)
    publish_postgres(copy, postgres_url, workdir=tmp_path)
    with duckdb.connect(str(copy), read_only=True) as serving:
        tables = [
            t for (t,) in serving.execute("select table_name from published_tables").fetchall()
        ]
        columns = {
            table: [
                name
                for name, data_type in serving.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'marts' and table_name = ?",
                    [table],
                ).fetchall()
                if data_type.startswith(("DECIMAL", "INTEGER", "BIGINT", "DOUBLE", "HUGEINT"))
            ]
            for table in tables
        }
        in_duckdb = numeric_sums(lambda sql: serving.execute(sql).fetchall(), tables, columns)
    in_postgres = numeric_sums(lambda sql: postgres_rows(postgres_url, sql), tables, columns)
    assert "fct_orders" in tables and len(tables) >= 15
    assert in_postgres == in_duckdb

    # The next publication: a copy with half the orders, under another run id.
    smaller = tmp_path / "smaller.duckdb"
    shutil.copy(copy, smaller)
    with duckdb.connect(str(smaller)) as connection:
        connection.execute("delete from marts.fct_orders where order_id % 2 = 0")
        connection.execute("update published set run_id = 'smaller'")
        connection.execute(
            "update published_tables set row_count = (select count(*) from marts.fct_orders) "
            "where table_name = 'fct_orders'"
        )
    reads, stop = [], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                reads.append(
                    postgres_rows(
                        postgres_url,
                        "select (select run_id from marts.published), "
                        "(select row_count from marts.published_tables "
                        "where table_name = 'fct_orders'), "
                        "(select count(*) from marts.fct_orders)",
                    )[0]
                )
            except Exception as error:  # every failure is what the test counts
                reads.append(("failed", str(error), None))
            time.sleep(0.05)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        publish_postgres(smaller, postgres_url, workdir=tmp_path)
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join()
    failed = [read for read in reads if read[0] == "failed"]
    assert not failed, f"{len(failed)} of {len(reads)} reads failed, the first: {failed[0]}"
    assert all(published == counted for _, published, counted in reads), reads
    runs = [run for run, _, _ in reads]
    assert runs[-1] == "smaller" and len(set(runs)) == 2


def test_an_unreachable_postgresql_is_named_without_its_password(warehouse: Path, tmp_path: Path):
    copy = tmp_path / "serving.duckdb"
    publish(warehouse, copy, [ORDERS], "run-1")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://bi:s3cret@127.0.0.1:{port}/marts"  # pragma: allowlist secret
    with pytest.raises(ServingError) as raised:
        publish_postgres(copy, url, workdir=tmp_path)
    message = str(raised.value)
    assert f"PostgreSQL at postgresql://127.0.0.1:{port}/marts: " in message
    assert "REGULARS_SERVING_POSTGRES" in message and "s3cret" not in message
