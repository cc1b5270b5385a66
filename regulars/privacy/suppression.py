"""Suppressed guests: hashes of a forgotten guest's identifiers, and the gate's filter on them.

`privacy.suppressed_guests` holds one row per identifier of a forgotten guest, as the SHA-256 of
its normalised text (`hash_kind`: customer_id, email, phone, anonymous_id), with when and why;
never the identifier itself. Before the gate validates a source's new landed batches, `purge`
deletes the rows of suppressed guests from them (so they reach neither the lake nor quarantine,
and the landing keeps no copy) and counts them in `privacy.suppressed_rows`. Earlier still,
`regulars.privacy.extract` drops them as each source is extracted, from the hashes forget also
writes to `hash_list_path`, so that dlt never writes them to disk; `purge` is the net behind it
(for a hash list deleted, or rows a filter by column name cannot see).

A row belongs to a guest when one of its columns, by name, holds one of their identifiers:
`customer_id` (the id, or a phone number: the old POS keys guests by phone), `user_id`,
`anonymous_id` / `previous_id`, `email` / `recipient`, `phone`, or a JSON column's
`email` / `phone` / `recipient` / `identifiers.email` / `traits.email` / `traits.phone`. A table
with an `order_id` and none of those (order items) belongs through the landed order's customer;
a dlt nested table through its root row. Matching by column name rather than per table keeps a
new source or column covered without wiring, as long as it names guests the way the others do.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from regulars import warehouse
from regulars.privacy.hashing import normalise_email, normalise_phone, sha256_hex
from regulars.settings import Settings

SCHEMA = "privacy"
SUPPRESSED_GUESTS = f"{SCHEMA}.suppressed_guests"
DELETION_LOG = f"{SCHEMA}.deletion_log"
SUPPRESSED_ROWS = f"{SCHEMA}.suppressed_rows"

HASH_KINDS = ("customer_id", "email", "phone", "anonymous_id")

# Column name -> the identifier kinds its values are compared with.
GUEST_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "phone"),
    "user_id": ("customer_id",),
    "anonymous_id": ("anonymous_id",),
    "previous_id": ("anonymous_id",),
    "email": ("email",),
    "recipient": ("email",),
    "phone": ("phone",),
}
JSON_PATHS: dict[str, str] = {
    "$.email": "email",
    "$.recipient": "email",
    "$.identifiers.email": "email",
    "$.traits.email": "email",
    "$.phone": "phone",
    "$.traits.phone": "phone",
}
TEXT_TYPES = ("VARCHAR", "JSON")

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SUPPRESSED_GUESTS} (
    hash_kind varchar not null,
    guest_hash varchar not null,
    request_id varchar not null,
    suppressed_at timestamp with time zone not null,
    reason varchar,
    primary key (hash_kind, guest_hash)
);
create table if not exists {DELETION_LOG} (
    request_id varchar not null,
    requested_at timestamp with time zone not null,
    identifier_kind varchar not null,
    location_kind varchar not null,
    location varchar not null,
    rows_removed bigint not null,
    files_rewritten bigint not null
);
create table if not exists {SUPPRESSED_ROWS} (
    table_name varchar not null,
    landing_load_id varchar not null,
    rows_dropped bigint not null,
    dropped_at timestamp with time zone not null
);
"""


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(DDL)


def register_functions(connection: duckdb.DuckDBPyConnection) -> None:
    """The Python normalisation as SQL functions, so a row hashes in DuckDB exactly as here."""
    for name, function in (
        ("regulars_normalise_email", lambda value: normalise_email(value)),
        ("regulars_normalise_phone", lambda value: normalise_phone(value)),
    ):
        with contextlib.suppress(duckdb.CatalogException):  # registered here already
            connection.create_function(
                name, function, ["VARCHAR"], "VARCHAR", null_handling="special"
            )


def hash_identifier(kind: str, value: str) -> str | None:
    """The suppression hash of one identifier (None when it does not normalise)."""
    if kind == "email":
        text = normalise_email(value)
    elif kind == "phone":
        text = normalise_phone(value)
    else:
        text = str(value).strip() or None
    return None if text is None else sha256_hex(text)


def _hashed_sql(kind: str, expression: str) -> str:
    if kind == "email":
        return f"sha256(regulars_normalise_email({expression}))"
    if kind == "phone":
        return f"sha256(regulars_normalise_phone({expression}))"
    return f"sha256(trim({expression}))"


@dataclass
class TableShape:
    schema: str
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # lower-case name -> DuckDB type

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'


