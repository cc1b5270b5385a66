"""dlt pipelines bound to the warehouse: one landing pipeline per source.

The pipeline name fixes where dlt keeps its state (incremental cursors) and the dataset fixes
where rows land. Both are derived from the source name, so adding a source adds no wiring.
"""

from __future__ import annotations

import dlt
from dlt.pipeline.pipeline import Pipeline

from regulars.settings import Settings


def landing_dataset(source_name: str) -> str:
    return f"landing_{source_name}"


def lake_dataset(source_name: str) -> str:
    return f"raw_{source_name}"


def warehouse_destination(settings: Settings):
    """The embedded DuckDB file; every pipeline of a run writes to the same one."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(credentials=str(settings.warehouse_path))


def stamp_load_ids() -> None:
    """Make dlt write `_dlt_load_id` on Arrow loads too (it does for JSON rows by default).

    The validation gate finds each landed batch by its load id, so this is not a preference:
    set in code so that it holds whichever directory a pipeline is started from.
    """
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True


def landing_pipeline(source_name: str, settings: Settings) -> Pipeline:
    """Loads a source as it is into `landing_<source>`; nothing downstream reads it directly."""
    stamp_load_ids()
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
    return dlt.pipeline(
        pipeline_name=f"{source_name}_lake",
        pipelines_dir=str(settings.dlt_pipelines_dir),
        destination=warehouse_destination(settings),
        dataset_name=lake_dataset(source_name),
    )
