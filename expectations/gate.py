"""The gate between landing and the lake: validate each landed batch, promote what passes.

Where it sits, and why: dlt loads each source unchanged into `landing_<source>`; this gate reads
every batch (one dlt load) that it has not promoted yet, runs the table's suite, and loads the
passing rows into `raw_<source>` (the lake dbt reads) with a second dlt pipeline. Failing rows go
to `raw_<source>.quarantine_<table>` with the reasons; each batch leaves one row in
`raw_<source>.gate_audit`. Keeping the gate outside the landing pipeline means the raw batch
survives whatever the suite says (a fixed suite can re-read it), lake writes are ordinary dlt
loads (so the same code runs on DuckDB and the filesystem destination), and the gate is its own
asset in the lineage. A batch that fails as a whole (missing column, collapsed row count) is not
promoted, and nothing after it in that table is, until it passes: promotion stays in load order,
so a merge never applies an older version over a newer one.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import dlt
import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.resource import DltResource
from dlt.sources import DltSource

from expectations.bounds import GATE_PART_ROWS, GATE_SORT_MEMORY_LIMIT
from expectations.suite_runner import (
    MIN_BATCH_ROWS,
    MIN_NON_NULL_SHARE,
    ROW_NUMBER,
    BatchVerdict,
    SuiteRunner,
    is_row_level,
    rule_of,
    suite_runner,
)
from expectations.suites import TableSuite
from ingestion.landing_zone import KEY_LANDS_ONCE

DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
ROW_ID = "_gate_row_id"  # DuckDB's rowid of a landed row, when the gate reads in the database
LANDING_LOAD_ID = "_landing_load_id"
PART = "_gate_part"  # the part of a large batch a row is validated in (`part_of`)
READ_CHUNK_ROWS = 100_000
AUDIT_TABLE = "gate_audit"

# Past this many keys a lookup reads the column whole and filters in memory, rather than
# sending one SQL `in` list that large through dlt's query builder.
LOOKUP_IN_LIST_LIMIT = 5_000

# Past this many numeric keys a cross-table lookup (LandingTables.read) reads the keys' range and
# filters in memory. dlt's query builder takes about 0.3 ms a named key: 0.93 s for the 2,958
# orders of a day's batch at 100,000 guests, against 0.08 s for their range. Sources number rows
# in order, so a batch's keys are recent and the range leaves most of the table in the database;
# text keys (uuids) spread over the whole table and are still named.
LOOKUP_BY_RANGE_FROM = 100

# Merged on the key. `deduplicated`: the gate hands dlt one row per key (see `newest_per_key`),
# so dlt's own de-duplication (a window over the whole load) would be paid for nothing.
MERGED = {"disposition": "merge", "strategy": "delete-insert", "deduplicated": True}

QUARANTINE_COLUMNS = {
    "quarantine_id": {"data_type": "text", "nullable": False},
    "table_name": {"data_type": "text"},
    "primary_key_value": {"data_type": "text"},
    "record": {"data_type": "text"},
    "failed_expectations": {"data_type": "text"},
    LANDING_LOAD_ID: {"data_type": "text"},
    "quarantined_at": {"data_type": "timestamp"},
    "last_validated_at": {"data_type": "timestamp"},
    "replayed_at": {"data_type": "timestamp"},
    # Set by replay when a newer version of the row's key has reached the lake (fixed upstream):
    # the copy is kept as the record of what was held, no longer held. `superseded_by` is the
    # landing load of that newer version.
    "superseded_at": {"data_type": "timestamp"},
    "superseded_by": {"data_type": "text"},
}
AUDIT_COLUMNS = {
    "table_name": {"data_type": "text"},
    "suite_name": {"data_type": "text"},
    LANDING_LOAD_ID: {"data_type": "text"},
    "validated_at": {"data_type": "timestamp"},
    "status": {"data_type": "text"},
    "source_rows": {"data_type": "bigint"},
    "promoted_rows": {"data_type": "bigint"},
    "quarantined_rows": {"data_type": "bigint"},
    # Failing rows the quarantine already held (a re-pulled day): not held a second time.
    "already_held_rows": {"data_type": "bigint"},
    # Held rows a replay found superseded: landed = promoted + quarantined + superseded.
    "superseded_rows": {"data_type": "bigint"},
    "min_batch_rows": {"data_type": "bigint"},
    "reason": {"data_type": "text"},
}


ARROW_TYPES = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def gate_rows(rows: list[dict], table_name: str):
    """Quarantine or audit rows for `table_name`, as typed Arrow (the lake's file format on every
    destination, and no column left untyped because a batch happened to have it all null)."""
    columns = AUDIT_COLUMNS if table_name == AUDIT_TABLE else QUARANTINE_COLUMNS
    # Nullability as the hints say, or dlt warns on every batch that the two differ.
    schema = pa.schema(
        [
            pa.field(name, ARROW_TYPES[hint["data_type"]], nullable=hint.get("nullable", True))
            for name, hint in columns.items()
        ]
    )
    return dlt.mark.with_table_name(pa.Table.from_pylist(rows, schema=schema), table_name)


def quarantine_table(table_name: str) -> str:
    return f"quarantine_{table_name}"


def is_gate_table(table_name: str) -> bool:
    """The gate's own bookkeeping in a lake dataset, as opposed to a source's table."""
    return table_name == AUDIT_TABLE or table_name.startswith("quarantine_")


@dataclass
class TableGateReport:
    """What the gate did to one table in one run; becomes Dagster metadata and check results."""

    table_name: str
    batches_promoted: int = 0
    source_rows: int = 0
    promoted_rows: int = 0
    quarantined_rows: int = 0
    already_held_rows: int = 0
    rows_by_reason: Counter = field(default_factory=Counter)
    batch_failure: str | None = None

    @property
    def reconciles(self) -> bool:
        return self.source_rows == (
            self.promoted_rows + self.quarantined_rows + self.already_held_rows
        )


@dataclass
class GateReport:
    tables: dict[str, TableGateReport] = field(default_factory=dict)

    def for_table(self, table_name: str) -> TableGateReport:
        return self.tables.setdefault(table_name, TableGateReport(table_name))


class LandingTables:
    """`LandedTables` over a landing dlt dataset (DuckDB or Parquet files alike)."""

    def __init__(self, dataset: dlt.Dataset):
        self.dataset = dataset

    def read(
        self, table_name: str, columns: Sequence[str], column: str, values: Sequence
    ) -> pd.DataFrame:
        wanted = [*columns, "_dlt_load_id"]
        if table_name not in self.dataset.tables or not len(values):
            return pd.DataFrame({name: pd.Series(dtype=object) for name in wanted})
        relation = self.dataset.table(table_name).select(*wanted)
        values = [value.item() if isinstance(value, np.generic) else value for value in values]
        if len(values) >= LOOKUP_BY_RANGE_FROM and all(map(_is_number, values)):
            low, high = min(values), max(values)
            frame = relation.where(column, "gte", low).where(column, "lte", high).df()
        elif len(values) <= LOOKUP_IN_LIST_LIMIT:
            return relation.where(column, "in", values).df()
        else:
            frame = relation.df()
        return frame[frame[column].isin(values)]


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def suite_expectations(suite: TableSuite) -> list:
    """The suite's own expectations plus the batch-level ones every suite shares.

    Batch-level: every required column exists; a required column the suite says is never null is
    not entirely null (a column dropped or renamed upstream: dlt keeps the old one, empty); and,
    where the suite has a volume rule, the batch did not collapse against the table's history.
    """
    never_null = {
        expectation.column
        for expectation in suite.expectations
        if isinstance(expectation, gx.expectations.ExpectColumnValuesToNotBeNull)
    }
    if any(
        isinstance(expectation, gx.expectations.ExpectColumnValuesToBeUnique)
        and expectation.column == suite.primary_key
        for expectation in suite.expectations
    ):
        never_null.add(suite.primary_key)
    return [
        *(gx.expectations.ExpectColumnToExist(column=name) for name in suite.required_columns),
        *(
            gx.expectations.ExpectColumnProportionOfNonNullValuesToBeBetween(
                column=name, min_value={"$PARAMETER": MIN_NON_NULL_SHARE}
            )
            for name in suite.required_columns
            if name in never_null
        ),
        *(
            [
                gx.expectations.ExpectTableRowCountToBeBetween(
                    min_value={"$PARAMETER": MIN_BATCH_ROWS}
                )
            ]
            if suite.volume
            else []
        ),
        *suite.expectations,
    ]


def runner_for(suite: TableSuite, docs_dir: Path | None = None) -> SuiteRunner:
    return suite_runner(suite.suite_name, suite_expectations(suite), docs_dir=docs_dir)


def validate_batch(
    batch: pa.Table,
    suite: TableSuite,
    runner: SuiteRunner,
    landed: LandingTables | None,
    min_batch_rows: int = 0,
    run_name: str | None = None,
    render_passing: bool = True,
) -> BatchVerdict:
    """Derive the suite's computed columns on a landed batch and validate it."""
    frame = suite.derive(batch.to_pandas())
    if suite.derive_across is not None and landed is not None:
        frame = suite.derive_across(frame, landed)
    frame[ROW_NUMBER] = np.arange(len(frame))
    return runner.validate(frame, min_batch_rows, run_name=run_name, render_passing=render_passing)


