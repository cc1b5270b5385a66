"""What Dagster reads after dbt on Spark: views in the warehouse file over the tables' Parquet
files, in Spark's Hive layout (regulars.warehouse.expose_spark_tables), and the settings that
say where they are. Spark itself is not needed: DuckDB writes the files as Spark lays them out.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.dbt import built_tables
from regulars.settings import load_settings
from regulars.warehouse import BuiltTable, expose_spark_tables, spark_table_location
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
    # An empty partitioned table, as Spark leaves it: a folder with no Parquet file at all.
    (warehouse / "marts.db" / "service_levels").mkdir(parents=True)
    (warehouse / "marts.db" / "service_levels" / "_SUCCESS").touch()
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        # What dbt on DuckDB left when this warehouse was last built there.
        connection.execute("create schema marts")
        connection.execute("create table marts.dim_customers as select 1 as customer_id")

    declared = {"call_date": "date", "p95_latency_ms": "decimal(18,2)", "endpoint": "string"}
    skipped = expose_spark_tables(
        settings,
        [
            BuiltTable("marts", "dim_customers"),
            BuiltTable("marts", "fct_sessions"),
            BuiltTable("marts", "never_written"),
            BuiltTable("marts", "service_levels", declared),
        ],
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
        assert kinds == {"dim_customers": "VIEW", "fct_sessions": "VIEW", "service_levels": "VIEW"}
        # The empty one has the contract's columns and types, so its readers' queries run.
        assert connection.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'service_levels' order by ordinal_position"
        ).fetchall() == [
            ("call_date", "DATE"),
            ("p95_latency_ms", "DECIMAL(18,2)"),
            ("endpoint", "VARCHAR"),
        ]
        assert connection.execute("select count(*) from marts.service_levels").fetchone() == (0,)
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


def test_what_to_count_and_expose_is_what_the_invocation_built() -> None:
    """The invocation's own manifest says what each model was on the engine that built it; the
    one Dagster loaded may have been parsed for the other engine."""
    manifest = {
        "nodes": {
            "model.regulars.stg_ordering__customers": {
                "name": "stg_ordering__customers",
                "alias": "stg_ordering__customers",
                "schema": "staging",
                "config": {"materialized": "table"},
                "columns": {"customer_id": {"data_type": None}},
            },
            "model.regulars.fct_sessions": {
                "name": "fct_sessions",
                "alias": "fct_sessions",
                "schema": "marts",
                "config": {"materialized": "incremental"},
                "columns": {
                    "session_id": {"data_type": "string"},
                    "session_date": {"data_type": "date"},
                },
            },
            "model.regulars.int_orders_attributed": {
                "name": "int_orders_attributed",
                "schema": "intermediate",
                "config": {"materialized": "view"},
                "columns": {},
            },
            "seed.regulars.province_targets": {
                "name": "province_targets",
                "alias": "province_targets",
                "schema": "seeds",
                "config": {"materialized": "seed"},
                "columns": {},
            },
            "test.regulars.not_null_fct_sessions_session_id": {
                "name": "not_null_fct_sessions_session_id",
                "schema": "tests",
                "config": {"materialized": "test"},
            },
        }
    }

    built = built_tables(manifest)

    assert built == {
        # A column without a type leaves the shape unknown: no partial list.
        "model.regulars.stg_ordering__customers": BuiltTable("staging", "stg_ordering__customers"),
        "model.regulars.fct_sessions": BuiltTable(
            "marts", "fct_sessions", {"session_id": "string", "session_date": "date"}
        ),
        "seed.regulars.province_targets": BuiltTable("seeds", "province_targets"),
    }
