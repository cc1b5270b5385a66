"""Assembles the per-integration modules into the code location `dagster dev` loads."""

from __future__ import annotations

import dagster as dg

from orchestration import automation, dbt, ingestion, validation
from regulars.settings import Settings, export_environment, load_settings

EVERYTHING_JOB = automation.DAILY_JOB
# Transient failures (a source API down for a minute, a locked file) get two more tries, from the
# failed step on; the daemon does the retrying (run_retries in var/dagster_home/dagster.yaml).
RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"}


def build_definitions(settings: Settings) -> dg.Definitions:
    export_environment(settings)
    everything = dg.define_asset_job(
        EVERYTHING_JOB,
        selection=dg.AssetSelection.all(),
        description="Every source through the gate to every mart, in lineage order.",
        tags=RETRY_TAGS,
    )
    assets = dg.Definitions.merge(
        ingestion.definitions(settings),
        validation.definitions(settings),
        dbt.definitions(settings),
    )
    return dg.Definitions.merge(
        assets,
        automation.definitions(settings, assets),
        # One process, one step at a time: the embedded DuckDB file takes a single writer.
        dg.Definitions(jobs=[everything], executor=dg.in_process_executor),
    )


defs = build_definitions(load_settings())
