"""When Regulars runs by itself: schedules, the landing-zone sensor, freshness checks, failures.

- Events (app and web) refresh hourly, and as soon as new files land; everything else daily.
  Both jobs are selections of the one asset graph, so a mart built by the hourly job is the same
  asset the daily job builds, never a copy.
- Freshness checks say when a lake table or a mart has not been refreshed for longer than its
  schedule allows (with slack for a slow run), in the UI beside the asset.
- A failed run logs one line naming the step that failed (a source's landing, a gate, dbt) and the
  first line of its error, so the run list says what broke without opening the run.
"""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import fsspec

from regulars.settings import Settings

EVENTS_JOB = "refresh_events"
EVERYTHING_JOB = "materialize_everything"
EVENT_DAYS_JOB = "rebuild_event_days"
ALL_DAYS_JOB = "materialize_all_days"
# Transient failures (a source API down for a minute, a locked file) get two more tries, from the
# failed step on; the daemon does the retrying (run_retries in var/dagster_home/dagster.yaml).
RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"}
EVENTS_STREAM = "events"
SERVING_GROUP = "serving"
LANDING_FILE_GLOB = "**/*.ndjson.gz"

# The hourly path may miss one run before it is late; the daily path one day plus a slow run.
EVENTS_FRESHNESS = timedelta(hours=2)
DAILY_FRESHNESS = timedelta(hours=26)


def events_selection() -> dg.AssetSelection:
    """The events' landing and lake assets and everything dbt builds from them."""
    return dg.AssetSelection.key_prefixes([f"landing_{EVENTS_STREAM}"], [f"raw_{EVENTS_STREAM}"])


def partitioned_selection(asset_graph) -> dg.AssetSelection:
    """The day-partitioned assets (incremental dbt models): a job holds them or none of them."""
    keys = [key for key in asset_graph.get_all_asset_keys() if asset_graph.get(key).partitions_def]
    return dg.AssetSelection.assets(*keys)


def jobs(asset_graph) -> list[dg.UnresolvedAssetJobDefinition]:
    by_day = partitioned_selection(asset_graph)
    return [
        dg.define_asset_job(
            EVERYTHING_JOB,
            selection=dg.AssetSelection.all() - by_day,
            description="Every source through the gate to every unpartitioned mart, in lineage "
            f"order; `{EVENT_DAYS_JOB}` then builds the day-partitioned ones.",
            tags=RETRY_TAGS,
        ),
        dg.define_asset_job(
            EVENTS_JOB,
            # Audiences go out with the daily run, not every hour an event arrives.
            # Materializable: the dashboards downstream are Superset's, not a run's.
            selection=events_selection().downstream().materializable()
            - by_day
            - dg.AssetSelection.groups("activation"),
            description="New app and web events through the gate to the marts built from them.",
            tags=RETRY_TAGS,
        ),
        dg.define_asset_job(
            ALL_DAYS_JOB,
            selection=dg.AssetSelection.all(),
            description="Every asset in one run: the unpartitioned ones once, the day-partitioned "
            "ones over the run's partition range (every day so far from `regulars materialize`).",
            tags=RETRY_TAGS,
        ),
        dg.define_asset_job(
            EVENT_DAYS_JOB,
            # The serving copy is published again once the days are rebuilt.
            selection=by_day | dg.AssetSelection.groups(SERVING_GROUP),
            description="Incremental event facts for the chosen days (a backfill is one dbt run "
            "over the whole range), then the serving copy.",
            tags=RETRY_TAGS,
        ),
    ]


def todays_event_days(context: dg.ScheduleEvaluationContext):
    """Today's partition every hour; just after midnight, yesterday's too, to close it.

    The schedule runs on the chain's clock (its execution time zone), so "today" is the chain's
    local day, the same day the partitions are cut on.
    """
    now = context.scheduled_execution_time
    today = now.date()
    days = [today - timedelta(days=1), today] if now.hour == 0 else [today]
    for day in days:
        yield dg.RunRequest(run_key=f"{day}@{now.isoformat()}", partition_key=day.isoformat())


def landing_files(landing_url: str, stream: str) -> list[tuple[float, str]]:
    """(modification time, path) of every complete file of a landing-zone stream, oldest first."""
    filesystem, root = fsspec.core.url_to_fs(f"{landing_url.rstrip('/')}/{stream}")
    if not filesystem.exists(root):
        return []
    found = filesystem.find(root, detail=True)
    files = [
        (_modified(info), path)
        for path, info in found.items()
        if path.endswith(".ndjson.gz") and info.get("type") == "file"
    ]
    return sorted(files)