def _pending_load_ids(landing: dlt.Dataset, table_name: str, after: str) -> list[str]:
    # A source that has loaded no row of the table yet (an empty ordering DB, a GA4 property
    # with no traffic) may leave it in dlt's schema without any column, or out of it.
    if table_name not in landing.tables:
        return []
    if "_dlt_load_id" not in landing.schema.get_table_columns(table_name):
        return []
    after = after.replace("'", "''")
    load_ids = landing(
        f"select distinct _dlt_load_id from {table_name} where _dlt_load_id > '{after}'"
    ).arrow()
    return sorted(load_ids.column(0).to_pylist())


def landed_rows(landing: dlt.Dataset, table_name: str, load_id: str) -> int:
    query = f"select count(*) from {table_name} where _dlt_load_id = '{load_id}'"
    return landing(query).fetchone()[0]


def read_batch(
    landing: dlt.Dataset, table_name: str, load_id: str, where: str = "true"
) -> pa.Table:
    """The landed rows of one batch (those of it `where` chooses: a part), without dlt's columns."""
    batch = landing(
        f"select * from {table_name} where _dlt_load_id = '{load_id}' and {where}"
    ).arrow()
    return batch.drop_columns([name for name in DLT_COLUMNS if name in batch.column_names])


def part_count(rows: int) -> int:
    return max(1, math.ceil(rows / GATE_PART_ROWS))


def part_number(key: str, parts: int) -> str:
    """A row's part of a batch, chosen by its key's hash: every row of a key is in the same part,
    so uniqueness holds within each part exactly when it holds in the batch."""
    return f'hash("{key}") % {parts}'


def part_of(key: str, parts: int) -> str:
    return f"{part_number(key, parts)} as {PART}"


def part_condition(key: str, part: int, parts: int) -> str:
    return "true" if parts == 1 else f"{part_number(key, parts)} = {part}"


