"""How fast the simulator builds a whole world, against the raw cost of writing that much data.

    .venv/bin/python bench/bench_simulator.py --customers 100000 --days 365 --acquisition-days 365

Machines here are noisy, so the figure that travels is a ratio: the build (every channel,
generated and written) against a baseline measured in the same process: DuckDB writing the same
number of gzip NDJSON lines (synthetic, ten columns) and SQLite taking the same number of rows.
Peak memory is the process's maximum resident set size, read after the build.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import sqlite3
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from simulator import WorldConfig, build_world


def landing_lines(out_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for stream in sorted((out_dir / "landing").iterdir()):
        lines = 0
        for path in stream.rglob("*.ndjson.gz"):
            with gzip.open(path, "rb") as handle:
                lines += sum(1 for _ in handle)
        counts[stream.name] = lines
    return counts


def database_rows(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        tables = [
            r[0] for r in connection.execute("select name from sqlite_master where type='table'")
        ]
        return {t: connection.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


def baseline_seconds(lines: int, rows: int, scratch: Path) -> float:
    """Write `lines` synthetic JSON lines with DuckDB and insert `rows` rows into SQLite."""
    started = time.perf_counter()
    with duckdb.connect() as connection:
        connection.execute(
            f"""copy (select i as id, 'track' as type, 'Product Viewed' as event,
                         uuid()::varchar as message_id, now() as ts, i % 97 as store,
                         i * 1.5 as price, 'x' || i as sku, i % 2 = 0 as flag,
                         {{'a': i, 'b': 'text'}} as props
                  from range({lines}) t(i))
               to '{scratch / "baseline.ndjson.gz"}' (format json, compression gzip)"""
        )
    with sqlite3.connect(scratch / "baseline.sqlite") as connection:
        connection.execute("create table t (a integer, b text, c integer, d text, e integer)")
        connection.executemany(
            "insert into t values (?, ?, ?, ?, ?)",
            ((i, "row", i * 3, "2025-01-01 10:00:00.000000", i % 7) for i in range(rows)),
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--acquisition-days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = WorldConfig(
        seed=args.seed,
        customers=args.customers,
        days=args.days,
        acquisition_days=args.acquisition_days,
        start_date=date(2025, 1, 1),
    )
    print(f"Building {args.customers:,} expected guests over {args.days} days ...", flush=True)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        started = time.perf_counter()
        paths = build_world(config, scratch / "world")
        build_s = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = database_rows(paths.ordering_db)
        lines = landing_lines(paths.out_dir)
        total = sum(rows.values()) + sum(lines.values())
        print("ordering DB rows:")
        for name, count in rows.items():
            print(f"  {name:<22} {count:>12,}")
        print("landing zone lines:")
        for name, count in lines.items():
            print(f"  {name:<22} {count:>12,}")
        base_s = baseline_seconds(sum(lines.values()), sum(rows.values()), scratch)
    print(f"whole build            {build_s:>11.1f} s  ({total / build_s:,.0f} rows+lines/s)")
    print(f"baseline (same volume) {base_s:>11.1f} s  (DuckDB gzip NDJSON + SQLite inserts)")
    print(f"build / baseline       {build_s / base_s:>13.2f}")
    print(f"peak memory            {peak_mb:>10,.0f} MB")


if __name__ == "__main__":
    main()
