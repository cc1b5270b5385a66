"""On the filesystem destination, publish the Parquet lake to the warehouse as views.

dbt, the summary and BI tools read `raw_<source>.<table>` whichever destination holds the lake.
On DuckDB those are dlt's own tables. On the filesystem destination dlt appends a Parquet file
per load (its merge needs Delta or Iceberg, which DuckDB cannot read offline), so a re-pulled or
updated row exists once per load that carried it: each view keeps the newest version per primary
key, which is what dlt's merge would have left in a table. Tables without a key (quarantine, the
gate's audit) are logs and show every row.

Views hold no data: BI readers keep reading the files while a pipeline writes new ones, and the
warehouse file stays small.
"""

from __future__ import annotations

import duckdb
from dlt.common.schema.utils import get_columns_names_with_prop
from dlt.pipeline.pipeline import Pipeline

from regulars.settings import Settings

# Newest first: the lake load, then the landing batch it promoted (several per lake load).
NEWEST_FIRST = ("_dlt_load_id", "_landing_load_id")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def view_sql(dataset: str, table: str, files: str, primary_key: list[str], columns: set) -> str:
    """The `create view` statement for one lake table stored as Parquet files under `files`."""
    scan = f"read_parquet('{files}', union_by_name = true, hive_partitioning = false)"
    name = f"{_quote(dataset)}.{_quote(table)}"
    if not primary_key:
        return f"create or replace view {name} as select * from {scan}"
    order = ", ".join(f"{_quote(column)} desc" for column in NEWEST_FIRST if column in columns)
    partition = ", ".join(_quote(column) for column in primary_key)
    return (
        f"create or replace view {name} as select * from {scan} "
        f"qualify row_number() over (partition by {partition} order by {order}) = 1"
    )


def publish_lake_views(pipeline: Pipeline, settings: Settings) -> list[str]:
    """Create or refresh one view per table the pipeline has loaded; returns the views' names."""
    if settings.destination != "filesystem":
        return []
    client = pipeline.destination_client()
    statements = {}
    for table in pipeline.default_schema.data_tables():
        table_name = table["name"]
        if not client.list_table_files(table_name):
            continue  # declared but never loaded: no files, nothing to read
        # A local lake is read by path; a bucket by its URL (DuckDB needs httpfs for s3/gcs).
        directory = client.get_table_dir(table_name, remote=not client.is_local_filesystem)
        statements[f"{pipeline.dataset_name}.{table_name}"] = view_sql(
            pipeline.dataset_name,
            table_name,
            directory.rstrip("/") + "/*.parquet",
            get_columns_names_with_prop(table, "primary_key"),
            set(table["columns"]),
        )
    if statements:
        with duckdb.connect(str(settings.warehouse_path)) as connection:
            connection.execute(f"create schema if not exists {_quote(pipeline.dataset_name)}")
            for statement in statements.values():
                connection.execute(statement)
    return list(statements)
