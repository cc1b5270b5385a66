"""What a source does with an unexpected column or type: the contracts in ingestion/README.md."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.ordering import ordering_source
from ingestion.pipelines import landing_pipeline
from regulars.settings import Settings


def bump(table: str) -> str:
    """An update as the backend makes it: updated_at moves past every row already read."""
    return f"updated_at = datetime((select max(updated_at) from {table}), '+1 hour')"


def land_ordering(settings: Settings) -> None:
    landing_pipeline("ordering", settings).run(
        ordering_source(credentials=settings.ordering_db_url)
    )


def landing_rows(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_a_column_the_ordering_backend_adds_lands_with_its_values(tiny_world: Settings):
    land_ordering(tiny_world)
    with sqlite3.connect(tiny_world.ordering_db_path) as connection:
        connection.execute("alter table customers add column loyalty_tier varchar(16)")
        connection.execute(
            f"update customers set loyalty_tier = 'gold', {bump('customers')} where customer_id = 1"
        )

    land_ordering(tiny_world)

    tiers = landing_rows(
        tiny_world,
        "select customer_id, loyalty_tier from landing_ordering.customers "
        "where loyalty_tier is not null",
    )
    assert tiers == [(1, "gold")]


def test_a_column_whose_type_changes_stops_the_load_naming_table_and_column(
    tiny_world: Settings,
):
    land_ordering(tiny_world)
    prices_before = landing_rows(
        tiny_world, "select sum(price_idr) from landing_ordering.menu_items"
    )
    with sqlite3.connect(tiny_world.ordering_db_path) as connection:
        # SQLite cannot alter a column's type: rebuild the table the way a migration would.
        (ddl,) = connection.execute(
            "select sql from sqlite_master where name = 'menu_items'"
        ).fetchone()
        connection.execute("alter table menu_items rename to menu_items_old")
        connection.execute(
            ddl.replace("price_idr     INTEGER", "price_idr     VARCHAR(16)").replace(
                "price_idr INTEGER", "price_idr VARCHAR(16)"
            )
        )
        connection.execute("insert into menu_items select * from menu_items_old")
        connection.execute("drop table menu_items_old")
        connection.execute(
            f"update menu_items set price_idr = 'gratis', {bump('menu_items')} "
            "where menu_item_id = 1"
        )

    with pytest.raises(PipelineStepFailed) as failure:
        land_ordering(tiny_world)

    message = str(failure.value)
    assert "menu_items" in message and "price_idr" in message
    # Nothing of the refused load reached the landing table.
    assert landing_rows(tiny_world, "select sum(price_idr) from landing_ordering.menu_items") == (
        prices_before
    )