def column_predicates(shape: TableShape, keys: str) -> list[str]:
    """SQL conditions true for a row holding one of the identifiers hashed in relation `keys`
    (columns `hash_kind`, `guest_hash`)."""
    conditions = []
    for column, data_type in shape.columns.items():
        quoted = f'cast("{column}" as varchar)'
        kinds = GUEST_COLUMNS.get(column, ())
        for kind in kinds:
            if kind == "phone" and column == "customer_id" and data_type != "VARCHAR":
                continue  # a numeric id is never a phone number
            conditions.append(
                f"{_hashed_sql(kind, quoted)} in "
                f"(select guest_hash from {keys} where hash_kind = '{kind}')"
            )
        if data_type == "JSON":
            for path, kind in JSON_PATHS.items():
                extracted = f"json_extract_string(\"{column}\", '{path}')"
                conditions.append(
                    f"{_hashed_sql(kind, extracted)} in "
                    f"(select guest_hash from {keys} where hash_kind = '{kind}')"
                )
    return conditions


def table_shapes(
    connection: duckdb.DuckDBPyConnection, schemas: Iterable[str] | None = None
) -> dict[tuple[str, str], TableShape]:
    """Every base table's columns, optionally in `schemas` only."""
    rows = connection.execute(
        """
        select c.table_schema, c.table_name, lower(c.column_name), c.data_type
        from information_schema.columns as c
        join information_schema.tables as t
            on t.table_catalog = c.table_catalog
            and t.table_schema = c.table_schema
            and t.table_name = c.table_name
        where t.table_type = 'BASE TABLE' and t.table_catalog = current_database()
        order by c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    wanted = None if schemas is None else set(schemas)
    shapes: dict[tuple[str, str], TableShape] = {}
    for schema, table, column, data_type in rows:
        if wanted is not None and schema not in wanted:
            continue
        shape = shapes.setdefault((schema, table), TableShape(schema, table))
        shape.columns[column] = data_type
    return shapes


def child_link(
    shape: TableShape,
    shapes: Mapping[tuple[str, str], TableShape],
    predicates: Mapping[tuple[str, str], str],
) -> str | None:
    """The condition tying a row to a guest's row elsewhere in its schema: a dlt nested table
    through its root row, a table of order lines through its order."""
    if "_dlt_root_id" in shape.columns and "__" in shape.name:
        root = (shape.schema, shape.name.split("__")[0])
        if root in predicates and "_dlt_id" in shapes[root].columns:
            return (
                f"_dlt_root_id in (select _dlt_id from {shapes[root].qualified} "
                f"where {predicates[root]})"
            )
    orders = (shape.schema, "orders")
    if (
        "order_id" in shape.columns
        and shape.name != "orders"
        and orders in predicates
        and not any(column in GUEST_COLUMNS for column in shape.columns)
    ):
        return (
            f"order_id in (select order_id from {shapes[orders].qualified} "
            f"where {predicates[orders]})"
        )
    return None


def dependants_first(shapes: Iterable[TableShape]) -> list[TableShape]:
    """Tables found through another table's rows (nested, order lines) before that table, so
    the rows that find them are still there."""
    return sorted(
        shapes,
        key=lambda shape: (
            -shape.name.count("__"),
            0 if "order_id" in shape.columns and shape.name != "orders" else 1,
            shape.schema,
            shape.name,
        ),
    )


def hash_list_path(settings: Settings) -> Path:
    return settings.state_dir / "privacy" / "suppressed_hashes.json"


def write_hash_list(connection: duckdb.DuckDBPyConnection, settings: Settings) -> Path:
    """The suppression hashes, as a file the extract filter reads without opening the warehouse
    (a source's extract runs before its load opens the file; the collector never opens it).
    Written whole and renamed into place, readable by its owner alone."""
    hashes: dict[str, list[str]] = {}
    for kind, guest_hash in connection.execute(
        f"select hash_kind, guest_hash from {SUPPRESSED_GUESTS} order by all"
    ).fetchall():
        hashes.setdefault(kind, []).append(guest_hash)
    path = hash_list_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(hashes, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def _json_values(document) -> dict[str, list[str]]:
    """kind -> values at the JSON paths the gate reads (`$.traits.email` ...)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return {}
    found: dict[str, list[str]] = {}
    for path, kind in JSON_PATHS.items():
        value = document
        for key in path.removeprefix("$.").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str | int):
            found.setdefault(kind, []).append(str(value))
    return found


def suppressed_identifiers(
    row: Mapping, hashes: Mapping[str, frozenset[str]], json_columns: Iterable[str] = ()
) -> dict[str, str]:
    """kind -> the identifier of `row` that is suppressed (empty when none is), by the gate's
    rules: `GUEST_COLUMNS` by column name, `JSON_PATHS` in JSON columns (text or dicts)."""
    hits: dict[str, str] = {}
    for column, value in row.items():
        if value is None:
            continue
        candidates = [(kind, str(value)) for kind in GUEST_COLUMNS.get(column, ())]
        if column in json_columns or isinstance(value, dict):
            candidates += [
                (kind, found) for kind, values in _json_values(value).items() for found in values
            ]
        for kind, candidate in candidates:
            if hash_identifier(kind, candidate) in hashes.get(kind, ()):
                hits[kind] = candidate
    return hits


class HashList:
    """The hash list file, read again whenever it changes (a long-running process's view)."""

    def __init__(self, path: Path):
        self.path = path
        self.stamp: int | None = None
        self.hashes: dict[str, frozenset[str]] = {}

    def current(self) -> dict[str, frozenset[str]]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self.stamp:
            self.stamp = stamp
            self.hashes = (
                {}
                if stamp is None
                else {k: frozenset(v) for k, v in json.loads(self.path.read_text()).items()}
            )
        return self.hashes


def extract_drops_path(settings: Settings) -> Path:
    return settings.state_dir / "privacy" / "dropped_at_extract.jsonl"


def log_extract_drop(settings: Settings, table_name: str, load_id: str, rows: int) -> None:
    """Count rows the extract filter dropped (counts only), for `purge` to move into
    `privacy.suppressed_rows` when the gate next opens the warehouse."""
    path = extract_drops_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = json.dumps(
        {
            "table_name": table_name,
            "load_id": load_id,
            "rows": rows,
            "dropped_at": datetime.now(UTC).isoformat(),
        }
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(line + "\n")


def _take_extract_drops(settings: Settings, source_name: str) -> list[list]:
    """The source's logged extract drops as suppressed_rows rows; the file keeps the others."""
    path = extract_drops_path(settings)
    if not path.exists():
        return []
    taken, kept = [], []
    for line in path.read_text().splitlines():
        drop = json.loads(line)
        if drop["table_name"].split(".")[0] == source_name:
            taken.append(
                [
                    drop["table_name"],
                    drop["load_id"],
                    drop["rows"],
                    datetime.fromisoformat(drop["dropped_at"]),
                ]
            )
        else:
            kept.append(line)
    if taken:
        temporary = path.with_name(f".{path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.writelines(line + "\n" for line in kept)
        os.replace(temporary, path)
    return taken


def read_hash_list(settings: Settings) -> dict[str, frozenset[str]]:
    """kind -> suppressed hashes; empty when forget never ran here."""
    return HashList(hash_list_path(settings)).current()


def suppression_keys(connection: duckdb.DuckDBPyConnection) -> int:
    """How many hashes are suppressed (0 also when forget never ran here)."""
    exists = connection.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = ? and table_name = 'suppressed_guests'",
        [SCHEMA],
    ).fetchone()[0]
    if not exists:
        return 0
    return connection.execute(f"select count(*) from {SUPPRESSED_GUESTS}").fetchone()[0]


def purge(settings: Settings, source_name: str, table_names: Iterable[str]) -> dict[str, int]:
    """Delete suppressed guests' rows from the not-yet-promoted landed batches of a source.

    Called by the gate before it validates (expectations/promote.py). On the filesystem
    destination nothing can be suppressed: `regulars forget` refuses to run there.
    """
    if settings.destination != "duckdb" or not settings.warehouse_path.exists():
        return {}
    landing, lake = f"landing_{source_name}", f"raw_{source_name}"
    dropped: dict[str, int] = {}
    with warehouse.connect(settings) as connection:
        if not suppression_keys(connection):
            return {}
        taken = _take_extract_drops(settings, source_name)
        if taken:
            ensure_tables(connection)
            connection.executemany(f"insert into {SUPPRESSED_ROWS} values (?, ?, ?, ?)", taken)
        connection.execute("set enable_progress_bar = false")
        register_functions(connection)
        shapes = table_shapes(connection, [landing, lake])
        audited = (lake, "gate_audit") in shapes
        predicates = {
            key: " or ".join(conditions)
            for key, shape in shapes.items()
            if key[0] == landing and (conditions := column_predicates(shape, SUPPRESSED_GUESTS))
        }
        landed = [shapes[(landing, name)] for name in table_names if (landing, name) in shapes]
        now = datetime.now(UTC)
        connection.execute("begin transaction")
        for shape in dependants_first(landed):
            conditions = [
                condition
                for condition in (
                    predicates.get((landing, shape.name)),
                    child_link(shape, shapes, predicates),
                )
                if condition
            ]
            if not conditions or "_dlt_load_id" not in shape.columns:
                continue
            promoted_up_to = (
                f'coalesce((select max(_landing_load_id) from "{lake}".gate_audit '
                f"where table_name = '{shape.name}' and status = 'promoted'), '')"
                if audited
                else "''"
            )
            counts = connection.execute(
                f"select _dlt_load_id, count(*) from {shape.qualified} "
                f"where _dlt_load_id > {promoted_up_to} and ({' or '.join(conditions)}) "
                "group by all"
            ).fetchall()
            if not counts:
                continue
            connection.execute(
                f"delete from {shape.qualified} where _dlt_load_id > {promoted_up_to} "
                f"and ({' or '.join(conditions)})"
            )
            ensure_tables(connection)
            connection.executemany(
                f"insert into {SUPPRESSED_ROWS} values (?, ?, ?, ?)",
                [[f"{source_name}.{shape.name}", load_id, rows, now] for load_id, rows in counts],
            )
            dropped[shape.name] = sum(rows for _, rows in counts)
        connection.execute("commit")
    return dropped
