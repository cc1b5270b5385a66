"""The per-integration modules assembled into one Definitions, for the settings given.

Importing this builds nothing: `regulars materialize`, the tests and the benches build with their
own settings. orchestration.definitions is the code location `dagster dev` and the run workers
load, built from the environment's settings when imported; a caller that imported it to reach
`build_definitions` built every asset twice a run (about a second: the dlt sources and pipelines,
the dbt manifest). Building the definitions relaxes how this process writes the Dagster home's
SQLite files (orchestration.instance_storage): every process that runs Regulars' assets builds
them.
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
from regulars.settings import Settings

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
