"""Rows that stand for lines a file reader could not read, so that the gate holds them.

A reader that stopped at a bad line would block the rest of its file and every file after it; a
reader that skipped it would lose it unseen. So the line lands as a row of its table keyed by its
place (`_unreadable:<file>:<line>`), with every other column null and the reason, file and line
in `_malformed_fields`, which each such table's suite expects to be null: the gate quarantines
the row with its reason, and `regulars summary` counts it. The reason never quotes the line (it
may hold a phone number); the line itself stays in its file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

MALFORMED = "_malformed_fields"


def unreadable_key(file_name: str, line: int) -> str:
    return f"_unreadable:{file_name}:{line}"


def stand_in_rows(schema: pa.Schema, given: Mapping[str, Sequence]) -> pa.Table:
    """Rows in `schema` with the `given` columns (of equal length) and nulls in the others."""
    count = len(next(iter(given.values())))
    return pa.table(
        {
            field.name: pa.array(given[field.name], field.type)
            if field.name in given
            else pa.nulls(count, field.type)
            for field in schema
        },
        schema=schema,
    )
