"""What a person reads after a run: how much reached the lake, quarantine and each mart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

# The lake's schemas: raw_<source>, without dlt's raw_<source>_staging scratch copies.
LAKE_SCHEMA = "starts_with(table_schema, 'raw_') and not ends_with(table_schema, '_staging')"


@dataclass(frozen=True)
class RelationCount:
    schema: str
    name: str
    rows: int


def relation_counts(warehouse: Path, schema_prefixes: tuple[str, ...]) -> list[RelationCount]:
    """Row counts of every table and view whose schema starts with one of the prefixes."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        relations = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where not starts_with(table_name, '_dlt') order by 1, 2"
        ).fetchall()
        return [
            RelationCount(
                schema,
                name,
                connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0],
            )
            for schema, name in relations
            if schema.startswith(schema_prefixes)
        ]


def render(counts: list[RelationCount], title: str) -> str:
    if not counts:
        return f"{title}: none"
    width = max(len(f"{count.schema}.{count.name}") for count in counts)
    lines = [f"{title}:"]
    lines += [f"  {f'{c.schema}.{c.name}':<{width}}  {c.rows:>10,}" for c in counts]
    return "\n".join(lines)


def held_rows(warehouse: Path) -> list[RelationCount]:
    """Rows each quarantine table still holds: neither replayed into the lake nor superseded by
    a newer version there. The filesystem lake appends each version of a row: the newest counts."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        columns = connection.execute(
            "select table_schema, table_name, list(column_name) from information_schema.columns "
            f"where {LAKE_SCHEMA} and starts_with(table_name, 'quarantine_') "
            "group by all order by all"
        ).fetchall()
        counts = []
        for schema, name, names in columns:
            markers = [column for column in ("replayed_at", "superseded_at") if column in names]
            released = " and ".join(f"{column} is null" for column in markers)
            newest = (
                "qualify row_number() over "
                "(partition by quarantine_id order by _dlt_load_id desc) = 1"
                if "_dlt_load_id" in names
                else ""
            )
            (rows,) = connection.execute(
                f"select count(*) filter (where {released or 'true'}) from "
                f'(select * from "{schema}"."{name}" {newest})'
            ).fetchone()
            counts.append(RelationCount(schema, name, rows))
        return counts


@dataclass(frozen=True)
class HeldBatch:
    lake_table: str
    load_id: str
    reason: str


def held_batches(warehouse: Path) -> list[HeldBatch]:
    """Batches the gate holds back whole: a table whose latest verdict is a batch rejection.

    Later batches of the table wait behind it (promotion keeps load order), so nothing of that
    table reaches the marts until someone fixes the data or accepts the batch.
    """
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        schemas = connection.execute(
            "select table_schema from information_schema.tables where table_name = 'gate_audit' "
            f"and {LAKE_SCHEMA} order by 1"
        ).fetchall()
        held = []
        for (schema,) in schemas:
            rows = connection.execute(
                f"""
                select table_name, _landing_load_id, reason, status
                from "{schema}".gate_audit
                qualify row_number() over (
                    partition by table_name order by validated_at desc
                ) = 1
                """
            ).fetchall()
            held += [
                HeldBatch(f"{schema}.{table}", load_id, reason)
                for table, load_id, reason, status in rows
                if status == "batch_rejected"
            ]
        return held


def render_held(held: list[HeldBatch]) -> str:
    if not held:
        return "Held batches (rejected whole by the gate): none"
    lines = ["Held batches (rejected whole by the gate; the table's later batches wait):"]
    lines += [f"  {batch.lake_table}  {batch.reason}" for batch in held]
    lines.append(
        "  Fix the source and run again, or accept a batch that is small for a known reason: "
        "regulars replay <source> --accept-volume"
    )
    return "\n".join(lines)


def latest_exports(warehouse: Path) -> list[tuple]:
    """The latest export of each audience to each channel: members, added, removed, file."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        exists = connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'activation' and table_name = 'export_log'"
        ).fetchone()[0]
        if not exists:
            return []
        return connection.execute(
            """
            select audience, channel, members, added, removed, file_path
            from activation.export_log
            qualify row_number() over (partition by audience, channel order by export_id desc) = 1
            order by audience, channel
            """
        ).fetchall()


def render_exports(exports: list[tuple]) -> str:
    if not exports:
        return "Audience exports: none"
    lines = ["Audience exports (latest per channel: members, +added, -removed):"]
    width = max(len(f"{audience} -> {channel}") for audience, channel, *_ in exports)
    for audience, channel, members, added, removed, file_path in exports:
        target = f"{audience} -> {channel}"
        lines.append(f"  {target:<{width}}  {members:>7,}  +{added:<6,} -{removed:<6,} {file_path}")
    return "\n".join(lines)
