"""A chain has the channels it has: with any subset, every model builds and every figure is right.

Each case is the tiny world with the other channels' files taken away, so their sources are not
configured, materialised through Dagster as `regulars materialize` does. Every dbt model must
exist afterwards (a missing channel reads as an empty table, macros/lake_source.sql), the run
must name exactly the sources it skipped, and the figures of the channels that are there must
equal what the simulator wrote, while those of the missing ones are empty. The case with every
channel is test_end_to_end's scenario.
"""

from __future__ import annotations

import json
import shutil
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
}


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
    kept: set[str], tiny_world: Settings, fresh_dbt_manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    truth = json.loads((tiny_world.data_dir / "truth.json").read_text())
    keep_only(tiny_world.data_dir, kept, monkeypatch)

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
    assert history == (truth["pos_export"]["rows"] if "order_history" in kept else 0)

    events = one(tiny_world, "select count(*) from staging.stg_events__messages")
    sessions = one(tiny_world, "select count(*) from marts.fct_sessions")
    if "events" in kept:
        assert events == truth["events"]["distinct_message_ids"] and sessions > 100
    else:
        assert (events, sessions) == (0, 0)

    ga4_sessions = one(
        tiny_world, "select coalesce(sum(sessions), 0) from staging.stg_ga4__traffic_daily"
    )
    assert ga4_sessions == (truth["ga4"]["sessions"] if "ga4" in kept else 0)
    spend = one(
        tiny_world, "select coalesce(sum(spend_idr), 0) from marts.fct_campaign_performance"
    )
    assert round(float(spend), 2) == (
        round(truth["ads"]["spend_idr"], 2) if "meta_ads" in kept else 0
    )
