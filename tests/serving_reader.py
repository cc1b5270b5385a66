"""A BI tool's reads of the serving copy, as a separate process: `python -m tests.serving_reader
SERVING OUT STOP`.

Every 0.2 s until the STOP file appears it opens the copy read-only, as a dashboard refresh
would, and checks that every table has the row count `published_tables` says its run published; a
second connection, opened once at the start, does the same on the file it opened. One JSON line
per read goes to OUT.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

INTERVAL_SECONDS = 0.2


def read(connection: duckdb.DuckDBPyConnection) -> dict:
    (run_id,) = connection.execute("select run_id from published").fetchone()
    published = connection.execute(
        "select table_schema, table_name, row_count from published_tables"
    ).fetchall()
    mismatched = [
        f"{schema}.{name}"
        for schema, name, rows in published
        if connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0] != rows
    ]
    return {"run_id": run_id, "tables": len(published), "mismatched": mismatched}


def main(serving: str, out: str, stop: str) -> None:
    held = duckdb.connect(serving, read_only=True)
    with open(out, "a") as lines:
        while not Path(stop).exists():
            record: dict = {"at": time.time()}
            try:
                with duckdb.connect(serving, read_only=True) as fresh:
                    record["fresh"] = read(fresh)
            except duckdb.Error as error:
                record["fresh_error"] = str(error)
            try:
                record["held"] = read(held)
            except duckdb.Error as error:
                record["held_error"] = str(error)
            lines.write(json.dumps(record) + "\n")
            lines.flush()
            time.sleep(INTERVAL_SECONDS)
    held.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
