"""The serving copy: the marts, published whole to a file BI tools read while pipelines write.

The warehouse is one DuckDB file with one writer; a BI tool reading it during a run either fails
on the lock or, worse, holds a lock that fails the run. So after the marts change they are copied
into a new DuckDB file, closed, and renamed over the previous copy. A rename is atomic on a POSIX
filesystem: a reader opening the path gets the previous complete copy or the new one, never a
mix, and a reader holding the previous file keeps reading it (its inode lives until closed). No
reader ever locks the file the writer writes.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

# What a reader finds beside the marts: which run published them, and how many rows each had.
# In the file's own `main` schema, so with the default file name BI reads them as
# `serving.published` (DuckDB names a file's catalog after it); a schema called `serving` would
# make that name ambiguous in `serving.duckdb`.
PUBLISHED, PUBLISHED_TABLES = "main.published", "main.published_tables"


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str

    @property
    def quoted(self) -> str:
        return f'"{self.schema}"."{self.name}"'


@dataclass(frozen=True)
class Publication:
    path: Path
    run_id: str
    published_at: datetime
    rows: dict[Relation, int]
    missing: list[Relation]
    seconds: float
    bytes: int


def mart_relations(manifest_path: Path) -> list[Relation]:
    """Every relation dbt builds under models/marts, as the dbt assets key them."""
    manifest = json.loads(manifest_path.read_text())
    relations = {
        Relation(node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["fqn"][1:2] == ["marts"]
        and node["config"].get("enabled", True)
        and node["config"].get("materialized") != "ephemeral"
    }
    return sorted(relations, key=lambda relation: (relation.schema, relation.name))


def serving_path(warehouse_path: Path) -> Path:
    """REGULARS_SERVING_PATH, else `serving.duckdb` beside the warehouse."""
    configured = os.environ.get("REGULARS_SERVING_PATH")
    return Path(configured).resolve() if configured else warehouse_path.parent / "serving.duckdb"


def publish(
    warehouse_path: Path, target: Path, relations: list[Relation], run_id: str
) -> Publication:
    """Copy `relations` from the warehouse into a new file and rename it over `target`.

    A relation the warehouse does not have (a mart not built yet, or disabled) is left out and
    reported, so a partial build still publishes what exists; the previous copy is replaced as a
    whole either way, so a reader never sees tables from two runs.
    """
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{target.name}.{run_id}.draft")
    for leftover in (draft, draft.with_name(draft.name + ".wal")):
        leftover.unlink(missing_ok=True)
    published_at = datetime.now(UTC)
    rows: dict[Relation, int] = {}
    with duckdb.connect(str(draft)) as connection:
        # Read-only: the copy never takes the warehouse's write lock, so it cannot block a run.
        connection.execute(f"attach '{warehouse_path}' as warehouse (read_only)")
        present = {
            Relation(schema, name)
            for schema, name in connection.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_catalog = 'warehouse'"
            ).fetchall()
        }
        for relation in relations:
            if relation not in present:
                continue
            connection.execute(f'create schema if not exists "{relation.schema}"')
            connection.execute(
                f"create table {relation.quoted} as select * from warehouse.{relation.quoted}"
            )
            rows[relation] = connection.execute(
                f"select count(*) from {relation.quoted}"
            ).fetchone()[0]
        connection.execute("detach warehouse")
        _record(connection, run_id, published_at, rows)
        connection.execute("checkpoint")
    _durable(draft)
    os.replace(draft, target)
    _durable(target.parent)
    return Publication(
        path=target,
        run_id=run_id,
        published_at=published_at,
        rows=rows,
        missing=[relation for relation in relations if relation not in rows],
        seconds=time.perf_counter() - started,
        bytes=target.stat().st_size,
    )


def _record(
    connection: duckdb.DuckDBPyConnection,
    run_id: str,
    published_at: datetime,
    rows: dict[Relation, int],
) -> None:
    connection.execute(
        f"create table {PUBLISHED} as "
        "select ?::varchar as run_id, ?::timestamptz as published_at, "
        "?::integer as tables_published, ?::bigint as rows_published",
        [run_id, published_at, len(rows), sum(rows.values())],
    )
    connection.execute(
        f"create table {PUBLISHED_TABLES} "
        "(table_schema varchar, table_name varchar, row_count bigint)"
    )
    connection.executemany(
        f"insert into {PUBLISHED_TABLES} values (?, ?, ?)",
        [(relation.schema, relation.name, count) for relation, count in rows.items()],
    )


def _durable(path: Path) -> None:
    """fsync a file or a folder: the rename must not reach the disk before the data it names."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def describe(path: Path) -> str:
    """One line for people: where the copy is and which run it holds."""
    if not path.exists():
        return f"Serving copy for BI: none yet at {path} (the next run publishes it)."
    with duckdb.connect(str(path), read_only=True) as connection:
        run_id, published_at, tables, rows = connection.execute(
            f"select run_id, published_at, tables_published, rows_published from {PUBLISHED}"
        ).fetchone()
    return (
        f"Serving copy for BI: {path} ({tables} marts, {rows:,} rows, run {run_id[:8]}, "
        f"published {published_at:%Y-%m-%d %H:%M:%S %Z})"
    )


