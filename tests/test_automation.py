"""Schedules, the landing-zone sensor and freshness checks, through Dagster's own API."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from orchestration.automation import EVENTS_JOB
from regulars.settings import Settings

pytestmark = pytest.mark.usefixtures("fresh_dbt_manifest")


def definitions(settings: Settings) -> dg.Definitions:
    from orchestration.assembly import build_definitions

    return build_definitions(settings)


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensor.evaluate_tick(context)


def land_a_new_file(settings: Settings) -> Path:
    """A new hour's file in the events stream, as the collector's rotation would publish it."""
    existing = sorted(Path(settings.landing_url, "events").rglob("*.ndjson.gz"))[-1]
    target = Path(settings.landing_url, "events", "date=2031-01-01", "hour=00")
    target.mkdir(parents=True)
    copy = target / "events-20310101T00-0001.ndjson.gz"
    shutil.copy(existing, copy)
    newest = max(path.stat().st_mtime for path in existing.parent.parent.rglob("*.ndjson.gz"))
    os.utime(copy, (newest + 60, newest + 60))
    return copy


def test_the_sensor_starts_one_run_per_new_batch_and_none_for_a_batch_seen(tiny_world: Settings):
    sensor = definitions(tiny_world).resolve_sensor_def("new_event_files")
    files = list(Path(tiny_world.landing_url, "events").rglob("*.ndjson.gz"))
    assert len(files) > 10

    with dg.DagsterInstance.ephemeral() as instance:
        first = tick(sensor, instance, cursor=None)
        assert len(first.run_requests) == 1
        assert first.run_requests[0].tags["regulars/new_files"] == str(len(files))

        again = tick(sensor, instance, cursor=first.cursor)
        assert again.run_requests == [] and "No new files" in again.skip_message

        land_a_new_file(tiny_world)
        second = tick(sensor, instance, cursor=again.cursor or first.cursor)
        assert len(second.run_requests) == 1
        assert second.run_requests[0].tags["regulars/new_files"] == "1"
        assert second.run_requests[0].run_key != first.run_requests[0].run_key

        assert tick(sensor, instance, cursor=second.cursor).run_requests == []


def test_the_events_job_reaches_from_the_landing_zone_to_the_marts(tiny_world: Settings):
    defs = definitions(tiny_world)
    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def(EVENTS_JOB)
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {"landing_events/messages", "raw_events/messages"} <= selected
    assert "staging/stg_events__messages" in selected
    # Nothing of the ordering DB's path is reloaded hourly.
    assert not any(key.startswith(("landing_ordering", "raw_ordering")) for key in selected)
    assert any(key.startswith("marts/") for key in selected)
    assert graph is not None


def test_schedules_run_in_the_chains_time_zone(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CHAIN__TIMEZONE", "America/Chicago")
    defs = definitions(tiny_world)
    hourly = defs.resolve_schedule_def("hourly_events")
    daily = defs.resolve_schedule_def("daily_everything")
    assert (hourly.cron_schedule, hourly.job_name) == ("5 * * * *", EVENTS_JOB)
    assert (daily.cron_schedule, daily.job_name) == ("0 3 * * *", "materialize_everything")
    by_day = defs.resolve_schedule_def("hourly_event_days")
    assert {hourly.execution_timezone, daily.execution_timezone, by_day.execution_timezone} == {
        "America/Chicago"
    }


def test_every_lake_table_and_mart_has_a_freshness_check(tiny_world: Settings):
    graph = definitions(tiny_world).resolve_asset_graph()
    watched = {
        key
        for key in graph.get_all_asset_keys()
        if key.path[0].startswith("raw_") or key.path[0] == "marts"
    }
    freshness = {check.asset_key for check in graph.asset_check_keys if "freshness" in check.name}
    assert watched and watched <= freshness
