"""What the Dagster UI shows a data engineer about each asset (#18): table names, descriptions,
row counts and column schemas, from the definitions and from a run's materialisations."""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg
import duckdb
import pytest

from regulars.settings import Settings

pytestmark = pytest.mark.usefixtures("fresh_dbt_manifest")

key = dg.AssetKey


def graph_of(settings: Settings):
    from orchestration.assembly import build_definitions
    from regulars.cli.demo import demo_apis

    with demo_apis(settings):
        return build_definitions(settings).resolve_asset_graph()


def table_name(metadata) -> str | None:
    name = metadata.get("dagster/table_name")
    return name.value if isinstance(name, dg.TextMetadataValue) else name


def test_each_landing_and_lake_table_has_its_own_qualified_name(tiny_world: Settings):
    graph = graph_of(tiny_world)
    names = {k: table_name(graph.get(k).metadata) for k in graph.get_all_asset_keys()}

    # Two sources' `orders`: two tables, each named as dagster-dbt names the dbt relations.
    assert names[key(["landing_ordering", "orders"])] == "regulars.landing_ordering.orders"
    assert names[key(["landing_order_history", "orders"])] == (
        "regulars.landing_order_history.orders"
    )
    assert names[key(["raw_ordering", "orders"])] == "regulars.raw_ordering.orders"
    assert names[key(["marts", "fct_orders"])] == "regulars.marts.fct_orders"
    # No two assets claim one table (the UI would show each as the other's "Linked asset").
    claimed = Counter(name for name in names.values() if name)
    assert [name for name, n in claimed.items() if n > 1] == []
    for k, name in names.items():
        if k.path[0].startswith(("landing_", "raw_")):
            assert name == f"regulars.{k.path[0]}.{k.path[-1]}", k

    # The lake table is the relation the dbt source reads.
    manifest = json.loads((tiny_world.dbt_project_dir / "target" / "manifest.json").read_text())
    source = manifest["sources"]["source.regulars.ordering.orders"]
    relation = ".".join((source["database"], source["schema"], source["identifier"]))
    assert relation == names[key(["raw_ordering", "orders"])]


def test_landing_assets_and_every_check_are_described(tiny_world: Settings):
    graph = graph_of(tiny_world)
    landing = graph.get(key(["landing_ordering", "orders"]))
    assert "`raw_ordering.orders`" in landing.description
    assert "ordering-platform database" in landing.description
    undescribed = [
        k
        for k in graph.get_all_asset_keys()
        if k.path[0].startswith("landing_") and not graph.get(k).description
    ]
    assert undescribed == []

    checks = {
        check_key: graph.get_check_spec(check_key).description
        for check_key in graph.asset_check_keys
    }
    assert len(checks) > 50
    assert [check_key for check_key, text in checks.items() if not text] == []
    # A dbt generic test says what it tests and on which column.
    (not_null,) = [
        text
        for check_key, text in checks.items()
        if check_key.asset_key == key(["marts", "fct_orders"])
        and check_key.name == "not_null_fct_orders_order_id"
    ]
    assert not_null.startswith("`not_null` on `order_id`")


def test_each_export_names_the_audience_it_sends(tiny_world: Settings):
    from regulars.activation.config import load_config

    graph = graph_of(tiny_world)
    config = load_config()
    exports = 0
    for audience in config.audiences.values():
        for channel in audience.channels:
            node = graph.get(key(["activation", audience.name, channel]))
            assert node.description.startswith(f"Audience `{audience.name}` exported to {channel}:")
            assert audience.description in node.description
            assert node.metadata["audience"] == audience.name
            assert node.tags["audience"] == audience.name
            assert node.tags["channel"] == channel
            exports += 1
    assert exports >= 2


ORDERS = [
    key(["landing_ordering", "orders"]),
    key(["raw_ordering", "orders"]),
    key(["marts", "fct_orders"]),
]


def test_a_run_records_row_counts_table_names_and_column_schemas(materialized_world: Settings):
    """What the world's own materialisation recorded, on the world's instance, against the
    warehouse it left."""
    settings = materialized_world
    marts = [key(["marts", name]) for name in ("fct_orders", "dim_customers")]
    with dg.DagsterInstance.get() as instance:
        recorded = {
            k: instance.get_latest_materialization_event(k).asset_materialization.metadata
            for k in [*ORDERS, *marts]
        }

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as warehouse:

        def count(table: str) -> int:
            return warehouse.execute(f"select count(*) from {table}").fetchone()[0]

        marts_rows = {k: count(".".join(k.path)) for k in marts}
        lake_orders = count("raw_ordering.orders")
        lake_columns = dict(
            warehouse.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw_ordering' and table_name = 'orders'"
            ).fetchall()
        )

    # dbt's tables: the count Dagster shows is the warehouse's once dbt has finished.
    assert marts_rows[key(["marts", "fct_orders"])] > 100
    assert {k: recorded[k]["dagster/row_count"].value for k in marts} == marts_rows

    # The lake table: its rows and its columns as the warehouse has them.
    lake = recorded[key(["raw_ordering", "orders"])]
    assert lake["dagster/row_count"].value == lake_orders
    columns = {c.name: c.type for c in lake["dagster/column_schema"].value.columns}
    assert columns == lake_columns
    assert columns["order_id"]

    # The landing table: its columns from dlt's schema, its name qualified as the definition's.
    landing = recorded[key(["landing_ordering", "orders"])]
    assert landing["dagster/table_name"].value == "regulars.landing_ordering.orders"
    landing_columns = {c.name for c in landing["dagster/column_schema"].value.columns}
    assert {"order_id", "_dlt_load_id"} <= landing_columns
