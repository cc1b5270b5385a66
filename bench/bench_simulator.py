"""How fast the simulator builds a world, against the cost of merely writing its rows.

    .venv/bin/python bench/bench_simulator.py --customers 100000 --days 365 --acquisition-days 365

Machines here are noisy, so the figure that travels is a ratio: generating the world (the latent
timeline and the snapshot) against writing the same rows to SQLite, both measured in this process
on this machine. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from simulator import WorldConfig
from simulator.snapshot import ordering_tables
from simulator.sqlite_writer import write_database
from simulator.timeline import simulate


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
    as_of = config.first_as_of
    print(f"Simulating {args.customers:,} expected guests over {args.days} days ...", flush=True)

    started = time.perf_counter()
    tables = ordering_tables(simulate(config, as_of), as_of)
    generate_s = time.perf_counter() - started
    rows = sum(len(table.created_us) for table in tables.values())

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        write_database(Path(scratch) / "ordering.sqlite", tables)
        write_s = time.perf_counter() - started

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total_s = generate_s + write_s
    print(f"rows written          {rows:>14,}")
    for name, table in tables.items():
        print(f"  {name:<19} {len(table.created_us):>14,}")
    print(f"generate              {generate_s:>13.1f}s")
    print(f"write to SQLite       {write_s:>13.1f}s")
    print(f"whole build           {total_s:>13.1f}s  ({rows / total_s:,.0f} rows/s)")
    print(f"generate / write      {generate_s / write_s:>14.2f}  (baseline: writing the rows)")
    print(f"peak memory           {peak_mb:>11,.0f} MB")


if __name__ == "__main__":
    main()
