"""Order history from another system (an old POS, say): CSV or Parquet files of past orders.

Reads every file matching `file_glob` under `bucket_url` (a local folder or any fsspec URL) that
it has not read before (incremental on the file's modification date), maps the file's columns to
Regulars fields with `column_mapping` from config, converts types, and lands one row per order
line of the file. Only customer id, order date and amount must be mapped; order id, quantity,
store and channel are kept when mapped. A value that does not convert stops the load with an
error naming the file, line and column: a history import is a one-off that a person fixes and
re-runs, so a silently skipped row would be a silently wrong lifetime value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dlt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from dlt.sources import DltSource
from dlt.sources.filesystem import FileItemDict, filesystem

from ingestion.order_history.helpers import ColumnMapping, convert, minor_unit_digits
from ingestion.order_history.settings import DEFAULT_FILE_GLOB, ISO8601, SCHEMA_CONTRACT
from regulars.settings import load_chain

SOURCE_NAME = "order_history"


def read_file(item: FileItemDict, mapping: ColumnMapping) -> pa.Table:
    """The file as text columns (CSV) or as stored (Parquet); conversion happens after."""
    with item.open() as handle:
        if item["file_name"].endswith(".parquet"):
            return pq.read_table(handle)
        text_columns = {name: pa.string() for name in mapping.columns.values()}
        return pacsv.read_csv(
            handle,
            convert_options=pacsv.ConvertOptions(
                column_types=text_columns, strings_can_be_null=False
            ),
        )


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
) -> DltSource:
    """Past orders from files, mapped to customer_id, ordered_at, amount (+ optional)."""
    # A wrong mapping fails here, before any file is read.
    mapping = ColumnMapping.from_config(column_mapping)
    chain = load_chain()
    timezone = timezone or chain.timezone
    digits = minor_unit_digits(chain.currency) if amounts_in_minor_units else 0
    files = filesystem(
        bucket_url=bucket_url,
        file_glob=file_glob,
        incremental=dlt.sources.incremental("modification_date"),
    )

    @dlt.transformer(
        name="orders",
        primary_key="import_row_id",
        write_disposition="merge",
        schema_contract=SCHEMA_CONTRACT,
    )
    def orders(items: list[FileItemDict]) -> Iterator[pa.Table]:
        for item in items:
            table = read_file(item, mapping)
            yield convert(table, mapping, item["file_name"], date_format, timezone, digits)

    yield files | orders
