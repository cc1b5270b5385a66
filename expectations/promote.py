"""Run the gate for one source: read its landing dataset, load what passes into its lake dataset."""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass, field

from dlt.common.pipeline import LoadInfo

from expectations.gate import GateReport, lake_gate
from expectations.suite_runner import deferred_data_docs
from expectations.suites import TableSuite
from ingestion.lake_views import publish_lake_views
from ingestion.pipelines import (
    FinishedPending,
    finish_pending,
    lake_pipeline,
    landing_pipeline,
    load_options,
    prune_state_history,
)
from regulars import warehouse
from regulars.privacy import suppression
from regulars.settings import Settings


def suites_for(source_name: str) -> dict[str, TableSuite]:
    """The gate's suites of a source: `table_suites()` of expectations/suites/<source>.py, found
    by the source's name, so a new source's suite is one new module there."""
    try:
        module = importlib.import_module(f"expectations.suites.{source_name}")
    except ModuleNotFoundError as missing:
        if missing.name != f"expectations.suites.{source_name}":
            raise
        raise KeyError(
            f"No expectation suites for source {source_name!r}: add "
            f"expectations/suites/{source_name}.py with a table_suites() function."
        ) from None
    return module.table_suites()


@dataclass(frozen=True)
class PromotionResult:
    report: GateReport
    load_info: LoadInfo | None
    # Rows of forgotten guests dropped from landing before the gate read it, per table.
    suppressed_rows: dict[str, int] = field(default_factory=dict)
    # The lake load an interrupted promotion left, finished before this one.
    finished_pending: FinishedPending | None = None


def promote(
    source_name: str, settings: Settings, waive_volume: Collection[str] = ()
) -> PromotionResult:
    """Validate every landed batch not yet promoted and load the passing rows into the lake.

    `waive_volume`: tables whose batch held by the volume rule an operator releases.
    """
    with warehouse.kept_open(settings):
        return _promote(source_name, settings, waive_volume)


def _promote(
    source_name: str, settings: Settings, waive_volume: Collection[str]
) -> PromotionResult:
    report = GateReport()
    suites = suites_for(source_name)
    # Forgotten guests' new rows leave landing before the gate reads it: never lake, nor quarantine.
    suppressed = suppression.purge(settings, source_name, suites)
    landing = landing_pipeline(source_name, settings).dataset()
    lake = lake_pipeline(source_name, settings)
    # First what a crashed promotion left: the gate then sees those batches as promoted, and
    # dlt's `run` below extracts this gate's rows instead of stopping after the old package.
    finished = finish_pending(lake)
    source = lake_gate(
        source_name,
        landing,
        landing_pipeline(source_name, settings).dataset(),
        suites,
        report,
        settings.duckdb_steps_memory_limit,
        lake.dataset(),
        settings.data_docs_dir,
        waive_volume,
    )
    with deferred_data_docs():
        load_info = lake.run(source, **load_options(settings))
    prune_state_history(lake)
    publish_lake_views(lake, settings)
    for table_name in suites:
        report.for_table(table_name)
    return PromotionResult(
        report=report, load_info=load_info, suppressed_rows=suppressed, finished_pending=finished
    )
