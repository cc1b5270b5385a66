"""Reading the landing zone: gzip NDJSON files that the chain's systems (and the collector) drop.

Layout: `<landing>/<stream>/date=YYYY-MM-DD/hour=HH/<stream>-YYYYMMDDTHH-NNNN.ndjson.gz`, by the
hour the data arrived. A file is complete once it is there: writers build it under a temporary
name and rename it, so a reader never sees half a file.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar, NamedTuple

import dlt
import duckdb
import numpy as np
import orjson
import pyarrow as pa
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline
from dlt.sources.filesystem import FileItemDict, filesystem

from ingestion.files_read import unread_files
from ingestion.held_lines import MALFORMED, stand_in_rows, unreadable_key

# Until files were tracked by content, a cursor on modification time chose them, lagged by this
# much so that files written in the same second as the previous run's newest were not skipped.
# An upgraded pipeline takes the files older than its old cursor minus the lag as read.
FILE_LAG_SECONDS = 300

# How a JSON value must look to fit a column of these DuckDB types (others take any value).
JSON_KINDS = {
    "BIGINT": (int,),
    "INTEGER": (int,),
    "BOOLEAN": (bool,),
}


def new_files(bucket_url: str, stream: str):
    """A dlt resource listing the stream's files that no earlier run read."""
    listing = filesystem(bucket_url=bucket_url, file_glob=f"{stream}/**/*.ndjson.gz")
    return listing.with_name(f"{stream}_listing") | unread_files(
        f"{stream}_files", legacy_lag_seconds=FILE_LAG_SECONDS
    )


class UnreadableLine(NamedTuple):
    landing_file: str
    line: int
    reason: str

    @property
    def described(self) -> str:
        return f"{self.landing_file}, line {self.line}: {self.reason}"


def _fits(value, kind: str) -> bool:
    wanted = JSON_KINDS.get(kind.upper())
    if value is None or wanted is None:
        return True
    if wanted == (int,):
        # DuckDB casts "42" to a number, never true or 4.2.
        if isinstance(value, str):
            return value.strip().lstrip("-").isdigit()
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, wanted)


def line_problem(line: bytes, columns: Mapping[str, str]) -> str | None:
    """Why DuckDB's reader would refuse this NDJSON line, in words without its content."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        # orjson's message gives the place (and, for bad bytes, "not valid UTF-8"), never the text.
        return f"not valid JSON ({str(error).split(': line')[0]}, at byte {error.pos})"
    if not isinstance(message, dict):
        return f"a JSON {type(message).__name__}, not an object"
    wrong = [name for name, kind in columns.items() if not _fits(message.get(name), kind)]
    if wrong:
        return "wrong type in field(s) " + ", ".join(
            f"{name} (expected {columns[name]})" for name in wrong
        )
    return None


def split_lines(path: str, good: Path, columns: Mapping[str, str]) -> list[UnreadableLine]:
    """Copy the readable lines of gzip NDJSON `path` to `good`; return the others' places.

    Blank lines are skipped, as DuckDB's reader skips them. A file cut short inside its gzip
    stream (a copy interrupted) keeps what came before and is one unreadable line at the cut.
    """
    landing_file = Path(path).name
    bad: list[UnreadableLine] = []
    number = 0
    with gzip.open(path, "rb") as source, gzip.open(good, "wb", compresslevel=1) as target:
        try:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                problem = line_problem(line, columns)
                if problem is None:
                    target.write(line if line.endswith(b"\n") else line + b"\n")
                else:
                    bad.append(UnreadableLine(landing_file, number, problem))
        except (EOFError, OSError, zlib.error) as error:
            reason = f"the gzip stream ends or breaks here ({error}); the file is incomplete"
            bad.append(UnreadableLine(landing_file, number + 1, reason))
    return bad


def _select(
    connection: duckdb.DuckDBPyConnection,
    paths: list[str],
    select_sql: str,
    columns: Mapping[str, str],
) -> pa.Table:
    raw = connection.read_json(
        paths,
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
    try:
        return connection.execute(query).fetch_arrow_table()
    finally:
        connection.unregister("raw_files")


def unreadable_rows(lines: list[UnreadableLine], schema: pa.Schema, key: str) -> pa.Table:
    """The rows that stand for unreadable lines, in the shape of the stream's other rows."""
    return stand_in_rows(
        schema,
        {
            key: [unreadable_key(line.landing_file, line.line) for line in lines],
            MALFORMED: [line.described for line in lines],
            "_landing_file": [line.landing_file for line in lines],
        },
    )


