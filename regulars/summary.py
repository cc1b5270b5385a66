"""What a person reads after a run: how much reached the lake, quarantine and each mart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb


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