def _modified(info: dict) -> float:
    value = info.get("mtime", info.get("LastModified", info.get("updated", 0)))
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def new_files_since(files: list[tuple[float, str]], cursor: str | None) -> list[tuple[float, str]]:
    """Files newer than the cursor, or as new but not yet seen (several land in one second)."""
    if not cursor:
        return files
    state = json.loads(cursor)
    newest, seen_at_newest = state["mtime"], set(state["paths"])
    return [
        (mtime, path)
        for mtime, path in files
        if mtime > newest or (mtime == newest and path not in seen_at_newest)
    ]


def advance_cursor(cursor: str | None, batch: list[tuple[float, str]]) -> str:
    newest = max(mtime for mtime, _ in batch)
    previous = json.loads(cursor) if cursor else {"mtime": None, "paths": []}
    paths = {path for mtime, path in batch if mtime == newest}
    if previous["mtime"] == newest:
        paths |= set(previous["paths"])
    return json.dumps({"mtime": newest, "paths": sorted(paths)})


def landing_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_event_files",
        job_name=EVENTS_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Starts one events run per batch of new files in the landing zone's events stream "
            "(the collector's rotated files, or an app's batch upload)."
        ),
    )
    def new_event_files(context: dg.SensorEvaluationContext):
        batch = new_files_since(landing_files(settings.landing_url, EVENTS_STREAM), context.cursor)
        if not batch:
            return dg.SkipReason("No new files in the events stream since the last run.")
        cursor = advance_cursor(context.cursor, batch)
        # The run key is the batch's cursor: the same batch never starts a second run, even if
        # the cursor update were lost (Dagster skips run requests whose key it has seen).
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=cursor,
                    tags={"regulars/new_files": str(len(batch))},
                )
            ],
            cursor=cursor,
        )

    return new_event_files


@dg.run_failure_sensor(
    name="explain_run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Logs which step of a failed run failed and why, in one line.",
)
def explain_run_failures(context: dg.RunFailureSensorContext) -> None:
    failed_steps = [
        event
        for event in context.get_step_failure_events()
        if event.step_key and event.event_specific_data
    ]
    if not failed_steps:
        context.log.error(f"Run {context.dagster_run.run_id} failed before any step ran.")
        return
    for event in failed_steps:
        error = event.event_specific_data.error
        first_line = (error.message or "").strip().splitlines()[0] if error else "unknown error"
        context.log.error(
            f"Run {context.dagster_run.run_id} ({context.dagster_run.job_name}): step "
            f"{event.step_key} failed: {first_line}. Open the run in the UI for the full log; "
            "after fixing the cause, re-execute from the failed step."
        )


def _path(key: dg.AssetKey) -> list[str]:
    return key.path


def freshness_checks(asset_graph) -> list[dg.AssetChecksDefinition]:
    """Lake tables and marts: events-fed ones within EVENTS_FRESHNESS, the rest within a day."""
    watched = {
        key
        for key in asset_graph.get_all_asset_keys()
        if key.path[0].startswith("raw_") or key.path[0] == "marts"
    }
    events_fed = events_selection().downstream().resolve(asset_graph) & watched
    checks = []
    if events_fed:
        checks += dg.build_last_update_freshness_checks(
            assets=sorted(events_fed, key=_path), lower_bound_delta=EVENTS_FRESHNESS
        )
    if watched - events_fed:
        checks += dg.build_last_update_freshness_checks(
            assets=sorted(watched - events_fed, key=_path), lower_bound_delta=DAILY_FRESHNESS
        )
    return checks


def definitions(settings: Settings, base: dg.Definitions) -> dg.Definitions:
    """Automation over the assets `base` defines (the freshness checks need their keys)."""
    graph = base.resolve_asset_graph()
    checks = freshness_checks(graph)
    # Every cron here reads in the chain's time zone: "daily at 03:00" is 03:00 at its stores.
    timezone = settings.chain.timezone
    return dg.Definitions(
        jobs=jobs(graph),
        schedules=[
            dg.ScheduleDefinition(
                name="hourly_events",
                job_name=EVENTS_JOB,
                cron_schedule="5 * * * *",
                execution_timezone=timezone,
                description="App and web events and their marts, every hour at :05.",
            ),
            dg.ScheduleDefinition(
                name="hourly_event_days",
                job_name=EVENT_DAYS_JOB,
                cron_schedule="20 * * * *",
                execution_fn=todays_event_days,
                execution_timezone=timezone,
                description="Today's partition of the incremental event facts, every hour at "
                ":20 (after hourly_events); yesterday's too just after the chain's midnight.",
            ),
            dg.ScheduleDefinition(
                name="daily_everything",
                job_name=EVERYTHING_JOB,
                cron_schedule="0 3 * * *",
                execution_timezone=timezone,
                description=f"Every source and mart, daily at 03:00 {timezone}, after the "
                "night's orders settle.",
            ),
        ],
        sensors=[
            landing_sensor(settings),
            explain_run_failures,
            dg.build_sensor_for_freshness_checks(freshness_checks=checks),
        ],
        asset_checks=checks,
    )