def split_by_part(chunks: Iterable[pa.Table]) -> Iterator[tuple[int, pa.Table]]:
    """Rows sorted by their `PART` column, in chunks, as (part, its rows) one part at a time.

    One sorted pass: a query a part would scan the whole batch once a part, which on a year of
    events (19 parts of 9.2 million rows) cost twice the validation itself.
    """
    current, rows = -1, []
    for chunk in chunks:
        if not chunk.num_rows:
            continue
        numbers = chunk.column(PART).to_numpy()
        starts = [0, *(np.flatnonzero(np.diff(numbers)) + 1).tolist(), len(numbers)]
        for start, end in itertools.pairwise(starts):
            if int(numbers[start]) != current and rows:
                yield current, pa.concat_tables(rows).drop_columns([PART])
                rows = []
            current = int(numbers[start])
            rows.append(chunk.slice(start, end - start))
    if rows:
        yield current, pa.concat_tables(rows).drop_columns([PART])


def batch_parts(
    landing: dlt.Dataset,
    table_name: str,
    load_id: str,
    key: str,
    parts: int,
    memory_limit: str,
) -> Iterator[tuple[int, pa.Table]]:
    """`read_batch` part by part (`sorted_parts`)."""

    def query(client) -> str:
        table = client.make_qualified_table_name(table_name)
        return f"select *, {part_of(key, parts)} from {table} where _dlt_load_id = ?"

    for part, rows in sorted_parts(landing, query, load_id, memory_limit):
        yield part, rows.drop_columns([name for name in DLT_COLUMNS if name in rows.column_names])


def sorted_parts(
    landing: dlt.Dataset, query: Callable[[Any], str], load_id: str, memory_limit: str
) -> Iterator[tuple[int, pa.Table]]:
    """The rows `query(client)` selects (with their `PART`; the load id is its one parameter),
    one part at a time, from one query sorted by part (`split_by_part`) under
    GATE_SORT_MEMORY_LIMIT; `memory_limit`, the database's own, is set again after."""
    with (
        landing.sql_client as client,
        sort_memory_budget(client, memory_limit),
        client.execute_query(f"{query(client)} order by {PART}", load_id) as cursor,
    ):
        yield from split_by_part(cursor.iter_arrow(READ_CHUNK_ROWS))


