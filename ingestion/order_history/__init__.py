"""Order history from another system (an old POS, say): CSV or Parquet files of past orders.

Reads every file matching `file_glob` under `bucket_url` (a local folder or any fsspec URL) that
it has not read before (by path and content, `ingestion.files_read`), maps the file's columns to
Regulars fields with `column_mapping` from config, converts types, and lands one row per order
line of the file. Only customer id, order date and amount must be mapped; order id, quantity,
store and channel are kept when mapped. A value that does not convert, or an amount whose value
depends on the separator convention, stops the load with an error naming the file, line and
column: a history import is a one-off that a person fixes and re-runs, so a silently skipped row
would be a silently wrong lifetime value. A line that is not a row (wrong column count, bytes
not in the file's encoding) and a repeated order id land as rows the gate holds, with file, line
and reason; the rows read from each file must equal the rows landed and held.
"""

from __future__ import annotations

import bisect
import functools
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.sources import DltSource
from dlt.sources.filesystem import FileItemDict, filesystem

from ingestion.files_read import unread_files
from ingestion.landing_zone import key_not_null
from ingestion.order_history.helpers import (
    ColumnMapping,
    Separators,
    convert,
    minor_unit_digits,
    reconcile,
    unreadable_rows,
)
from ingestion.order_history.settings import (
    DEFAULT_DELIMITER,
    DEFAULT_FILE_GLOB,
    ENCODINGS,
    ISO8601,
    REQUIRED_FIELDS,
    SCHEMA_CONTRACT,
)
from ingestion.source_spec import Source, SourceConfigError, folder_present, resolvable
from ingestion.starting_over import FILES_AT, READ_WITH_HINT
from regulars.settings import Settings, load_chain

SOURCE_NAME = "order_history"
# DuckDB's names for a CSV line that is not a row, in words for the person fixing the file (its
# own messages can quote the line, which holds a phone number).
REJECTED_LINES = {
    "INVALID ENCODING": (
        "bytes that are not in the file's encoding: save the file as UTF-8, or set "
        "sources.order_history.encoding (latin-1 reads any byte)"
    ),
    "UNQUOTED VALUE": "a quote inside a value that is not quoted",
    "LINE SIZE OVER MAXIMUM": "a line longer than DuckDB's maximum line size",
}
COLUMN_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


@dataclass
class ReadFile:
    """A file's rows as text (CSV) or as stored (Parquet), each row's line, the lines refused."""

    table: pa.Table
    lines: list[int] | None = None
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _rejection(error_type: str, message: str) -> str:
    counts = COLUMN_COUNT.search(message or "")
    if counts:
        expected, found = counts.groups()
        return f"{found} columns where the header has {expected}"
    return REJECTED_LINES.get(error_type, error_type.lower())


def row_lines(rows: pa.Table, blank: set[int], rejected: set[int]) -> list[int]:
    """Each row's line in the file: DuckDB skips the header, blank lines and refused lines, and
    says nothing of the lines of the rows it keeps. A row whose quoted value holds line breaks
    spans more than one line."""
    breaks = [pc.fill_null(pc.count_substring(column, "\n"), 0) for column in rows.columns]
    spans = pc.add(functools.reduce(pc.add, breaks, pa.scalar(0, pa.int32())), 1).to_pylist()
    lines, line = [], 2
    for span in spans:
        while line in blank or line in rejected:
            line += 1
        lines.append(line)
        line += span
    return lines


def read_csv(path: str, delimiter: str = DEFAULT_DELIMITER, encoding: str = "utf-8") -> ReadFile:
    """Every value as text; lines that are not rows of the file are set aside with the reason."""
    with duckdb.connect() as connection:
        rows = connection.sql(
            "select * from read_csv(?, header = true, delim = ?, quote = '\"', escape = '\"', "
            "encoding = ?, all_varchar = true, strict_mode = true, store_rejects = true)",
            params=[path, delimiter, encoding],
        ).fetch_arrow_table()
        # DuckDB's line number leaves out the line breaks inside quoted values before it, so
        # the line is found by where it starts (a position that can fall on a blank line before
        # it: a refused line is never blank).
        refused = connection.sql(
            "select line_byte_position, min(error_type), min(error_message) from reject_errors "
            "group by line_byte_position order by line_byte_position"
        ).fetchall()
    data = Path(path).read_bytes()
    blank = {number for number, line in enumerate(data.split(b"\n"), 1) if not line.strip()}
    # Where each line ends, found once: counting the breaks before each refused line again was
    # quadratic (88 s for a 72,000-line file read with the wrong delimiter, every line refused).
    breaks = [found.start() for found in re.finditer(b"\n", data)]
    rejected = []
    for start, kind, message in refused:
        line = bisect.bisect_left(breaks, start) + 1
        while line in blank:
            line += 1
        rejected.append((line, _rejection(kind, message)))
    return ReadFile(rows, row_lines(rows, blank, {line for line, _ in rejected}), rejected)


def read_file(
    item: FileItemDict, delimiter: str = DEFAULT_DELIMITER, encoding: str = "utf-8"
) -> ReadFile:
    """The file, from where it is: DuckDB reads a local path, a bucket's file is copied first."""
    if item["file_name"].endswith(".parquet"):
        with item.open() as handle:
            return ReadFile(pq.read_table(handle))
    if item.local_file_path:
        return read_csv(item.local_file_path, delimiter, encoding)
    with tempfile.TemporaryDirectory(prefix="regulars-order-history-") as folder:
        local = Path(folder) / item["file_name"]
        local.write_bytes(item.read_bytes())
        return read_csv(str(local), delimiter, encoding)