def read_ndjson(
    items: list[FileItemDict], select_sql: str, columns: Mapping[str, str], key: str
) -> Iterator[pa.Table]:
    """Parse a page of files with DuckDB's JSON reader into Arrow, one table per page.

    `columns` fixes the JSON fields read and their types, so a new or oddly typed field in one
    batch cannot change the shape of the lake; `select_sql` turns them into lake columns and is
    evaluated over a relation named `raw` that also has `_landing_file`, and must give `key`
    and `_malformed_fields`.

    The page is read in one pass. Only when DuckDB refuses it (a truncated line, bytes that are
    not UTF-8, a value of the wrong type: its message names the line but quotes the content) are
    its files read one by one, and a refused file line by line: the lines DuckDB can read land
    as usual, each other one as a row keyed by its file and line, for the gate to hold.
    """
    local_paths = [item.local_file_path or item["file_url"] for item in items]
    if not local_paths:
        return
    with duckdb.connect() as connection:
        connection.execute("set timezone = 'UTC'")
        try:
            table = _select(connection, local_paths, select_sql, columns)
        except duckdb.InvalidInputException:
            table = None
        if table is not None:
            yield table
            return
        for path in local_paths:
            try:
                table = _select(connection, [path], select_sql, columns)
            except duckdb.InvalidInputException:
                table = None
            if table is not None:
                yield table
                continue
            with tempfile.TemporaryDirectory(prefix="regulars-lines-") as folder:
                # The readable lines under the file's own name: `_landing_file` stays true.
                good = Path(folder) / Path(path).name
                bad = split_lines(path, good, columns)
                table = _select(connection, [str(good)], select_sql, columns)
            if bad:
                table = pa.concat_tables([table, unreadable_rows(bad, table.schema, key)])
            yield table


# A page's row numbers, beside its columns while FirstSeen looks for repeats.
PAGE_ROW = "_page_row"


class FirstSeen:
    """Keeps the first row of each key across the pages of one run.

    Within a page the reader's SQL keeps one row per key; across runs the insert-only merge skips
    keys the table already has. Between pages of the same run only this can: dlt's insert-only
    merge does not deduplicate rows of one load among themselves.

    The keys seen are held in an in-memory DuckDB table as 128-bit MD5 digests: 16 bytes a key
    (a year of a large chain's events is millions of keys, about 1 GB as Python strings), and a
    page is checked with one hash join rather than against a set rebuilt per page, which made
    the whole run quadratic in its pages. Two distinct keys share a digest with a probability
    around n^2 / 2^129: for 10^8 keys, below 10^-22.
    """

    def __init__(self, key: str):
        # The key is a column name of Regulars' own reader SQL, never input.
        self.key = f'page."{key}"'
        self.seen = duckdb.connect()
        self.seen.execute("create table seen (digest uhugeint)")

    def __call__(self, table: pa.Table) -> pa.Table:
        # Most pages hold a repeat or two (an SDK's retry lands in a later hour's file). The
        # repeats come back as row numbers and the page is filtered in Arrow: a page copied
        # through DuckDB and back, JSON text and all, cost more than the probe itself.
        page = table.append_column(PAGE_ROW, pa.array(np.arange(table.num_rows)))
        self.seen.register("page", page)
        try:
            # Built on the page, probing the keys seen.
            repeats = self.seen.execute(
                f"select page.{PAGE_ROW} from page semi join seen "
                f"on seen.digest = md5_number({self.key})"
            ).fetchnumpy()[PAGE_ROW]
            self.seen.execute(
                f"insert into seen select md5_number({self.key}) from page "
                f"where {self.key} is not null"
            )
        finally:
            self.seen.unregister("page")
        if len(repeats) == 0:
            return table
        kept = np.ones(table.num_rows, dtype=bool)
        kept[repeats] = False
        return table.filter(kept)


