"""Assembles the per-integration modules into the code location `dagster dev` loads.

Loading it sets no paths: the command line (`regulars ui`, `regulars materialize`) and the
Makefile set DAGSTER_HOME and the paths; dbt gets the warehouse from its launcher. Building the
definitions does relax how this process writes the Dagster home's SQLite files
(orchestration.instance_storage): every process that runs Regulars' assets builds them.
"""

from __future__ import annotations

import dagster as dg

from orchestration import (
    activation,
    automation,
    dashboards,
    dbt,
    ingestion,
    privacy,
    serving,
    validation,
)
from orchestration.instance_storage import relax_instance_storage
from regulars.settings import Settings, load_settings

EVERYTHING_JOB = automation.EVERYTHING_JOB
EVENT_DAYS_JOB = automation.EVENT_DAYS_JOB
ALL_DAYS_JOB = automation.ALL_DAYS_JOB


def build_definitions(settings: Settings) -> dg.Definitions:
    relax_instance_storage()
    assets = dg.Definitions.merge(
        ingestion.definitions(settings),
        validation.definitions(settings),
        dbt.definitions(settings),
        activation.definitions(settings),
        serving.definitions(settings),
        dashboards.definitions(settings),
    )
    return dg.Definitions.merge(
        assets,
        automation.definitions(settings, assets),
        privacy.definitions(settings),
        # One process, one step at a time: the embedded DuckDB file takes a single writer.
        dg.Definitions(executor=dg.in_process_executor),
    )


defs = build_definitions(load_settings())