def csv_dialect(delimiter: str, encoding: str) -> tuple[str, str]:
    """The delimiter and encoding as DuckDB takes them, or the settings to write instead."""
    known = encoding.strip().lower().replace("_", "-")
    known = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1"}.get(known, known)
    problems = []
    if len(delimiter) != 1 or delimiter in ('"', "\n", "\r"):
        problems.append(
            f"delimiter = {delimiter!r} is not one character other than a quote or a line break "
            '(",", ";", "\\t" or "|")'
        )
    if known not in ENCODINGS:
        problems.append(f"encoding = {encoding!r} is not one of {', '.join(ENCODINGS)}")
    if problems:
        raise SourceConfigError(
            f"[sources.order_history] in .dlt/config.toml: {'; '.join(problems)}."
        )
    return delimiter, known


@dlt.source(name=SOURCE_NAME)
def order_history_source(
    bucket_url: str = dlt.config.value,
    # Not `columns`: dlt resolves a config argument from the environment before any toml file,
    # down to the bare name, and shells and test runners export COLUMNS (the terminal width).
    column_mapping: Mapping[str, str] = dlt.config.value,
    file_glob: str = DEFAULT_FILE_GLOB,
    date_format: str = ISO8601,
    # The zone of the file's wall-clock times; unset, the chain's (`[chain] timezone`).
    timezone: str | None = None,
    # True when the file's amounts are in the currency's minor unit (cents): `[chain] currency`
    # says how many digits that is.
    amounts_in_minor_units: bool = False,
    # How the file writes numbers: "." or "," as decimal separator, and the thousands separator
    # ("." "," " " "'" or "" for none). Unset, an amount like 25.500 or 1,250 is refused.
    decimal_separator: str | None = None,
    thousands_separator: str | None = None,
    # CSV files only: the column separator and the text encoding (utf-8 or latin-1).
    delimiter: str = DEFAULT_DELIMITER,
    encoding: str = "utf-8",
) -> DltSource:
    """Past orders from files, mapped to customer_id, ordered_at, amount (+ optional)."""
    # A wrong mapping fails here, before any file is read.
    mapping = ColumnMapping.from_config(column_mapping)
    chain = load_chain()
    timezone = timezone or chain.timezone
    digits = minor_unit_digits(chain.currency) if amounts_in_minor_units else 0
    separators = Separators.from_config(decimal_separator, thousands_separator)
    delimiter, encoding = csv_dialect(delimiter, encoding)
    listing = filesystem(bucket_url=bucket_url, file_glob=file_glob).with_name("listing")
    # Under the name the earlier modification-date cursor kept its state: an upgraded pipeline
    # does not read its files again (ingestion.files_read).
    files = listing | unread_files("filesystem")

    @dlt.transformer(
        name="orders",
        primary_key="import_row_id",
        write_disposition="merge",
        schema_contract=SCHEMA_CONTRACT,
    )
    def orders(items: list[FileItemDict]) -> Iterator[pa.Table]:
        for item in items:
            read, name = read_file(item, delimiter, encoding), item["file_name"]
            table = convert(
                read.table, mapping, name, date_format, timezone, digits, separators, read.lines
            )
            if read.rejected:
                rejected = unreadable_rows(name, read.rejected, table.schema)
                table = pa.concat_tables([table, rejected])
            reconcile(name, read.table.num_rows + len(read.rejected), table)
            yield key_not_null(table, "import_row_id")

    reader = files | orders
    # What decides the rows a file becomes: a run that finds the landed rows read otherwise reads
    # every file again (ingestion/starting_over.py).
    read_with = {
        "column_mapping": dict(mapping.columns),
        "date_format": date_format,
        "timezone": timezone,
        "amounts_in_minor_units": amounts_in_minor_units,
        "minor_unit_digits": digits,
        "decimal_separator": decimal_separator,
        "thousands_separator": thousands_separator,
        "delimiter": delimiter,
        "encoding": encoding,
        FILES_AT: {"bucket_url": bucket_url, "file_glob": file_glob},
    }
    reader.apply_hints(additional_table_hints={READ_WITH_HINT: read_with})
    yield reader


def _missing(settings: Settings) -> str | None:
    url = settings.order_history_url
    if not folder_present(url):
        return (
            f"No order-history folder at {url}: set sources.order_history.bucket_url "
            "(.dlt/config.toml) or SOURCES__ORDER_HISTORY__BUCKET_URL to where the files are, or "
            "build the demo world with `regulars simulate build`."
        )
    if not resolvable(f"sources.{SOURCE_NAME}.column_mapping"):
        return (
            f"No column mapping for the order-history files at {url}: set "
            "[sources.order_history.column_mapping] in .dlt/config.toml, the file's column for "
            f"each of {', '.join(REQUIRED_FIELDS)} (ingestion/order_history/README.md)."
        )
    return None


def _build(settings: Settings) -> DltSource:
    if _missing(settings):
        # The graph needs the source's resources, whose names do not depend on the files: a
        # chain without an old export (and so without a mapping) builds it from this stand-in,
        # which never reads a file (the run skips the source).
        stand_in = dict(zip(REQUIRED_FIELDS, REQUIRED_FIELDS, strict=True))
        return order_history_source(bucket_url=settings.order_history_url, column_mapping=stand_in)
    return order_history_source(bucket_url=settings.order_history_url)


SOURCE = Source(
    name=SOURCE_NAME,
    description="Order-history files from an earlier system (the old POS export).",
    kinds=frozenset({"csv"}),
    build=_build,
    missing=_missing,
    address="sources.order_history.bucket_url (SOURCES__ORDER_HISTORY__BUCKET_URL)",
)