# --- PostgreSQL, for BI tools that cannot read DuckDB -----------------------------------------

POSTGRES_SCHEMA = "marts"


@dataclass(frozen=True)
class PostgresPublication:
    schema: str
    run_id: str
    rows: dict[str, int]
    seconds: float


class ServingError(Exception):
    """A publication that could not be made, said in one paragraph for the person running it."""


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 5432}{parts.path}"


def postgres_url() -> str | None:
    """REGULARS_SERVING_POSTGRES: a PostgreSQL URL the marts are published to as well."""
    return os.environ.get("REGULARS_SERVING_POSTGRES") or None


def publish_postgres(
    copy: Path, url: str, schema: str = POSTGRES_SCHEMA, workdir: Path | None = None
) -> PostgresPublication:
    """The serving copy's tables into `schema` of a PostgreSQL database, swapped in whole.

    dlt loads every table into a schema of this publication's own, then one transaction renames
    it over `schema`: PostgreSQL's DDL is transactional, so a reader's query sees the previous
    publication or this one, never a mix (a query running across the swap holds its tables and
    delays the old schema's drop until it ends). The copy, not the warehouse, is read, so this
    takes no warehouse lock and publishes exactly the snapshot BI reads in DuckDB.
    """
    import tempfile

    import dlt
    import psycopg2

    started = time.perf_counter()
    try:
        psycopg2.connect(url, connect_timeout=10).close()
    except psycopg2.Error as error:
        said = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ServingError(
            f"The serving copy could not reach PostgreSQL at {_redacted(url)}: {said}. Check "
            "REGULARS_SERVING_POSTGRES (postgresql://user:password@host:port/database), that the "
            "server is up and that the user may create schemas in that database; unset it to "
            "publish the DuckDB copy only."
        ) from None
    with duckdb.connect(str(copy), read_only=True) as connection:
        (run_id,) = connection.execute(f"select run_id from {PUBLISHED}").fetchone()
        tables = [("main", "published"), ("main", "published_tables")] + [
            tuple(row)
            for row in connection.execute(
                f"select table_schema, table_name from {PUBLISHED_TABLES} order by 1, 2"
            ).fetchall()
        ]
    # One name per publication, one dlt need not normalise (PostgreSQL stops at 63 bytes).
    incoming = f"{schema}_incoming_{re.sub('[^a-z0-9]', '', run_id.lower())[:12]}"
    with tempfile.TemporaryDirectory(dir=workdir) as state:
        pipeline = dlt.pipeline(
            pipeline_name="serving_postgres",
            pipelines_dir=state,
            destination=dlt.destinations.postgres(credentials=url),
            dataset_name=incoming,
        )
        info = pipeline.run(
            [
                dlt.resource(_batches(copy, table_schema, name), name=name)
                for table_schema, name in tables
            ],
            write_disposition="replace",
        )
        info.raise_on_failed_jobs()
        rows = {
            name: count
            for name, count in pipeline.last_trace.last_normalize_info.row_counts.items()
            if not name.startswith("_dlt")
        }
    retired = f"{schema}_retired"
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f'drop schema if exists "{retired}" cascade')
        cursor.execute(
            "select 1 from information_schema.schemata where schema_name = %s", (schema,)
        )
        if cursor.fetchone():
            cursor.execute(f'alter schema "{schema}" rename to "{retired}"')
        cursor.execute(f'alter schema "{incoming}" rename to "{schema}"')
        cursor.execute(f'drop schema if exists "{retired}" cascade')
        # dlt's scratch schema for the load; nothing reads it.
        cursor.execute(f'drop schema if exists "{incoming}_staging" cascade')
    connection.close()
    return PostgresPublication(schema, run_id, rows, time.perf_counter() - started)


def _batches(copy: Path, schema: str, name: str):
    """A table of the copy as Arrow record batches, so memory holds one batch, not the table."""
    with duckdb.connect(str(copy), read_only=True) as connection:
        reader = connection.execute(f'select * from "{schema}"."{name}"').fetch_record_batch(50_000)
        yield from reader
