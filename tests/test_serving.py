"""The serving copy on its own: what a publish writes, and what readers of the previous one see.

The copy under a running pipeline, read by a polling BI tool, is tested in test_end_to_end.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from regulars.serving import Relation, describe, publish, serving_path

ORDERS, STORES, NEVER_BUILT = (
    Relation("marts", "fct_orders"),
    Relation("marts", "dim_stores"),
    Relation("marts", "not_built_yet"),
)


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
