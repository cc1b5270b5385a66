"""When a table's rows would come out differently now, its tables start over.

Two things change what a resource's rows are, after they have landed:

- A release changes a column's declared type. Landing tables freeze their data types (a value
  that does not fit is a bug or an API change, not a variant column), so a column whose declared
  type changes between releases (GA4's keyEvents, a float that was landed as bigint) would stop
  every later load of a lake built before. dlt never alters a column's type in place, and on the
  Parquet lake it could not.
- The chain changes a setting that decides what a file's rows say: the order history's time zone,
  its amounts in cents, its separators or its column mapping. A file is read once; without this,
  the rows already landed kept the old reading (a chain that set its time zone after a first run
  in UTC kept every imported order seven hours off, and its customer marts with them). The
  source declares what it reads with as a table hint (READ_WITH_HINT), which the pipeline's
  schema keeps with the table.

Either way, what dlt can do is drop a resource's tables and state (`dlt pipeline drop`), so the
next run re-extracts it from the start. That is what happens here, before a run, in the landing
dataset, and the lake table the gate promotes into, so landing and lake restart together. Only
sources that can re-read their history (an API, a folder of files) declare column types or what
they read with; for them starting over costs a re-pull, not data. A folder of files only while
it still holds every file read before: when one is gone, reading again would lose its rows, so
the load stops with their names (FilesGone) and nothing is dropped. Quarantined rows stay, and a
re-read row that now passes supersedes its held one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dlt.extract.source import DltSource
from dlt.pipeline.helpers import pipeline_drop
from dlt.pipeline.pipeline import Pipeline
from dlt.sources.filesystem import filesystem

from ingestion.files_read import STATE_KEY as FILES_READ_KEY
from ingestion.pipelines import lake_pipeline, landing_pipeline
from ingestion.source_spec import SourceConfigError
from regulars.settings import Settings


@dataclass(frozen=True)
class RetypedColumn:
    table: str
    column: str
    stored: str
    declared: str

    def __str__(self) -> str:
        return (
            f"{self.table}.{self.column} is {self.stored} in the lake, {self.declared} now (this "
            "release declares a new type)"
        )


# The table hint under which a source declares the settings its rows were read with.
READ_WITH_HINT = "x-regulars-read-with"
# Under it, where the files are (bucket_url, file_glob): not how they are read, so not compared,
# but where to look that every file read before is still there to be read again.
FILES_AT = "files_at"


@dataclass(frozen=True)
class ReadDifferently:
    table: str
    # setting -> (what the landed rows were read with, what the settings say now)
    settings: dict[str, tuple[Any, Any]]
    files_at: dict[str, str]

    def __str__(self) -> str:
        then = ", ".join(f"{name} = {before!r}" for name, (before, _) in self.settings.items())
        now = ", ".join(f"{name} = {after!r}" for name, (_, after) in self.settings.items())
        return f"{self.table} was read with {then}; the settings now say {now}"


def read_differently(pipeline: Pipeline, source: DltSource) -> list[ReadDifferently]:
    """The tables whose landed rows were read with other settings than the source declares."""
    if not pipeline.default_schema_name:
        return []
    tables: dict[str, Any] = pipeline.default_schema.tables
    changed = []
    for resource in source.resources.selected.values():
        if not isinstance(resource.table_name, str):
            continue  # a table decided per item: no hints to compute before there are items
        hints = resource.compute_table_schema()
        declared = hints.get(READ_WITH_HINT)
        stored = tables.get(hints["name"], {}).get(READ_WITH_HINT)
        if declared is None or stored is None or stored == declared:
            continue
        settings = {
            name: (stored.get(name), declared.get(name))
            for name in sorted((set(stored) | set(declared)) - {FILES_AT})
            if stored.get(name) != declared.get(name)
        }
        if settings:
            changed.append(ReadDifferently(hints["name"], settings, declared.get(FILES_AT, {})))
    return changed


class FilesGone(SourceConfigError):
    """Files read before are no longer where the source reads: reading again would lose them."""


def files_gone(pipeline: Pipeline, source_name: str, files_at: dict[str, str]) -> list[str]:
    """The files recorded as read (ingestion/files_read.py) that the folder no longer lists."""
    resources = pipeline.state.get("sources", {}).get(source_name, {}).get("resources", {})
    read = {path for state in resources.values() for path in state.get(FILES_READ_KEY, {})}
    if not read:
        return []
    listing = filesystem(bucket_url=files_at["bucket_url"], file_glob=files_at["file_glob"])
    there = {item["relative_path"] for item in listing}
    return sorted(read - there)


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


def restart_changed_tables(
    source_name: str, source: DltSource, settings: Settings
) -> list[RetypedColumn | ReadDifferently]:
    """Drop the landing and lake tables (and landing state) of every resource that is retyped or
    read differently.

    Returns what changed, for the caller to say; empty when nothing did.
    """
    landing = landing_pipeline(source_name, settings)
    changed = [
        *retyped_columns(landing, declared_types(source)),
        *read_differently(landing, source),
    ]
    if not changed:
        return []
    for change in changed:
        if isinstance(change, ReadDifferently) and (
            gone := files_gone(landing, source_name, change.files_at)
        ):
            shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            raise FilesGone(
                f"{source_name}: {change}. Reading every file again would lose what was landed "
                f"from {len(gone)} file(s) no longer in {change.files_at['bucket_url']}: "
                f"{shown}. Nothing was dropped: put them back to read every file with the new "
                "settings, or set the settings back."
            )
    tables = sorted({change.table for change in changed})
    # Re-reading means reading every file again: what the source's readers recorded as read (a
    # resource's state, e.g. the order history's list of files) goes with the tables.
    read_again = any(isinstance(change, ReadDifferently) for change in changed)
    pipeline_drop(landing, resources=tables, state_paths=["resources.*"] if read_again else ())()
    lake = lake_pipeline(source_name, settings)
    if lake.default_schema_name:
        lake_tables = [table for table in tables if table in lake.default_schema.tables]
        if lake_tables:
            pipeline_drop(lake, resources=lake_tables)()
    return changed


def restart_message(source_name: str, changed: list[RetypedColumn | ReadDifferently]) -> str:
    reasons = "; ".join(str(change) for change in changed)
    return (
        f"{source_name}: {reasons}. So those tables start over: their landing and lake tables "
        "were dropped and this run re-reads them from the start."
    )
