"""What Dagster reads after dbt on Spark: views in the warehouse file over the tables' Parquet
files, in Spark's Hive layout (regulars.warehouse.expose_spark_tables), and the settings that
say where they are. Spark itself is not needed: DuckDB writes the files as Spark lays them out.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from regulars.settings import load_settings
from regulars.warehouse import expose_spark_tables, spark_table_location
from tests.conftest import point_at


def _spark_table(warehouse: Path, schema: str, table: str, sql: str, partition: str = "") -> None:
    """`sql`'s rows as Spark writes a table: `<warehouse>/<schema>.db/<table>/part-*.parquet`,
    with a `<column>=<value>/` folder per value of its partition column, if any."""
    location = warehouse / f"{schema}.db" / table
    location.mkdir(parents=True)
    with duckdb.connect() as connection:
        if partition:
            connection.execute(
                f"copy ({sql}) to '{location}' (format parquet, partition_by ({partition}))"
            )
        else:
            connection.execute(f"copy ({sql}) to '{location}/part-00000.parquet' (format parquet)")
        (location / "_SUCCESS").touch()


def test_spark_tables_become_views_that_replace_what_duckdb_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGULARS_ENGINE", "spark")
    settings = point_at(monkeypatch, tmp_path)
    warehouse = Path(settings.spark_warehouse)
    assert warehouse == tmp_path / "var" / "spark" / "warehouse"
    _spark_table(warehouse, "marts", "dim_customers", "select range as customer_id from range(5)")
    _spark_table(
        warehouse,
        "marts",
        "fct_sessions",
        "select range as session_id, date '2025-03-01' + cast(range % 3 as integer) as session_date"
        " from range(7)",
        partition="session_date",
    )
    (warehouse / "marts.db" / "never_written").mkdir(parents=True)
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        # What dbt on DuckDB left when this warehouse was last built there.
        connection.execute("create schema marts")
        connection.execute("create table marts.dim_customers as select 1 as customer_id")

    skipped = expose_spark_tables(
        settings,
        [("marts", "dim_customers"), ("marts", "fct_sessions"), ("marts", "never_written")],
    )

    assert list(skipped) == ["marts.never_written"]
    assert str(warehouse / "marts.db" / "never_written") in skipped["marts.never_written"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        kinds = dict(
            connection.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'marts'"
            ).fetchall()
        )
        assert kinds == {"dim_customers": "VIEW", "fct_sessions": "VIEW"}
        assert connection.execute(
            "select sum(customer_id) from marts.dim_customers"
        ).fetchone() == (10,)
        # The partition column comes back from the folders' names, as a date.
        assert connection.execute(
            "select session_date, count(*) from marts.fct_sessions group by 1 order by 1"
        ).fetchall() == [
            (date(2025, 3, 1), 3),
            (date(2025, 3, 2), 2),
            (date(2025, 3, 3), 2),
        ]


def test_object_storage_tables_are_read_where_duckdb_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = point_at(monkeypatch, tmp_path)
    monkeypatch.setenv("REGULARS_SPARK_WAREHOUSE", "s3a://chain-lake/spark/")
    assert spark_table_location(settings, "Marts", "Dim_Customers") == (
        "s3://chain-lake/spark/marts.db/dim_customers"
    )


def test_spark_reads_the_parquet_lake_by_default_and_refuses_the_duckdb_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, tmp_path)
    monkeypatch.setenv("REGULARS_ENGINE", "spark")
    settings = load_settings()
    assert (settings.destination, settings.engine) == ("filesystem", "spark")
    monkeypatch.setenv("REGULARS_DESTINATION", "duckdb")
    with pytest.raises(ValueError, match="unset REGULARS_DESTINATION, or set it to filesystem"):
        _ = load_settings().engine
    monkeypatch.setenv("REGULARS_ENGINE", "duckdb")
    assert load_settings().destination == "duckdb"
