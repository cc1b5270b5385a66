"""A chain has the channels it has: with any subset, every model builds and every figure is right.

Each case is the tiny world with the other channels' files taken away, so their sources are not
configured, materialised through Dagster as `regulars materialize` does. Every dbt model must
exist afterwards (a missing channel reads as an empty table, macros/lake_source.sql), the run
must name exactly the sources it skipped, and the figures of the channels that are there must
equal what the simulator wrote, while those of the missing ones are empty. The case with every
channel is test_end_to_end's scenario.

The order-history-only chain is not the simulator's: it is a year of a jaffle shop written by
dbt Labs' `jafgen` (US dollars in cents, ISO times, uuids for guests, stores and orders, from
2018), configured as README "Bring your own data" says, and its customer marts must hold exactly
what DuckDB sums over the file itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingestion.registry import SOURCES
from regulars.settings import Settings
from tests.conftest import materialize
from tests.test_end_to_end import mart_figures, source_figures

pytestmark = pytest.mark.e2e

# What a source reads in the simulated world's data folder: taking it away unconfigures it.
# (The ordering DB stays, for the demo's API fakes read the world's dates from it; the source is
# pointed at a database that is not there instead.)
CHANNEL_FILES = {
    "order_history": ("pos_export",),
    "events": ("landing/events",),
    "messaging": ("landing/messaging",),
    "telemetry": ("landing/telemetry",),
    "ga4": ("ga4",),
    "meta_ads": ("meta",),
}

SUBSETS = {
    "order_history_only": {"order_history"},
    "ordering_only": {"ordering"},
    "ga4_and_meta_only": {"ga4", "meta_ads"},
    "events_only": {"events"},
    # Messaging, web and app without the ordering platform whose guests they address.
    "every_channel_but_ordering": set(SOURCES) - {"ordering"},
}


# README "Bring your own data": jafgen's raw_orders.csv, mapped and described as a chain would.
JAFGEN_CHAIN = {
    "SOURCES__ORDER_HISTORY__FILE_GLOB": "raw_orders.csv",
    "SOURCES__ORDER_HISTORY__DATE_FORMAT": "iso8601",
    "SOURCES__ORDER_HISTORY__AMOUNTS_IN_MINOR_UNITS": "true",
    "SOURCES__ORDER_HISTORY__COLUMN_MAPPING": json.dumps(
        {
            "customer_id": "customer",
            "order_date": "ordered_at",
            "amount": "order_total",
            "order_id": "id",
            "store": "store_id",
        }
    ),
    "CHAIN__TIMEZONE": "America/New_York",
    "CHAIN__CURRENCY": "USD",
    "CHAIN__OPENED_ON": "2018-09-01",
}


@pytest.fixture(scope="session")
def jafgen_orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year of jaffle-shop orders from dbt Labs' generator (PyPI `jafgen`), as it writes them."""
    folder = tmp_path_factory.mktemp("jafgen")
    jafgen = Path(sys.executable).with_name("jafgen")
    subprocess.run([str(jafgen), "1"], cwd=folder, check=True, capture_output=True)
    return folder / "jaffle-data" / "raw_orders.csv"


