"""When a release changes a column's declared type, the tables that hold the old type start over.

Landing tables freeze their data types (a value that does not fit is a bug or an API change, not
a variant column), so a column whose declared type changes between releases (GA4's keyEvents, a
float that was landed as bigint) would stop every later load of a lake built before. dlt never
alters a column's type in place, and on the Parquet lake it could not; what it can do is drop a
resource's tables and state (`dlt pipeline drop`), so the next run re-extracts it from the start.
That is what happens here, before a run, for every resource whose stored column type differs from
the type its source declares now: in the landing dataset, and the lake table the gate promotes
into, so landing and lake restart together. Only sources that can re-read their history (an API,
a folder of files) declare column types; for them starting over costs a re-pull, not data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dlt.extract.source import DltSource
from dlt.pipeline.helpers import pipeline_drop
from dlt.pipeline.pipeline import Pipeline

from ingestion.pipelines import lake_pipeline, landing_pipeline
from regulars.settings import Settings


@dataclass(frozen=True)
class RetypedColumn:
    table: str
    column: str
    stored: str
    declared: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} is {self.stored} in the lake, {self.declared} now"


def declared_types(source: DltSource) -> dict[str, dict[str, str]]:
    """table -> column -> data_type, as the source's resources declare them."""
    declared: dict[str, dict[str, str]] = {}
    for resource in source.resources.selected.values():
        columns = resource.columns
        if not isinstance(columns, Mapping):  # a callable hint: decided per item, nothing fixed
            continue
        table = resource.table_name if isinstance(resource.table_name, str) else resource.name
        declared[table] = {
            name: hint["data_type"] for name, hint in columns.items() if hint.get("data_type")
        }
    return declared


def retyped_columns(pipeline: Pipeline, declared: dict[str, dict[str, str]]) -> list[RetypedColumn]:
    if not pipeline.default_schema_name:
        return []  # never ran: nothing stored to disagree with
    tables: dict[str, Any] = pipeline.default_schema.tables
    changed = []
    for table, columns in declared.items():
        stored = tables.get(table, {}).get("columns", {})
        for column, declared_type in columns.items():
            stored_type = stored.get(column, {}).get("data_type")
            if stored_type and stored_type != declared_type:
                changed.append(RetypedColumn(table, column, stored_type, declared_type))
    return changed


def restart_retyped_tables(
    source_name: str, source: DltSource, settings: Settings
) -> list[RetypedColumn]:
    """Drop the landing and lake tables (and landing state) of every retyped resource.

    Returns what changed, for the caller to say; empty when every stored type is the declared one.
    """
    landing = landing_pipeline(source_name, settings)
    changed = retyped_columns(landing, declared_types(source))
    if not changed:
        return []
    tables = sorted({column.table for column in changed})
    pipeline_drop(landing, resources=tables)()
    lake = lake_pipeline(source_name, settings)
    if lake.default_schema_name:
        lake_tables = [table for table in tables if table in lake.default_schema.tables]
        if lake_tables:
            pipeline_drop(lake, resources=lake_tables)()
    return changed


def restart_message(source_name: str, changed: list[RetypedColumn]) -> str:
    columns = "; ".join(str(column) for column in changed)
    return (
        f"{source_name}: {columns}. This release declares a new type, so those tables start over:"
        " their landing and lake tables were dropped and this run re-reads them from the start."
    )
