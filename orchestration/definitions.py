"""Assembles the per-integration modules into the code location `dagster dev` loads."""

from __future__ import annotations

import dagster as dg

from orchestration import dbt, ingestion, validation
from regulars.settings import Settings, export_environment, load_settings

EVERYTHING_JOB = "materialize_everything"


def build_definitions(settings: Settings) -> dg.Definitions:
    export_environment(settings)
    everything = dg.define_asset_job(
        EVERYTHING_JOB,
        selection=dg.AssetSelection.all(),
        description="Every source through the gate to every mart, in lineage order.",
    )
    return dg.Definitions.merge(
        ingestion.definitions(settings),
        validation.definitions(settings),
        dbt.definitions(settings),
        # One process, one step at a time: the embedded DuckDB file takes a single writer.
        dg.Definitions(jobs=[everything], executor=dg.in_process_executor),
    )


defs = build_definitions(load_settings())
