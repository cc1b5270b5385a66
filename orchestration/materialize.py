"""Materialise the whole graph in this process: what `make run`, the tests and the benches do.

Two runs, because a Dagster job holds either unpartitioned or day-partitioned assets: first every
unpartitioned asset (sources, gates, dbt tables and views), then the day-partitioned incremental
facts over every day so far, as one run (their backfill policy makes a range one dbt call).
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.automation import EVENT_DAYS_JOB, EVERYTHING_JOB
from orchestration.dbt import DAILY_PARTITIONS
from orchestration.definitions import build_definitions
from regulars.settings import Settings


@dataclass(frozen=True)
class Materialization:
    results: list[dg.ExecuteInProcessResult]

    @property
    def success(self) -> bool:
        return all(result.success for result in self.results)

    @property
    def run_ids(self) -> list[str]:
        return [result.run_id for result in self.results]

    @property
    def failed_steps(self) -> list[str]:
        return [
            event.step_key
            for result in self.results
            for event in result.all_events
            if event.is_step_failure
        ]


def materialize_everything(
    settings: Settings,
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    raise_on_error: bool = True,
) -> Materialization:
    definitions = build_definitions(settings)
    everything = definitions.resolve_job_def(EVERYTHING_JOB).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=raise_on_error
    )
    results = [everything]
    by_day = definitions.resolve_job_def(EVENT_DAYS_JOB)
    days = DAILY_PARTITIONS.get_partition_keys()
    if everything.success and by_day.asset_layer.selected_asset_keys and days:
        results.append(
            by_day.execute_in_process(
                instance=instance,
                run_config=run_config,
                raise_on_error=raise_on_error,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: days[0],
                    ASSET_PARTITION_RANGE_END_TAG: days[-1],
                },
            )
        )
    return Materialization(results)
