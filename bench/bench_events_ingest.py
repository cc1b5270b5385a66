"""Events ingestion throughput: the dlt events pipeline against DuckDB's own read_json.

    .venv/bin/python bench/bench_events_ingest.py --customers 12000 --days 365

Builds a simulated world big enough for at least a million Segment messages, then, in the same
process and on the same files: (1) lands them with the events pipeline (dlt, Arrow path, dedup
on messageId) into a fresh DuckDB file; (2) reads them with DuckDB's `read_json` into a table of
the same file format. Prints both rates (messages per second) and their ratio; the goal is a
ratio of at least 0.3.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from ingestion.events import events_source
from ingestion.pipelines import landing_pipeline
from regulars.settings import load_settings
from simulator import WorldConfig, build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        config = WorldConfig(
            seed=args.seed,
            customers=args.customers,
            days=args.days,
            acquisition_days=args.days,
            start_date=date(2025, 1, 1),
        )
        print(f"Building a world of {args.customers:,} guests x {args.days} days ...", flush=True)
        build_world(config, scratch / "data")
        landing = scratch / "data" / "landing"
        files = sorted((landing / "events").rglob("*.ndjson.gz"))

        os.environ["REGULARS_WAREHOUSE"] = str(scratch / "dlt.duckdb")
        os.environ["REGULARS_STATE_DIR"] = str(scratch / "var")
        settings = load_settings()
        print(f"Landing {len(files):,} files with the events pipeline ...", flush=True)
        started = time.perf_counter()
        landing_pipeline("events", settings).run(events_source(bucket_url=str(landing)))
        dlt_s = time.perf_counter() - started
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
            landed = connection.execute("select count(*) from landing_events.messages").fetchone()

        print("Reading the same files with DuckDB read_json ...", flush=True)
        started = time.perf_counter()
        with duckdb.connect(str(scratch / "baseline.duckdb")) as connection:
            connection.execute(
                "create table messages as select * from read_json(?, "
                "format = 'newline_delimited', compression = 'gzip')",
                [[str(path) for path in files]],
            )
            (read,) = connection.execute("select count(*) from messages").fetchone()
        duckdb_s = time.perf_counter() - started

    dlt_rate, duckdb_rate = landed[0] / dlt_s, read / duckdb_s
    print(
        f"events pipeline (dlt)   {landed[0]:>11,} messages  {dlt_s:>7.1f} s  {dlt_rate:>11,.0f}/s"
    )
    print(
        f"DuckDB read_json        {read:>11,} lines     {duckdb_s:>7.1f} s  {duckdb_rate:>11,.0f}/s"
    )
    print(f"ratio dlt / DuckDB      {dlt_rate / duckdb_rate:>11.2f}  (goal >= 0.3)")


if __name__ == "__main__":
    main()