def configure_jafgen_chain(orders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__ORDER_HISTORY__BUCKET_URL", str(orders.parent))
    for name, value in JAFGEN_CHAIN.items():
        monkeypatch.setenv(name, value)


def keep_only(data_dir: Path, kept: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if "ordering" not in kept:
        absent = data_dir.parent / "no_ordering_db_here.sqlite"
        monkeypatch.setenv("SOURCES__ORDERING__CREDENTIALS", f"sqlite:///{absent}")
    for source, paths in CHANNEL_FILES.items():
        if source in kept:
            continue
        for relative in paths:
            path = data_dir / relative
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def dbt_models() -> set[tuple[str, str]]:
    """(schema, name) of every model the dbt project builds, from the manifest Dagster uses."""
    manifest = json.loads(
        (Path(__file__).resolve().parent.parent / "dbt_project/target/manifest.json").read_text()
    )
    return {
        (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("enabled", True)
    }


def one(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchone()[0]


def relations(settings: Settings) -> set[tuple[str, str]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return set(
            connection.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        )


@pytest.mark.parametrize("kept", SUBSETS.values(), ids=SUBSETS.keys())
def test_a_chain_with_some_channels_gets_every_model_and_its_own_figures(
    kept: set[str],
    tiny_world: Settings,
    fresh_dbt_manifest,
    jafgen_orders: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    truth = json.loads((tiny_world.data_dir / "truth.json").read_text())
    keep_only(tiny_world.data_dir, kept, monkeypatch)
    if kept == {"order_history"}:
        configure_jafgen_chain(jafgen_orders, monkeypatch)

    result = materialize(tiny_world)

    assert result.success
    assert set(result.not_configured) == set(SOURCES) - kept
    missing = dbt_models() - relations(tiny_world)
    assert not missing, f"models not built with only {sorted(kept)}: {sorted(missing)}"

    completed_orders = one(tiny_world, "select count(*) from marts.fct_orders where is_completed")
    guests_scored = one(tiny_world, "select count(*) from marts.customer_lifetime_value")
    fits = one(tiny_world, "select count(*) from marts.clv_model_runs")
    clustered = one(tiny_world, "select count(*) from marts.customer_clusters")
    if "ordering" in kept:
        assert mart_figures(tiny_world) == source_figures(tiny_world)
        assert completed_orders > 100 and fits == 1
        assert guests_scored > 50 and clustered > 50
    elif "order_history" not in kept:
        # Nothing to fit: the analytics tables are there, empty, not an error.
        assert (completed_orders, guests_scored, fits, clustered) == (0, 0, 0, 0)

    history = one(tiny_world, "select count(*) from staging.stg_order_history__orders")
    if kept == {"order_history"}:
        assert_marts_hold_the_file(tiny_world, jafgen_orders)
    else:
        assert history == (truth["pos_export"]["rows"] if "order_history" in kept else 0)

    events = one(tiny_world, "select count(*) from staging.stg_events__messages")
    sessions = one(tiny_world, "select count(*) from marts.fct_sessions")
    if "events" in kept:
        assert events == truth["events"]["distinct_message_ids"] and sessions > 100
    else:
        assert (events, sessions) == (0, 0)

    messages = one(tiny_world, "select count(*) from marts.fct_messages")
    closed = one(tiny_world, "select count(*) from marts.fct_messages where is_window_closed")
    if "messaging" not in kept:
        assert messages == 0
    elif "ordering" not in kept:
        # No platform guests to rebuild a holdout from, no orders to measure a campaign by:
        # every message the provider handled is there, and no window is closed.
        sent = sum(campaign["messages"] for campaign in truth["messaging"]["campaigns"])
        assert (messages, closed) == (sent, 0) and sent > 0

    calls = one(tiny_world, "select coalesce(sum(calls), 0) from marts.service_levels")
    assert calls == (truth["telemetry"]["calls"] if "telemetry" in kept else 0)

    ga4_sessions = one(
        tiny_world, "select coalesce(sum(sessions), 0) from staging.stg_ga4__traffic_daily"
    )
    assert ga4_sessions == (truth["ga4"]["sessions"] if "ga4" in kept else 0)
    spend = one(tiny_world, "select coalesce(sum(spend), 0) from marts.fct_campaign_performance")
    assert round(float(spend), 2) == (round(truth["ads"]["spend"], 2) if "meta_ads" in kept else 0)


def assert_marts_hold_the_file(settings: Settings, orders: Path) -> None:
    """Orders, guests, revenue and first/last days of the marts are DuckDB's own over the file."""
    with duckdb.connect() as connection:
        in_file = connection.execute(
            "select count(*), count(distinct customer), "
            "cast(sum(cast(order_total as bigint)) / 100 as decimal(18, 2)), "
            "min(cast(cast(ordered_at as timestamp) as date)), "
            "max(cast(cast(ordered_at as timestamp) as date)) "
            f"from read_csv('{orders}', all_varchar = true)"
        ).fetchone()
    orders_count, guests, revenue, first_day, last_day = in_file
    assert orders_count > 50_000 and guests > 500  # a year of jaffles, whatever the seed

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        facts = connection.execute(
            "select count(*), count(distinct customer_id), sum(net_revenue), "
            "min(placed_date), max(placed_date), bool_and(source_system = 'order_history'), "
            "string_agg(distinct currency, ',') from marts.fct_orders"
        ).fetchone()
        customers = connection.execute(
            "select count(*), sum(completed_orders), sum(lifetime_net_revenue), "
            "count(*) filter (where source_system = 'order_history' and customer_id < 0), "
            "string_agg(distinct currency, ',') from marts.dim_customers"
        ).fetchone()
        lifetime_values = connection.execute(
            "select count(*), sum(orders), bool_and(not fit_is_reliable or probability_alive "
            "is not null) from marts.customer_lifetime_value"
        ).fetchone()
    # Times in the file are the chain's wall clock, so local days are the file's own days.
    # The cents became dollars, and the marts say so: `[chain] currency` is data beside them.
    assert facts == (orders_count, guests, revenue, first_day, last_day, True, "USD")
    assert customers == (guests, orders_count, revenue, guests, "USD")
    assert lifetime_values == (guests, orders_count, True)