@contextmanager
def sort_memory_budget(client, memory_limit: str) -> Iterator[None]:
    """DuckDB's memory limit at GATE_SORT_MEMORY_LIMIT for the block, then `memory_limit` again.

    The limit is the database's, not the query's (DuckDB has no per-query limit): the gate's
    other queries in the block, one part's promotion at a time, need far less.
    """
    client.execute_sql(f"set memory_limit = '{GATE_SORT_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        client.execute_sql(f"set memory_limit = '{memory_limit}'")


def shape_frame(landing: dlt.Dataset, table_name: str, load_id: str, runner: SuiteRunner):
    """A whole batch as its batch-level expectations need it, at a byte or two a row: each column
    they read as true where it has a value and null where not, each they only need to exist as
    true. A column the batch lacks stays absent, so its existence check fails as on the rows."""
    present = landing.schema.get_table_columns(table_name)
    escape = landing.sql_client.escape_column_name
    columns = [
        *(
            f"case when {escape(name)} is not null then true end as {escape(name)}"
            for name in runner.read_columns
            if name in present
        ),
        *(f"true as {escape(name)}" for name in runner.existing_columns if name in present),
    ]
    shape = landing(
        f"select {', '.join(columns) or 'true as _row'} from {table_name} "
        f"where _dlt_load_id = '{load_id}'"
    ).arrow()
    frame = shape.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    frame[ROW_NUMBER] = np.arange(len(frame))
    return frame


def payload_columns(landing: dlt.Dataset, table_name: str, runner: SuiteRunner) -> list[str]:
    """JSON columns no expectation reads values of: most of a stream's bytes, none of its checks."""
    return [
        name
        for name, column in landing.schema.get_table_columns(table_name).items()
        if column.get("data_type") == "json" and name not in runner.read_columns
    ]


def read_in_database(
    landing: dlt.Dataset,
    table_name: str,
    load_id: str,
    payload: Sequence[str] = (),
    where: str = "true",
    flagged: Sequence[str] | None = None,
) -> pa.Table:
    """The batch with each row's DuckDB rowid (`ROW_ID`), without its `payload` columns, those of
    them in `flagged` (all, by default) as their null flags.

    For the copy inside the database the gate never moves passing rows through Python, so it
    need not read their payloads at all; a held row's full record is read by its rowid. A flag
    costs a scan of the payload, for expectations that only need the column to exist.
    """
    with landing.sql_client as client:
        condition = f"_dlt_load_id = ? and {where}"
        query = _in_database_query(landing, client, table_name, payload, flagged, condition)
        with client.execute_query(query, load_id) as cursor:
            return cursor.arrow()


def _in_database_query(
    landing: dlt.Dataset,
    client,
    table_name: str,
    payload: Sequence[str],
    flagged: Sequence[str] | None,
    condition: str,
    extra: str = "",
) -> str:
    """Rows that meet `condition`, with their `ROW_ID`, without dlt's columns and the `payload`
    ones, those in `flagged` (all, by default) as their null flags."""
    present = landing.schema.get_table_columns(table_name)
    excluded = [
        client.escape_column_name(name) for name in (*DLT_COLUMNS, *payload) if name in present
    ]
    flags = "".join(
        f", {client.escape_column_name(name)} is null as {client.escape_column_name(name)}"
        for name in (payload if flagged is None else flagged)
    )
    return (
        f"select rowid as {ROW_ID}, * exclude ({', '.join(excluded)}){flags}{extra} "
        f"from {client.make_qualified_table_name(table_name)} where {condition}"
    )


def parts_in_database(
    landing: dlt.Dataset,
    table_name: str,
    load_id: str,
    key: str,
    parts: int,
    memory_limit: str,
    payload: Sequence[str] = (),
    flagged: Sequence[str] | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """`read_in_database` part by part (`sorted_parts`)."""

    def query(client) -> str:
        condition = "_dlt_load_id = ?"
        part = f", {part_of(key, parts)}"
        return _in_database_query(landing, client, table_name, payload, flagged, condition, part)

    yield from sorted_parts(landing, query, load_id, memory_limit)


def records_by_row_id(landing: dlt.Dataset, table_name: str, row_ids: list[int]) -> list[dict]:
    """Whole landed rows, by DuckDB rowid, in the order of `row_ids`."""
    if not row_ids:
        return []
    rows = read_in_database_where(landing, table_name, f"rowid in ({', '.join(map(str, row_ids))})")
    by_id = {record.pop(ROW_ID): record for record in rows.to_pylist()}
    return [by_id[row_id] for row_id in row_ids]


def read_in_database_where(landing: dlt.Dataset, table_name: str, condition: str) -> pa.Table:
    """Whole landed rows (payloads included) that meet `condition`, with their `ROW_ID`."""
    with landing.sql_client as client:
        query = _in_database_query(landing, client, table_name, (), (), condition)
        with client.execute_query(query) as cursor:
            return cursor.arrow()


def quarantine_rows(
    batch: pa.Table,
    suite: TableSuite,
    load_id: str,
    failures: dict[int, list[str]],
    records: list[dict] | None = None,
) -> list[dict]:
    """Quarantine rows for the failing rows of a batch (`records`: their whole rows, when the
    batch was read without its payloads)."""
    now = datetime.now(UTC)
    row_numbers = sorted(failures)
    if records is None:
        records = batch.take(pa.array(row_numbers, type=pa.int64())).to_pylist()
    return [
        {
            "quarantine_id": f"{load_id}:{row_number}",
            "table_name": suite.table_name,
            "primary_key_value": None
            if record.get(suite.primary_key) is None
            else str(record[suite.primary_key]),
            "record": json.dumps(record, default=str, sort_keys=True),
            "failed_expectations": json.dumps(sorted(set(failures[row_number]))),
            LANDING_LOAD_ID: load_id,
            "quarantined_at": now,
            "last_validated_at": now,
            "replayed_at": None,
            "superseded_at": None,
            "superseded_by": None,
        }
        for row_number, record in zip(row_numbers, records, strict=True)
    ]


def audit_row(suite: TableSuite, load_id: str, **counts) -> dict:
    return {
        "table_name": suite.table_name,
        "suite_name": suite.suite_name,
        LANDING_LOAD_ID: load_id,
        "validated_at": datetime.now(UTC),
        "min_batch_rows": 0,
        "already_held_rows": 0,
        "superseded_rows": 0,
        "reason": None,
        **counts,
    }


def held_versions(lake: dlt.Dataset | None, table_name: str, keys: Sequence) -> pd.DataFrame:
    """Quarantine rows of `keys` (`primary_key_value`s, None for a null key) still held.

    The filesystem lake appends every version of a quarantine row: the newest one counts.
    """
    name = quarantine_table(table_name)
    wanted = ["quarantine_id", "primary_key_value", "record", "failed_expectations"]
    wanted += [LANDING_LOAD_ID, "replayed_at", "superseded_at", "_dlt_load_id"]
    if lake is None or name not in lake.tables:
        return pd.DataFrame(columns=wanted)
    present = lake.schema.get_table_columns(name)
    relation = lake.table(name).select(*(column for column in wanted if column in present))
    known = [key for key in keys if key is not None]
    frames = []
    if len(known) > LOOKUP_IN_LIST_LIMIT:
        whole = relation.df()
        frames.append(whole[whole["primary_key_value"].isin(known)])
    elif known:
        frames.append(relation.where("primary_key_value", "in", known).df())
    if None in keys:
        frames.append(relation.where("primary_key_value is null").df())
    if not frames:
        return pd.DataFrame(columns=wanted)
    rows = pd.concat(frames, ignore_index=True).reindex(columns=wanted)
    rows = rows.sort_values("_dlt_load_id").drop_duplicates("quarantine_id", keep="last")
    return rows[rows["replayed_at"].isna() & rows["superseded_at"].isna()]


class HeldRows:
    """What one table's quarantine holds, so that a row it already holds is not held again.

    GA4 and Meta re-pull their last days on every run, so a bad row of those days comes back in
    batch after batch. It is already held when its record and broken rules are those of a held
    row of its key's newest held batch, and no version of the key reached the lake after that
    batch: the quarantine holds this very version (first seen when it was), and replay would move
    the same record. A row that changed, or whose key reached the lake in between, is a newer
    version and is held on its own, so replay keeps moving the newest one. Rows of the batch
    being gated never match each other: both copies of a duplicated key are held.
    """

    def __init__(self, lake: dlt.Dataset | None, suite: TableSuite):
        self.lake = lake
        self.suite = suite
        # key -> (the newest landing load holding it, its held (record, rules) of that load);
        # null keys are never promoted, so each held null-key row is kept with its own load.
        self.newest: dict[str, tuple[str, set]] = {}
        self.null_keys: dict[tuple, str] = {}
        self.lake_loads: dict[str, str] = {}  # key -> newest landing load in the lake at start
        self.looked_up: set[str | None] = set()
        self.promoted: list[tuple[str, pa.Array]] = []  # (load, keys) promoted in this run

    def promote(self, load_id: str, keys: pa.Array) -> None:
        """Keys of a batch this run promotes: a held version older than them is stale."""
        self.promoted.append((load_id, keys.drop_null().cast(pa.string())))

    def _look_up(self, keys: list[str | None], native: list) -> None:
        """Read what the lake holds for keys not met yet in this run (`native`: their values)."""
        fresh = {
            key: value for key, value in zip(keys, native, strict=True) if key not in self.looked_up
        }
        if not fresh:
            return
        self.looked_up.update(fresh)
        held = held_versions(self.lake, self.suite.table_name, list(fresh))
        for key, record, failed, load_id in held[
            ["primary_key_value", "record", "failed_expectations", LANDING_LOAD_ID]
        ].itertuples(index=False):
            self._remember(None if pd.isna(key) else key, (record, _rules(failed)), load_id)
        values = [value for value in fresh.values() if value is not None]
        if self.lake is not None and values:
            key_column = self.suite.primary_key
            lake = LandingTables(self.lake).read(
                self.suite.table_name, [key_column, LANDING_LOAD_ID], key_column, values
            )
            for key, load_id in lake.groupby(key_column)[LANDING_LOAD_ID].max().items():
                self.lake_loads[str(key)] = load_id

    def _remember(self, key: str | None, content: tuple, load_id: str) -> None:
        if key is None:
            self.null_keys[content] = min(self.null_keys.get(content, load_id), load_id)
            return
        newest, contents = self.newest.get(key, ("", set()))
        if load_id > newest:
            self.newest[key] = (load_id, {content})
        elif load_id == newest:
            contents.add(content)

    def _promoted_since(self, keys: list[str]) -> dict[str, str]:
        """Key -> the newest load that promoted it: the lake's, or this run's batches'."""
        newest = {key: self.lake_loads[key] for key in keys if key in self.lake_loads}
        if keys and self.promoted:
            wanted = pa.array(keys, pa.string())
            for load_id, promoted in self.promoted:
                for key in promoted.filter(pc.is_in(promoted, value_set=wanted)).to_pylist():
                    newest[key] = max(newest.get(key, ""), load_id)
        return newest

    def split(self, rows: list[dict], native_keys: list, load_id: str) -> tuple[list[dict], int]:
        """The quarantine rows of one batch still to write, and how many were already held."""
        keys = [row["primary_key_value"] for row in rows]
        self._look_up(keys, native_keys)
        promoted = self._promoted_since([key for key in set(keys) if key is not None])
        new, already = [], 0
        for key, row in zip(keys, rows, strict=True):
            content = (row["record"], _rules(row["failed_expectations"]))
            if key is None:
                first = self.null_keys.get(content)
                held = first is not None and first < load_id
            else:
                newest, contents = self.newest.get(key, ("", set()))
                held = newest < load_id and content in contents and promoted.get(key, "") <= newest
            if held:
                already += 1
                continue
            new.append(row)
            self._remember(key, content, load_id)
        return new, already


def _rules(failed_expectations: str) -> frozenset[str]:
    return frozenset(rule_of(reason) for reason in json.loads(failed_expectations))


def with_load_id(rows: pa.Table, load_id: str) -> pa.Table:
    """Lake rows carry the landing batch they came from (lineage, and newest-version order)."""
    return rows.append_column(LANDING_LOAD_ID, pa.array([load_id] * rows.num_rows, pa.string()))


def lake_disposition(landing: dlt.Dataset, table_name: str) -> str | dict:
    """How promoted rows are written: like the landing table they come from.

    A landing table that only ever inserts (a key lands once, ever: the landing-zone streams) is
    appended to: the gate promotes each landed row at most once and replay moves a held row
    once, so no key can reach the lake twice, and an append costs about half a merge (on a
    million events, seconds the gate would add to every load). Anything else merges on its key.
    """
    table = landing.schema.tables.get(table_name, {})
    # Tables landed before the hint existed carry only their insert-only merge.
    if table.get(KEY_LANDS_ONCE) or table.get("x-merge-strategy") == "insert-only":
        return "append"
    return MERGED


def newest_per_key(tables: list[pa.Table], key: str) -> pa.Table:
    """Promoted rows of the batches of one run, one per key: the newest batch's version.

    Within a batch keys are unique (the suite quarantines duplicates); across batches an order
    updated twice between runs is in both, and the lake must end with the later one.
    """
    if len(tables) == 1:
        return tables[0]
    rows = pa.concat_tables(tables, promote_options="permissive")
    position = pa.array(np.arange(rows.num_rows))
    newest = (
        pa.table({key: rows.column(key), "position": position})
        .group_by(key)
        .aggregate([("position", "max")])
        .column("position_max")
    )
    return rows.filter(pc.is_in(position, value_set=newest))


def gate_resource(function, suite: TableSuite, landing: dlt.Dataset, *arguments) -> DltResource:
    """A lake table's resource bound to `arguments`, with clean hints for the gate's own tables.

    Quarantine and audit rows are table variants of the resource: without their own column set
    they would inherit the lake table's columns and merge key. (Variants are set on the bound
    resource: binding does not carry them over.)
    """
    resource = dlt.resource(
        function,
        name=suite.table_name,
        primary_key=suite.primary_key,
        write_disposition=lake_disposition(landing, suite.table_name),
        columns={
            **_landed_columns(landing, suite.table_name),
            LANDING_LOAD_ID: {"data_type": "text"},
        },
    )(*arguments)
    for table_name, columns, disposition, key in (
        (quarantine_table(suite.table_name), QUARANTINE_COLUMNS, MERGED, "quarantine_id"),
        (AUDIT_TABLE, AUDIT_COLUMNS, "append", []),
    ):
        # Empty columns first: a new variant starts as a copy of the resource's own hints.
        for column_hints in ({}, columns):
            resource.apply_hints(
                table_name=table_name,
                columns=column_hints,
                write_disposition=disposition,
                primary_key=key,
                create_table_variant=True,
            )
    return resource


@dataclass
class TableGate:
    """What the gate needs for one table in one run."""

    landing: dlt.Dataset
    parts_landing: dlt.Dataset  # the same landing, for the sorted read of a batch's parts
    suite: TableSuite
    history: list[tuple[str, int]]  # (load id, rows) of promoted batches, oldest first
    report: TableGateReport
    memory_limit: str  # DuckDB's, set again after a large batch's sorted read
    waive_volume: bool = False
    # Landing and lake in one SQL database: passing rows are copied there, not through Python.
    in_database: bool = False
    held: HeldRows | None = None
    docs_dir: Path | None = None

    @cached_property
    def runner(self) -> SuiteRunner:
        """The whole suite, registered with GX when a batch first needs it: a table with
        nothing new costs GX nothing (registering is 0.2-0.3 s a table in a new process)."""
        return runner_for(self.suite, self.docs_dir)

    @cached_property
    def shape_runner(self) -> SuiteRunner:
        """The suite's batch-level expectations, for a batch validated in parts: run once over
        the whole batch's `shape_frame`."""
        expectations = [e for e in suite_expectations(self.suite) if not is_row_level(e)]
        return suite_runner(f"{self.suite.suite_name}_shape", expectations, self.docs_dir)

    @cached_property
    def row_runner(self) -> SuiteRunner:
        """The suite's row-level expectations, for each part of a batch validated in parts."""
        expectations = [e for e in suite_expectations(self.suite) if is_row_level(e)]
        return suite_runner(f"{self.suite.suite_name}_rows", expectations, self.docs_dir)


@dataclass
class CheckedPart:
    """A part of a landed batch (the whole batch, for most) once validated, before any of it is
    written: what to hold and which keys not to promote. Failing rows only: a part's passing
    rows are read again when promoted, so no more than one part is in memory at a time."""

    where: str  # the SQL condition choosing the part's rows of its batch
    rows: int
    verdict: BatchVerdict
    held: list[dict] = field(default_factory=list)  # quarantine rows of its failing rows
    held_keys: list = field(default_factory=list)  # their keys, as landed, in the same order
    rejected_keys: pa.Array | None = None  # distinct non-null keys of its failing rows
    passing_keys: pa.Array | None = None  # of a merged table: promoted keys, for `HeldRows`

    @property
    def promoted_rows(self) -> int:
        return self.rows - len(self.verdict.row_failures)


@dataclass
class BatchReader:
    """Reads a table's landed batches, or parts of them, for the gate of one run."""

    landing: dlt.Dataset
    parts_landing: dlt.Dataset
    suite: TableSuite
    # Passing rows are copied inside the database; the gate reads rows without their payloads.
    in_database: bool
    payload: Sequence[str]
    landed: LandingTables
    track_promoted_keys: bool  # a merged table: held versions older than a promoted key go stale
    memory_limit: str  # DuckDB's, set again after a large batch's sorted read

    def read(self, load_id: str, runner: SuiteRunner) -> pa.Table:
        table_name = self.suite.table_name
        if self.in_database:
            flagged = self.flagged(runner)
            return read_in_database(
                self.landing, table_name, load_id, self.payload, "true", flagged
            )
        return read_batch(self.landing, table_name, load_id)

    def parts(
        self, load_id: str, parts: int, runner: SuiteRunner
    ) -> Iterator[tuple[int, pa.Table]]:
        table_name, key = self.suite.table_name, self.suite.primary_key
        if self.in_database:
            flagged = self.flagged(runner)
            yield from parts_in_database(
                self.parts_landing,
                table_name,
                load_id,
                key,
                parts,
                self.memory_limit,
                self.payload,
                flagged,
            )
        else:
            yield from batch_parts(
                self.parts_landing, table_name, load_id, key, parts, self.memory_limit
            )

    def flagged(self, runner: SuiteRunner) -> list[str]:
        """Payloads only as the flags `runner` needs (their existence): a part's rules need none,
        and a flag costs a scan of the payload, most of a stream's bytes."""
        return [name for name in self.payload if name in runner.existing_columns]

    def whole_rows(self, load_id: str, where: str) -> pa.Table:
        """In the database: the rows with their payloads, and `ROW_ID`."""
        condition = f"_dlt_load_id = '{load_id}' and {where}"
        return read_in_database_where(self.landing, self.suite.table_name, condition)

    def check(
        self,
        load_id: str,
        where: str,
        batch: pa.Table,
        runner: SuiteRunner,
        min_rows: int,
        run_name: str,
        render_passing: bool = True,
    ) -> CheckedPart:
        """Validate `batch` (the rows of the load `where` chooses) and keep what is needed to
        write its verdict."""
        suite = self.suite
        verdict = validate_batch(
            batch, suite, runner, self.landed, min_rows, run_name, render_passing
        )
        checked = CheckedPart(where, batch.num_rows, verdict)
        if not verdict.batch_passed:
            return checked
        key = batch.column(suite.primary_key)
        failing = pa.array(sorted(verdict.row_failures), type=pa.int64())
        if len(failing):
            records = None
            if self.in_database:
                row_ids = batch.column(ROW_ID).take(failing)
                if len(failing) <= LOOKUP_IN_LIST_LIMIT:
                    records = records_by_row_id(self.landing, suite.table_name, row_ids.to_pylist())
                else:  # too many held rows to name in SQL: the part's whole rows, read once
                    whole = self.whole_rows(load_id, where)
                    order = pc.index_in(row_ids, value_set=whole.column(ROW_ID))
                    records = whole.take(order).drop_columns([ROW_ID]).to_pylist()
            checked.held = quarantine_rows(batch, suite, load_id, verdict.row_failures, records)
            failing_keys = key.take(failing)
            checked.held_keys = failing_keys.to_pylist()
            checked.rejected_keys = pc.unique(failing_keys.drop_null())
        if self.track_promoted_keys and checked.promoted_rows:
            passing = np.ones(batch.num_rows, dtype=bool)
            passing[failing.to_numpy()] = False
            checked.passing_keys = key.filter(pa.array(passing))
        return checked

    def promotions(self, load_id: str, parts: list[CheckedPart]) -> Iterator:
        """The batch's passing rows, part by part; in the database in one query when its held
        keys can all be named (one insert of a batch costs less than one a part)."""
        if not any(part.promoted_rows for part in parts):
            return
        rejected = [part.rejected_keys for part in parts if part.rejected_keys is not None]
        if self.in_database and sum(map(len, rejected)) <= LOOKUP_IN_LIST_LIMIT:
            names = [key for keys in rejected for key in keys.to_pylist()]
            yield promoted_relation(self.landing, self.suite, load_id, names)
            return
        for part in parts:
            if part.promoted_rows:
                yield self.promotion(load_id, part)

    def promotion(self, load_id: str, part: CheckedPart):
        """The part's passing rows: a query dlt runs in the database, or the rows as Arrow.

        Rows are excluded by key, as `promoted_relation` says why.
        """
        rejected = part.rejected_keys
        if self.in_database and (rejected is None or len(rejected) <= LOOKUP_IN_LIST_LIMIT):
            names = [] if rejected is None else rejected.to_pylist()
            return promoted_relation(self.landing, self.suite, load_id, names, part.where)
        if self.in_database:  # too many keys to name in SQL: through Python
            rows = self.whole_rows(load_id, part.where).drop_columns([ROW_ID])
        else:
            rows = read_batch(self.landing, self.suite.table_name, load_id, part.where)
        key = rows.column(self.suite.primary_key)
        keep = pc.is_valid(key)
        if rejected is not None and len(rejected):
            keep = pc.and_(keep, pc.invert(pc.is_in(key, value_set=rejected)))
        return with_load_id(rows.filter(keep), load_id)


def check_batch(
    gate: TableGate, reader: BatchReader, load_id: str, rows: int, min_rows: int
) -> list[CheckedPart]:
    """Validate a landed batch: whole, or past GATE_PART_ROWS in parts by key.

    In parts, the batch-level expectations (columns present, not all null, the volume) run once
    over the whole batch's shape, then the row-level ones part by part: the verdict is the one
    the whole batch would get, in memory bounded by a part. Parts stop at the first that fails
    as a whole (an expectation that could not run), which rejects the batch.
    """
    run_name = f"landing_load_{load_id}"
    parts = part_count(rows)
    if parts == 1:
        batch = reader.read(load_id, gate.runner)
        return [reader.check(load_id, "true", batch, gate.runner, min_rows, run_name)]
    frame = shape_frame(gate.landing, gate.suite.table_name, load_id, gate.shape_runner)
    shape = gate.shape_runner.validate(frame, min_rows, run_name=run_name)
    del frame
    if not shape.batch_passed:
        return [CheckedPart("true", rows, shape)]
    checked: list[CheckedPart] = []
    # Closed when a part stops the batch: the sorted query holds its connection until then.
    with closing(reader.parts(load_id, parts, gate.row_runner)) as sorted_parts:
        for part, batch in sorted_parts:
            where = part_condition(gate.suite.primary_key, part, parts)
            name = f"{run_name}_part_{part + 1}_of_{parts}"
            checked.append(
                reader.check(load_id, where, batch, gate.row_runner, 0, name, render_passing=False)
            )
            del batch
            if not checked[-1].verdict.batch_passed:
                break
    return checked


def promoted_relation(
    landing: dlt.Dataset, suite: TableSuite, load_id: str, rejected_keys: list, where: str = "true"
):
    """The batch's passing rows as a query on the landing dataset, for dlt to copy in the database.

    Rows are excluded by key: a key that failed on one row of a batch failed on all of its rows
    (a key on two rows fails uniqueness on both), and a null key always fails.
    """
    landed = landing.schema.get_table_columns(suite.table_name)
    dropped = ", ".join(name for name in DLT_COLUMNS if name in landed)
    key = suite.primary_key
    relation = landing(
        f"select * exclude ({dropped}), cast('{load_id}' as varchar) as {LANDING_LOAD_ID} "
        f"from {suite.table_name} where _dlt_load_id = '{load_id}' and {key} is not null "
        f"and {where}"
    )
    return relation.where(key, "not_in", rejected_keys) if rejected_keys else relation


def _gate_table(gate: TableGate) -> Iterator:
    suite, report = gate.suite, gate.report
    state = dlt.current.resource_state()
    pending = _pending_load_ids(
        gate.landing, suite.table_name, state.get("last_landing_load_id", "")
    )
    if not pending:
        return
    # A key of an insert-only table reaches the lake once, ever: no held version can go stale.
    appended = lake_disposition(gate.landing, suite.table_name) == "append"
    # Parts of batches go to dlt one by one where keys cannot repeat across batches (an append)
    # or there is one batch; otherwise the batches meet in Python, newest version per key.
    one_by_one = appended or len(pending) == 1
    reader = BatchReader(
        landing=gate.landing,
        parts_landing=gate.parts_landing,
        suite=suite,
        in_database=gate.in_database and one_by_one,
        payload=payload_columns(gate.landing, suite.table_name, gate.runner),
        landed=LandingTables(gate.landing),
        track_promoted_keys=not appended,
        memory_limit=gate.memory_limit,
    )
    held_rows = gate.held or HeldRows(None, suite)
    promoted_batches: list[pa.Table] = []
    for position, load_id in enumerate(pending):
        source_rows = landed_rows(gate.landing, suite.table_name, load_id)
        min_rows = suite.volume.min_rows(gate.history, load_id) if suite.volume else 0
        # An operator's waiver releases the batch the volume rule holds: the oldest pending one.
        waived = gate.waive_volume and position == 0 and min_rows > source_rows
        if waived:
            min_rows = 0
        parts = check_batch(gate, reader, load_id, source_rows, min_rows)
        failures = [failure for part in parts for failure in part.verdict.batch_failures]
        if failures:
            report.batch_failure = f"batch {load_id}: " + "; ".join(failures)
            yield gate_rows(
                [
                    audit_row(
                        suite,
                        load_id,
                        status="batch_rejected",
                        source_rows=source_rows,
                        promoted_rows=0,
                        quarantined_rows=0,
                        min_batch_rows=min_rows,
                        reason=report.batch_failure,
                    )
                ],
                AUDIT_TABLE,
            )
            break  # later batches wait: promotion stays in load order
        quarantined = already_held = promoted_rows = 0
        for part in parts:
            if part.held:
                new_rows, already = held_rows.split(part.held, part.held_keys, load_id)
                if new_rows:
                    yield gate_rows(new_rows, quarantine_table(suite.table_name))
                quarantined += len(new_rows)
                already_held += already
            if part.passing_keys is not None:
                held_rows.promote(load_id, part.passing_keys)
            promoted_rows += part.promoted_rows
            for reasons in part.verdict.row_failures.values():
                report.rows_by_reason.update(set(reasons))
        for promotion in reader.promotions(load_id, parts):
            if isinstance(promotion, pa.Table) and not one_by_one:
                promoted_batches.append(promotion)
            else:
                yield promotion
        yield gate_rows(
            [
                audit_row(
                    suite,
                    load_id,
                    status="promoted",
                    source_rows=source_rows,
                    promoted_rows=promoted_rows,
                    quarantined_rows=quarantined,
                    already_held_rows=already_held,
                    min_batch_rows=min_rows,
                    reason="volume rule waived by an operator" if waived else None,
                )
            ],
            AUDIT_TABLE,
        )
        gate.history.append((load_id, source_rows))
        report.batches_promoted += 1
        report.source_rows += source_rows
        report.promoted_rows += promoted_rows
        report.quarantined_rows += quarantined
        report.already_held_rows += already_held
        state["last_landing_load_id"] = load_id
    if promoted_batches:
        yield newest_per_key(promoted_batches, suite.primary_key)


def _landed_columns(landing: dlt.Dataset, table_name: str) -> dict:
    """The landing table's column types, so the lake keeps them (JSON stays JSON, decimals keep
    their precision) rather than re-inferring them from Arrow."""
    if table_name not in landing.schema.tables:
        return {}
    columns = landing.schema.get_table_columns(table_name)
    return {
        name: {
            key: column[key]
            for key in ("data_type", "precision", "scale", "timezone")
            if key in column
        }
        for name, column in columns.items()
        if not name.startswith("_dlt")
    }


def promoted_batches(lake: dlt.Dataset | None) -> dict[str, list[tuple[str, int]]]:
    """(landing load id, rows) of each table's promoted batches, oldest first, from gate_audit."""
    batches: dict[str, list[tuple[str, int]]] = defaultdict(list)
    if lake is None or AUDIT_TABLE not in lake.tables:
        return batches
    audit = (
        lake.table(AUDIT_TABLE)
        .where("status", "eq", "promoted")
        .select("table_name", LANDING_LOAD_ID, "source_rows")
        .df()
        .sort_values(LANDING_LOAD_ID)
    )
    for table_name, load_id, rows in audit.itertuples(index=False):
        batches[table_name].append((load_id, int(rows)))
    return batches


def lake_gate(
    source_name: str,
    landing: dlt.Dataset,
    parts_landing: dlt.Dataset,
    suites: dict[str, TableSuite],
    report: GateReport,
    memory_limit: str,
    lake: dlt.Dataset | None = None,
    docs_dir: Path | None = None,
    waive_volume: Collection[str] = (),
) -> DltSource:
    """A dlt source whose resources are the validated lake tables of one landing dataset.

    `parts_landing` is a second dataset object on the same landing: a large batch's parts are
    read from it in one sorted query whose connection stays open while the gate queries
    `landing` with its own (a dataset's client shares one connection, which a nested query would
    close under the stream).
    `lake` (the lake dataset) gives the volume rules their history; `docs_dir` renders every
    validation into GX Data Docs there; tables in `waive_volume` promote the batch their volume
    rule holds (an operator looked: the batch is small for a known reason). `memory_limit` is
    DuckDB's in this process (Settings.duckdb_steps_memory_limit), set again after a large
    batch's sorted read.
    """
    history = promoted_batches(lake)
    in_database = lake is not None and same_sql_database(landing, lake)

    @dlt.source(name=f"{source_name}_lake")
    def gate() -> Iterator:
        for table_name, suite in suites.items():
            table_gate = TableGate(
                landing=landing,
                parts_landing=parts_landing,
                suite=suite,
                history=history[table_name],
                report=report.for_table(table_name),
                memory_limit=memory_limit,
                waive_volume=table_name in waive_volume,
                in_database=in_database,
                held=HeldRows(lake, suite),
                docs_dir=docs_dir,
            )
            yield gate_resource(_gate_table, suite, landing, table_gate)

    return gate()


def same_sql_database(landing: dlt.Dataset, lake: dlt.Dataset) -> bool:
    """Whether dlt can copy landing rows into the lake with SQL inside one database (DuckDB)."""
    configs = [dataset.destination_client.config for dataset in (landing, lake)]
    return all(config.destination_type == "duckdb" for config in configs) and (
        str(configs[0].credentials) == str(configs[1].credentials)
    )
