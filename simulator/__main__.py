"""Command line: `python -m simulator build ...` and `python -m simulator advance ...`."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from simulator.config import WorldConfig, WorldPaths
from simulator.model.snapshot import TABLE_ORDER
from simulator.world import WorldRefused, advance_world, build_world, read_state
from simulator.writers.sqlite import table_counts

DEFAULTS = WorldConfig()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write a new world (replacing any in --out)")
    build.add_argument(
        "--customers",
        type=int,
        default=DEFAULTS.customers,
        help="expected sign-ups over the first --acquisition-days days",
    )
    build.add_argument("--days", type=int, default=DEFAULTS.days, help="days up to the snapshot")
    build.add_argument("--seed", type=int, default=DEFAULTS.seed)
    build.add_argument(
        "--start",
        type=date.fromisoformat,
        default=DEFAULTS.start_date,
        help="first simulated day, YYYY-MM-DD",
    )
    build.add_argument("--provinces", type=int, default=DEFAULTS.provinces)
    build.add_argument("--stores-per-province", type=int, default=DEFAULTS.stores_per_province)
    build.add_argument("--acquisition-days", type=int, default=DEFAULTS.acquisition_days)
    build.add_argument("--out", type=Path, default=Path("data"))
    advance = commands.add_parser("advance", help="move the world in --out forward")
    advance.add_argument("--days", type=int, default=1)
    advance.add_argument("--out", type=Path, default=Path("data"))
    return parser


def _summary(paths: WorldPaths, before: dict[str, int], took: float) -> str:
    _, as_of = read_state(paths.out_dir)
    after = table_counts(paths.ordering_db, list(TABLE_ORDER))
    lines = [f"world in {paths.out_dir} as of {as_of} ({took:.1f} s)"]
    for name, rows in after.items():
        added = rows - before.get(name, 0)
        lines.append(f"  {name:<12} {rows:>10,} rows" + (f"  (+{added:,})" if before else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    if args.command == "build":
        config = WorldConfig(
            seed=args.seed,
            customers=args.customers,
            days=args.days,
            start_date=args.start,
            provinces=args.provinces,
            stores_per_province=args.stores_per_province,
            acquisition_days=args.acquisition_days,
        )
        try:
            paths = build_world(config, args.out)
        except WorldRefused as error:
            raise SystemExit(f"error: {error}") from None
        before: dict[str, int] = {}
    else:
        paths = WorldPaths.under(args.out)
        try:
            read_state(args.out)
        except FileNotFoundError as error:
            raise SystemExit(f"error: {error}") from None
        before = table_counts(paths.ordering_db, list(TABLE_ORDER))
        try:
            paths = advance_world(args.out, days=args.days)
        except WorldRefused as error:
            raise SystemExit(f"error: {error}") from None
    print(_summary(paths, before, time.perf_counter() - started))


if __name__ == "__main__":
    main()
