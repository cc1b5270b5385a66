"""dlt pipelines bound to the warehouse: one landing pipeline per source.

The pipeline name fixes where dlt keeps its state (incremental cursors) and the dataset fixes
where rows land. Both are derived from the source name, so adding a source adds no wiring.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import dlt
from dlt.common.schema.typing import LOADS_TABLE_NAME, PIPELINE_STATE_TABLE_NAME
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.pipeline.pipeline import Pipeline

from regulars import warehouse
from regulars.settings import Settings


def landing_dataset(source_name: str) -> str:
    return f"landing_{source_name}"


def lake_dataset(source_name: str) -> str:
    return f"raw_{source_name}"


def warehouse_destination(settings: Settings):
    """Where landing and lake datasets live: the embedded DuckDB file, or Parquet files.

    On the filesystem destination a dataset is a folder of Parquet files per table; dlt appends
    there (merge needs a table format DuckDB cannot read offline), and `ingestion.lake_views`
    publishes the newest version of each row to the warehouse, so dbt reads the same relations.
    """
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    if settings.destination == "filesystem":
        return dlt.destinations.filesystem(bucket_url=settings.lake_bucket_url)
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    # dlt applies `global_config` with SET GLOBAL after connecting, as regulars.warehouse does.
    # Not the spill folder: dlt sets it again on each new pool, which DuckDB refuses once this
    # process's warehouse has spilled; dlt's loads spill beside the file, DuckDB's default.
    credentials = DuckDbCredentials(
        str(settings.warehouse_path),
        global_config={"memory_limit": settings.duckdb_steps_memory_limit},
    )
    return dlt.destinations.duckdb(credentials=credentials)


def landing_held_open(settings: Settings) -> AbstractContextManager:
    """Around a landing load: the warehouse kept open while dlt loads into it
    (`regulars.warehouse.kept_open`); nothing on the filesystem destination, which lands files."""
    if settings.destination == "filesystem":
        return nullcontext()
    return warehouse.kept_open(settings)


def load_options(settings: Settings) -> dict:
    """Arguments for every `pipeline.run` of Regulars, whichever destination is configured.

    The filesystem destination writes JSONL by default; the lake is Parquet so that DuckDB, BI
    tools and Spark read it typed and columnar.
    """
    return {"loader_file_format": "parquet"} if settings.destination == "filesystem" else {}


def stamp_load_ids() -> None:
    """Make dlt write `_dlt_load_id` on Arrow loads too (it does for JSON rows by default).

    The validation gate finds each landed batch by its load id, so this is not a preference:
    set in code so that it holds whichever directory a pipeline is started from.
    """
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True


def keep_no_copies() -> None:
    """Make dlt delete what it copied of the rows once a load is done.

    By default dlt keeps each package's job files under `<pipeline>/load/loaded/<load id>/
    completed_jobs` (every row ever loaded, guests' contacts included, read by nothing again and
    out of `forget`'s reach) and the `<dataset>_staging` tables merges stage rows in. The
    package's state and schema files stay: dlt reads them, and they hold no rows.
    `.dlt/config.toml` says the same; set here too so that it holds whichever directory a
    pipeline is started from.
    """
    dlt.config["load.delete_completed_jobs"] = True
    dlt.config["load.truncate_staging_dataset"] = True


def leave_interrupts_to_the_caller() -> None:
    """Make dlt let Ctrl-C (SIGINT, SIGTERM) through while it normalises and loads.

    By default dlt holds the signal until its next check and forgets it if none comes before
    the step ends: a Ctrl-C during a landing either failed that step alone (the run went on with
    the others) or was lost, and the run went on to the end. Dagster stops a run on the signal,
    and a load cut short is finished by the next run (dlt keeps the package), as after a crash.
    """
    dlt.config["runtime.intercept_signals"] = False


def landing_pipeline(source_name: str, settings: Settings) -> Pipeline:
    """Loads a source as it is into `landing_<source>`; nothing downstream reads it directly."""
    stamp_load_ids()
    keep_no_copies()
    leave_interrupts_to_the_caller()
    return dlt.pipeline(
        pipeline_name=f"{source_name}_landing",
        pipelines_dir=str(settings.dlt_pipelines_dir),
        destination=warehouse_destination(settings),
        dataset_name=landing_dataset(source_name),
        # A progress line every 10 s on long loads; no psutil memory stats (not a dependency).
        progress=dlt.progress.log(log_period=10.0, dump_system_stats=False),
    )


def lake_pipeline(source_name: str, settings: Settings) -> Pipeline:
    """Loads the rows the validation gate accepted into `raw_<source>`, the lake dbt reads."""
    keep_no_copies()
    leave_interrupts_to_the_caller()
    return dlt.pipeline(
        pipeline_name=f"{source_name}_lake",
        pipelines_dir=str(settings.dlt_pipelines_dir),
        destination=warehouse_destination(settings),
        dataset_name=lake_dataset(source_name),
    )


# dlt's filesystem destination keeps the newest 100 state files (`max_state_files`); an SQL
# destination keeps every version. A landing reader's state lists each file it has read, so
# each daily version is larger than the last: at 100,000 guests, 650 KB a row for the events
# after a year, hundreds of MB of old versions a year if none is dropped.
STATE_VERSIONS_KEPT = 10


def prune_state_history(pipeline: Pipeline, keep: int = STATE_VERSIONS_KEPT) -> int:
    """Drop the pipeline's state versions in the warehouse older than its newest `keep` whose
    load completed; returns how many went.

    dlt restores a pipeline from the newest state of a completed load, so the kept ones are
    enough; a version whose load did not complete is left alone, as dlt's filesystem
    destination does. Nothing to do on the filesystem destination, which prunes its own.
    """
    if pipeline.destination.destination_name == "filesystem":
        return 0
    try:
        with pipeline.sql_client() as client:
            states = client.make_qualified_table_name(PIPELINE_STATE_TABLE_NAME)
            loads = client.make_qualified_table_name(LOADS_TABLE_NAME)
            older = (
                f"select s._dlt_load_id from {states} as s join {loads} as l"
                " on l.load_id = s._dlt_load_id"
                " where s.pipeline_name = %s and l.status = 0"
                " order by l.load_id desc offset %s"
            )
            with client.execute_query(
                f"delete from {states} where pipeline_name = %s and _dlt_load_id in ({older})",
                pipeline.pipeline_name,
                pipeline.pipeline_name,
                keep,
            ) as cursor:
                return cursor.fetchone()[0]
    except DatabaseUndefinedRelation:
        return 0  # nothing loaded yet


@dataclass(frozen=True)
class FinishedPending:
    """What the load packages an interrupted run left behind brought, once loaded now."""

    dataset: str
    load_ids: list[str]
    rows: dict[str, int]  # table -> rows those loads wrote

    def describe(self, pipeline_role: str) -> str:
        tables = ", ".join(
            f"{self.dataset}.{table} {rows} row{'s' if rows != 1 else ''}"
            for table, rows in self.rows.items()
        )
        return (
            f"Finished the {pipeline_role} load an interrupted run left "
            f"({', '.join(self.load_ids)}): {tables or 'no rows'}."
        )


def finish_pending(pipeline: Pipeline) -> FinishedPending | None:
    """Load what an interrupted run extracted or normalized but did not load, and count it.

    dlt's `run` would do it too, then stop without extracting the data it was given: this run
    would report nothing and leave the new data to the next one. Finished here first, the run
    goes on to the new data, and the rows are counted by load id in the destination.
    """
    if not pipeline.has_pending_data:
        return None
    info = pipeline.run()
    if info is None:
        return None
    load_ids = list(info.loads_ids)
    dataset = pipeline.dataset()
    rows: dict[str, int] = {}
    for load_id in load_ids:
        for table, count in dataset.row_counts(load_id=load_id).fetchall():
            if count:
                rows[table] = rows.get(table, 0) + count
    return FinishedPending(pipeline.dataset_name, load_ids, rows)
