"""The whole slice through Dagster's API: simulator -> dlt -> GX gate -> dbt -> marts.

Figures are checked against the ordering DB itself, so a bug anywhere along the way (a dropped
batch, a double merge, a wrong revenue rule) changes a number here.
"""

from __future__ import annotations

import json
import sqlite3

import dagster as dg
import duckdb
import pytest

from regulars.settings import Settings

pytestmark = pytest.mark.e2e

SOURCE_REVENUE_SQL = """
    select coalesce(sum(total_idr), 0), count(*) from orders
    where status = 'completed' and deleted_at is null
"""


def materialize_everything(settings: Settings):
    from orchestration.materialize import materialize_everything as materialize
    from regulars.demo import demo_apis

    with demo_apis(settings), dg.DagsterInstance.ephemeral() as instance:
        return materialize(settings, instance)


def source_figures(settings: Settings) -> tuple[int, int]:
    with sqlite3.connect(settings.ordering_db_path) as connection:
        return connection.execute(SOURCE_REVENUE_SQL).fetchone()


def warehouse_query(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def mart_figures(settings: Settings) -> tuple[int, int]:
    ((revenue, orders),) = warehouse_query(
        settings,
        "select coalesce(sum(net_revenue_idr), 0)::bigint, count(*) filter (is_completed) "
        "from marts.fct_orders",
    )
    return revenue, orders


def table_counts(settings: Settings) -> dict[str, int]:
    rows = warehouse_query(
        settings,
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema in ('raw_ordering', 'raw_order_history', 'marts') order by 1",
    )
    return {
        name: warehouse_query(settings, f"select count(*) from {name}")[0][0] for (name,) in rows
    }


@pytest.fixture(params=["duckdb", "filesystem"])
def lake_world(request: pytest.FixtureRequest, tiny_world: Settings, monkeypatch) -> Settings:
    """The tiny world, its lake on the warehouse file or on Parquet files: same figures expected."""
    monkeypatch.setenv("REGULARS_DESTINATION", request.param)
    return tiny_world


def physical_lake_rows(settings: Settings, table: str) -> int:
    """Rows stored for a lake table, every version counted (the filesystem lake appends)."""
    if settings.destination == "duckdb":
        return warehouse_query(settings, f"select count(*) from {table}")[0][0]
    dataset, name = table.split(".")
    files = f"{settings.lake_bucket_url}/{dataset}/{name}/*.parquet"
    return warehouse_query(settings, f"select count(*) from read_parquet('{files}')")[0][0]


def test_marts_match_the_ordering_db_and_reruns_change_nothing(lake_world: Settings):
    tiny_world = lake_world
    first = materialize_everything(tiny_world)
    assert first.success

    source_revenue, source_orders = source_figures(tiny_world)
    assert source_orders > 100, "the tiny world should have enough orders to mean something"
    assert mart_figures(tiny_world) == (source_revenue, source_orders)

    ((customers,),) = warehouse_query(tiny_world, "select count(*) from marts.dim_customers")
    with sqlite3.connect(tiny_world.ordering_db_path) as connection:
        (source_customers,) = connection.execute(
            "select count(*) from customers where deleted_at is null"
        ).fetchone()
    assert customers == source_customers

    pos_export = json.loads((tiny_world.data_dir / "truth.json").read_text())["pos_export"]
    ((history_rows, history_revenue),) = warehouse_query(
        tiny_world,
        "select count(*), sum(amount_idr)::bigint from staging.stg_order_history__orders",
    )
    assert (history_rows, history_revenue) == (pos_export["rows"], pos_export["revenue_idr"])

    counts_after_first = table_counts(tiny_world)
    stored_after_first = physical_lake_rows(tiny_world, "raw_ordering.orders")
    assert materialize_everything(tiny_world).success
    assert table_counts(tiny_world) == counts_after_first
    assert physical_lake_rows(tiny_world, "raw_ordering.orders") == stored_after_first


def test_an_advanced_day_flows_through_and_merges(lake_world: Settings):
    from simulator import advance_world

    tiny_world = lake_world
    assert materialize_everything(tiny_world).success
    orders_before = warehouse_query(tiny_world, "select count(*) from marts.fct_orders")[0][0]

    advance_world(tiny_world.data_dir, days=3)
    assert materialize_everything(tiny_world).success

    source_revenue, source_orders = source_figures(tiny_world)
    assert mart_figures(tiny_world) == (source_revenue, source_orders)
    orders_after = warehouse_query(tiny_world, "select count(*) from marts.fct_orders")[0][0]
    assert orders_after > orders_before
    duplicates = warehouse_query(
        tiny_world,
        "select count(*) - count(distinct order_id) from raw_ordering.orders",
    )[0][0]
    assert duplicates == 0


def test_bad_rows_are_quarantined_with_their_reason_and_nothing_is_lost(tiny_world: Settings):
    with sqlite3.connect(tiny_world.ordering_db_path) as connection:
        ((bad_status_id, negative_id),) = [
            connection.execute("select min(order_id), max(order_id) from orders").fetchone()
        ]
        connection.execute(
            "update orders set status = 'teleported' where order_id = ?", (bad_status_id,)
        )
        connection.execute(
            "update orders set discount_idr = -5000, total_idr = total_idr + 5000 "
            "where order_id = ?",
            (negative_id,),
        )

    assert materialize_everything(tiny_world).success

    quarantined = dict(
        warehouse_query(
            tiny_world,
            "select primary_key_value, failed_expectations from raw_ordering.quarantine_orders",
        )
    )
    assert set(quarantined) == {str(bad_status_id), str(negative_id)}
    assert "expect_column_values_to_be_in_set(column=status" in quarantined[str(bad_status_id)]
    assert "column=discount_idr" in quarantined[str(negative_id)]

    lake_ids = {
        order_id
        for (order_id,) in warehouse_query(tiny_world, "select order_id from raw_ordering.orders")
    }
    assert bad_status_id not in lake_ids and negative_id not in lake_ids

    ((landed, promoted, held),) = warehouse_query(
        tiny_world,
        "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows) "
        "from raw_ordering.gate_audit where table_name = 'orders'",
    )
    with sqlite3.connect(tiny_world.ordering_db_path) as connection:
        (source_rows,) = connection.execute("select count(*) from orders").fetchone()
    assert (landed, held) == (source_rows, 2)
    assert promoted + held == landed


def lake_figures(settings: Settings) -> dict[str, float]:
    ((events, deliveries, calls, ga4_sessions, spend, quarantined),) = warehouse_query(
        settings,
        """
        select
            (select count(*) from raw_events.messages),
            (select count(*) from raw_messaging.delivery_events),
            (select count(*) from raw_telemetry.api_calls),
            (select sum(sessions) from raw_ga4.traffic_daily),
            (select round(sum(spend), 2) from raw_meta_ads.insights),
            (select count(*) from information_schema.tables t
             where t.table_name like 'quarantine_%')
        """,
    )
    return {
        "events": events,
        "deliveries": deliveries,
        "calls": calls,
        "ga4_sessions": ga4_sessions,
        "spend": float(spend),
        "quarantine_tables": quarantined,
    }


def truth_figures(settings: Settings) -> dict[str, float]:
    truth = json.loads((settings.data_dir / "truth.json").read_text())
    webhooks = truth["messaging"]["webhooks"]
    return {
        "events": truth["events"]["distinct_message_ids"],
        "deliveries": webhooks["deliveries"] - webhooks["duplicate_deliveries"],
        "calls": truth["telemetry"]["calls"],
        "ga4_sessions": truth["ga4"]["sessions"],
        "spend": round(truth["ads"]["spend_idr"], 2),
        "quarantine_tables": 0,  # a clean simulated world quarantines nothing
    }


def test_every_channel_lands_once_what_the_simulator_wrote(lake_world: Settings):
    from simulator import advance_world

    tiny_world = lake_world
    assert materialize_everything(tiny_world).success
    first = lake_figures(tiny_world)
    assert first == truth_figures(tiny_world)
    assert first["events"] > 1_000 and first["deliveries"] > 100

    advance_world(tiny_world.data_dir, days=2)  # late events, retries, new hours of every stream
    assert materialize_everything(tiny_world).success
    second = lake_figures(tiny_world)
    assert second == truth_figures(tiny_world)
    assert second["events"] > first["events"] and second["calls"] > first["calls"]
