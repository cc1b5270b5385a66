"""Reading the landing zone: gzip NDJSON files that the chain's systems (and the collector) drop.

Layout: `<landing>/<stream>/date=YYYY-MM-DD/hour=HH/<stream>-YYYYMMDDTHH-NNNN.ndjson.gz`, by the
hour the data arrived. A file is complete once it is there: writers build it under a temporary
name and rename it, so a reader never sees half a file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources.filesystem import FileItemDict, filesystem

# Files written in the same second as the previous run's newest file must not be skipped; the
# readers' merge on each record's own id makes reading one twice harmless.
FILE_LAG_SECONDS = 300


def new_files(bucket_url: str, stream: str):
    """A dlt resource listing the stream's files not listed by an earlier run."""
    return filesystem(
        bucket_url=bucket_url,
        file_glob=f"{stream}/**/*.ndjson.gz",
        incremental=dlt.sources.incremental("modification_date", lag=FILE_LAG_SECONDS),
    ).with_name(f"{stream}_files")


def read_ndjson(
    items: list[FileItemDict], select_sql: str, columns: Mapping[str, str]
) -> Iterator[pa.Table]:
    """Parse a page of files with DuckDB's JSON reader into Arrow, one table per page.

    `columns` fixes the JSON fields read and their types, so a new or oddly typed field in one
    batch cannot change the shape of the lake; `select_sql` turns them into lake columns and is
    evaluated over a relation named `raw` that also has `_landing_file`.
    """
    local_paths = [item.local_file_path or item["file_url"] for item in items]
    if not local_paths:
        return
    with duckdb.connect() as connection:
        connection.execute("set timezone = 'UTC'")
        raw = connection.read_json(
            local_paths,
            format="newline_delimited",
            columns=dict(columns),
            compression="gzip",
            filename=True,
        )
        connection.register("raw_files", raw)
        query = select_sql.replace(
            "{raw}",
            "(select *, regexp_extract(filename, '[^/]+$') as _landing_file from raw_files) as raw",
        )
        yield connection.execute(query).fetch_arrow_table()


class FirstSeen:
    """Keeps the first row of each key across the pages of one run.

    Within a page the reader's SQL keeps one row per key; across runs the insert-only merge skips
    keys the table already has. Between pages of the same run only this can: dlt's insert-only
    merge does not deduplicate rows of one load among themselves.
    """

    def __init__(self, key: str):
        self.key = key
        self.seen: set[str] = set()

    def __call__(self, table: pa.Table) -> pa.Table:
        keys = table.column(self.key)
        if self.seen:
            fresh = pc.invert(pc.is_in(keys, value_set=pa.array(list(self.seen), pa.string())))
            table = table.filter(fresh)
            keys = table.column(self.key)
        self.seen.update(keys.to_pylist())
        return table


# The reader's select list is the stream's schema: a field the producers add is not read (it stays
# in the landing file, and properties/context/traits are JSON, so new keys there need no column).
# So a new column or a changed type can only come from a change to Regulars' own reader: stop
# the load and say so rather than let the lake drift.
LANDING_STREAM_CONTRACT = {"tables": "evolve", "columns": "freeze", "data_type": "freeze"}


def landing_table(
    bucket_url: str,
    stream: str,
    table_name: str,
    key: str,
    fields: Mapping[str, str],
    select_sql: str,
    columns: Mapping[str, dict] | None = None,
):
    """A dlt resource landing one stream's new files as one table, once per `key`.

    Within a page of files `select_sql` keeps one row per key, across the pages of this run
    `FirstSeen` does, and across runs the insert-only merge skips keys the table already has.
    """
    first_seen = FirstSeen(key)

    @dlt.transformer(
        name=table_name,
        primary_key=key,
        write_disposition={"disposition": "merge", "strategy": "insert-only"},
        columns=dict(columns or {}),
        schema_contract=LANDING_STREAM_CONTRACT,
    )
    def rows(items: list[FileItemDict]) -> Iterator[pa.Table]:
        for table in read_ndjson(items, select_sql, fields):
            yield first_seen(table)

    return new_files(bucket_url, stream) | rows