# The reader's select list is the stream's schema: a field the producers add is not read (it stays
# in the landing file, and properties/context/traits are JSON, so new keys there need no column).
# So a new column or a changed type can only come from a change to Regulars' own reader: stop
# the load and say so rather than let the lake drift.
LANDING_STREAM_CONTRACT = {"tables": "evolve", "columns": "freeze", "data_type": "freeze"}

# A landing-zone table's key lands once, ever: the validation gate appends its promoted rows to
# the lake rather than merging them. A table hint of its own, not read off the write disposition,
# which is an append on a table's first load (append_where_empty).
KEY_LANDS_ONCE = "x-key-lands-once"


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
        for table in read_ndjson(items, select_sql, fields, key):
            yield key_not_null(first_seen(table), key)

    if any(hints.get("data_type") == "json" for hints in (columns or {}).values()):
        _DeclaredJsonFromText.add(table_name)
    resource = new_files(bucket_url, stream) | rows
    return resource.apply_hints(additional_table_hints={KEY_LANDS_ONCE: True})


def append_where_empty(source: DltSource, pipeline: Pipeline) -> list[str]:
    """Land into a table that has no rows yet by appending; returns those tables.

    An insert-only merge stages the load, then copies it into the table, skipping keys the table
    has: into an empty table, a second copy of the whole load for nothing (30 s of a 100,000-
    guest chain's first year of events). The load's keys are unique already (the reader's SQL
    within a page, FirstSeen across pages), so appending leaves the table the merge would; the
    runs after merge again, as the resource declares.
    """
    tables = [
        resource
        for resource in source.resources.selected.values()
        if resource.compute_table_schema().get(KEY_LANDS_ONCE)
    ]
    empty = [resource for resource in tables if not _holds_rows(pipeline, resource.table_name)]
    for resource in empty:
        resource.apply_hints(write_disposition="append")
    return [resource.table_name for resource in empty]


def _holds_rows(pipeline: Pipeline, table: str) -> bool:
    """Whether the destination's table has a row; "no such table" is no. Any other error (the
    warehouse locked, a connection refused) fails the landing run here, before it loads, rather
    than guess: a merge is right either way, an append only into an empty table."""
    try:
        with pipeline.sql_client() as client:
            name = client.make_qualified_table_name(table)
            with client.execute_query(f"select 1 from {name} limit 1") as cursor:
                return cursor.fetchone() is not None
    except DatabaseUndefinedRelation:
        return False


def key_not_null(table: pa.Table, key: str) -> pa.Table:
    """The key field as dlt's schema has it (a primary key is not null), so dlt does not warn on
    every page that the Arrow schema says otherwise. A page with a null key is left as read."""
    index = table.schema.get_field_index(key)
    if index < 0 or table.column(index).null_count:
        return table
    return table.cast(table.schema.set(index, table.schema.field(index).with_nullable(False)))


class _DeclaredJsonFromText(logging.Filter):
    """Drops dlt's per-page warning that a declared `json` column arrives as Arrow text.

    DuckDB hands the JSON fields over as strings and Arrow has no JSON type dlt reads, so Arrow
    always says text; declaring `json` is how the lake column becomes JSON, which is what dlt's
    warning ("dlt schema hints were kept") says happens. Other resources' warnings pass.
    """

    resources: ClassVar[set[str]] = set()

    @classmethod
    def add(cls, resource: str) -> None:
        if not cls.resources:
            logging.getLogger("dlt").addFilter(cls())
        cls.resources.add(resource)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(
            message.startswith(f"In resource: {name}, when merging arrow schema with dlt schema")
            for name in self.resources
        )
