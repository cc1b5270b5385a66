"""Materialise the whole graph in this process: what `make run`, the tests and the benches do.

One run of every asset: the unpartitioned ones once, the day-partitioned incremental facts over
every day so far (their backfill policy makes the range one dbt call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ingestion.pipelines import lake_dataset, landing_dataset
from ingestion.registry import SOURCES
from orchestration.assembly import build_definitions
from orchestration.automation import ALL_DAYS_JOB, EVERYTHING_JOB
from orchestration.dbt import DAY_PARTITIONED_SOURCES, daily_partitions
from orchestration.privacy import FORGET_REQUEST_TAG, keys_to_rebuild
from orchestration.progress import (
    PROGRESS_RUN_CONFIG,
    StepProgress,
    last_step_seconds,
    step_count,
    with_progress,
)
from regulars.settings import Settings

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo


INTERRUPTIONS = {DagsterExecutionInterruptedError.__name__, KeyboardInterrupt.__name__}


@dataclass(frozen=True)
class Materialization:
    result: dg.ExecuteInProcessResult
    # Sources this chain has not set up, left out of the run: name -> what to set.
    not_configured: dict[str, str]

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def failed_steps(self) -> list[str]:
        return [event.step_key for event in self.result.all_events if event.is_step_failure]

    @property
    def step_errors(self) -> dict[str, SerializableErrorInfo]:
        """Failed step -> its error, traceback and causes included."""
        return {
            event.step_key: event.step_failure_data.error
            for event in self.result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        }

    @property
    def interrupted_steps(self) -> list[str]:
        """Steps that stopped on Ctrl-C (SIGINT or SIGTERM), which stops the run."""
        return [step for step, error in self.step_errors.items() if _interrupted(error)]

    @property
    def failure_descriptions(self) -> dict[str, str]:
        """Failed step -> the paragraph it failed with, for steps that raised a `dg.Failure`
        (a source that could not be reached says which and what to check)."""
        return {
            event.step_key: event.step_failure_data.user_failure_data.description
            for event in self.result.all_events
            if event.is_step_failure
            and event.step_failure_data.user_failure_data is not None
            and event.step_failure_data.user_failure_data.description
        }


def materialize_everything(
    settings: Settings,
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    raise_on_error: bool = True,
    exclude: dg.AssetSelection | None = None,
    tags: Mapping[str, str] | None = None,
    progress: TextIO | None = None,
) -> Materialization:
    """Every asset in one run; `exclude` leaves some out (their tables stay as they are), or
    some checks of the assets that run (`dg.AssetSelection.checks`: dbt then leaves their tests
    out); `tags` go on the run; `progress` gets a line per step (orchestration.progress) instead
    of Dagster's console log.

    The landing and lake assets of sources this chain has not set up are left out too: dbt
    reads an empty table for each (macros/lake_source.sql).
    """
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(ALL_DAYS_JOB)
    not_configured = {
        source.name: missing for source in SOURCES.values() if (missing := source.missing(settings))
    }
    left_out = dg.AssetSelection.key_prefixes(
        *([prefix(name)] for name in not_configured for prefix in (landing_dataset, lake_dataset))
    )
    if exclude is not None:
        left_out = left_out | exclude
    selection = None
    if not_configured or exclude is not None:
        asset_graph = definitions.resolve_asset_graph()
        skipped = left_out.resolve(asset_graph)
        selection = sorted(job.asset_layer.selected_asset_keys - skipped)
        selected = set(selection)
        every_check = {key for key in asset_graph.asset_check_keys if key.asset_key in selected}
        kept_checks = every_check - left_out.resolve_checks(asset_graph)
        if kept_checks != every_check:
            # `execute_in_process` takes assets only, each with all its checks: the subset job
            # names the checks too.
            job = job.get_subset(asset_selection=selected, asset_check_selection=kept_checks)
            selection = None
    days = daily_partitions(settings.chain).get_partition_keys()
    if not set(DAY_PARTITIONED_SOURCES) - set(not_configured):
        # Nothing this chain has feeds the day-partitioned facts: their tables are built empty
        # from today's partition, not planned and checked day by day over the chain's history.
        days = days[-1:]
    else:
        graph = definitions.resolve_asset_graph()
        by_day = [
            key for key in job.asset_layer.selected_asset_keys if graph.get(key).partitions_def
        ]
        days = days_to_build(days, [instance.get_materialized_partitions(key) for key in by_day])
    every_day = {ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1]}
    run_tags = {**(tags or {}), **every_day}
    handler = None
    if progress is not None:
        handler = StepProgress(
            progress, step_count(job, selection, run_tags), last_step_seconds(instance, job.name)
        )
        job = with_progress(job, handler)
        run_config = {**(run_config or {}), **PROGRESS_RUN_CONFIG}
    try:
        result = job.execute_in_process(
            instance=instance,
            run_config=run_config,
            raise_on_error=raise_on_error,
            asset_selection=selection,
            tags=run_tags,
        )
    finally:
        if handler is not None:
            handler.finish()
    return Materialization(result, not_configured)


def _interrupted(error: SerializableErrorInfo | None) -> bool:
    """Whether Ctrl-C is behind a step's error (ingestion.failures.interruption, serialised)."""
    while error is not None:
        if error.cls_name in INTERRUPTIONS:
            return True
        error = error.cause or error.context
    return False


def innermost_line(error: SerializableErrorInfo, limit: int = 300) -> str:
    """The error a step's error was raised from, deepest first, in a line: Dagster's and dlt's
    wrappers say only where it happened."""
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines() or [error.cls_name]
    line = lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def days_to_build(days: list[str], materialized: list[set[str]]) -> list[str]:
    """The days a run rebuilds: from the last day every partitioned asset has (it may have been
    built while it still filled) or the first day one of them lacks, whichever is earlier.

    Earlier days need no window of their own: a window run also rewrites any older day whose
    sessions or calls changed since (late events, a sign-up re-owning old sessions; see
    fct_sessions.sql), so the table ends as a full rebuild would leave it.
    """
    start = len(days) - 1
    for built in materialized:
        missing = next((index for index, day in enumerate(days) if day not in built), None)
        last_built = max((index for index, day in enumerate(days) if day in built), default=0)
        start = min(start, last_built if missing is None else min(missing, last_built))
    return days[start:] if materialized else days


def rebuild_after_forget(
    settings: Settings,
    instance: dg.DagsterInstance,
    sources: list[str],
    request_id: str,
    tags: Mapping[str, str] | None = None,
) -> Materialization | None:
    """One run of what reads the lake sources forget erased rows from (None when nothing does):
    the same selection the `marts_after_forget` sensor asks for after a `forget_guest` run."""
    definitions = build_definitions(settings)
    keys = keys_to_rebuild(definitions.resolve_asset_graph(), sources)
    if not keys:
        return None
    result = definitions.resolve_job_def(EVERYTHING_JOB).execute_in_process(
        instance=instance,
        asset_selection=keys,
        raise_on_error=False,
        tags={**(tags or {}), FORGET_REQUEST_TAG: request_id},
    )
    return Materialization(result, {})
