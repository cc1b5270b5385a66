"""A BI tool's reads of the serving copy, as a separate process: `python -m tests.serving_reader
SERVING OUT STOP MODE`.

Every 0.2 s until the STOP file appears it reads the copy and checks that every table has the row
count `published_tables` says its run published; one JSON line per read goes to OUT. MODE `fresh`
opens the copy read-only for each read, as a dashboard refresh would; `held` opens it once and
keeps the connection. They are separate processes because DuckDB shares one open database per
file within a process: a "fresh" connection beside a held one would be the held one.
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


def main(serving: str, out: str, stop: str, mode: str) -> None:
    held = duckdb.connect(serving, read_only=True) if mode == "held" else None
    with open(out, "a") as lines:
        while not Path(stop).exists():
            record: dict = {"at": time.time()}
            try:
                if held is not None:
                    record["read"] = read(held)
                else:
                    with duckdb.connect(serving, read_only=True) as fresh:
                        record["read"] = read(fresh)
            except duckdb.Error as error:
                record["error"] = str(error)
            lines.write(json.dumps(record) + "\n")
            lines.flush()
            time.sleep(INTERVAL_SECONDS)
    if held is not None:
        held.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
