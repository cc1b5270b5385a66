"""What the validation gate adds to a load: the gate against the landing load alone, same rows.

    .venv/bin/python bench/bench_gate.py                 # about 1.1 million Segment messages
    .venv/bin/python bench/bench_gate.py --rows 100000   # a quick check

Builds a simulated world with at least `--rows` Segment messages (the events stream, as
bench_events_ingest.py does), then, in one process and on one fresh DuckDB warehouse: (1) lands
them with the events pipeline alone (dlt into landing_events); (2) runs the gate on that batch:
reads it back, validates it with the messages suite (GX, result format COMPLETE), renders its
Data Docs page, and promotes the passing rows into raw_events with dlt. Prints both times, the
gate's seconds per million rows and its ratio to the landing load (goal: under 0.25), and where
the gate's time went.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from expectations import factory
from expectations.promote import promote
from ingestion.events import events_source
from ingestion.pipelines import lake_pipeline, landing_pipeline
from regulars.settings import load_settings
from simulator import WorldConfig, build_world

# Segment messages per guest and year in the simulated world (1.1 million for 12,000 guests).
MESSAGES_PER_GUEST_YEAR = 93


def timed(spent: dict[str, float], name: str, function: Callable) -> Callable:
    """`function`, adding its wall time to spent[name] on every call."""

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    return wrapper


def step_seconds(pipeline) -> dict[str, float]:
    """Seconds of each step (extract, normalize, load) of the pipeline's last run."""
    return {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in pipeline.last_trace.steps
        if step.step in ("extract", "normalize", "load")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Messages, at least.")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # A tenth more guests than the average needs, so the world has at least `--rows` messages.
    guests = math.ceil(1.1 * args.rows / MESSAGES_PER_GUEST_YEAR * 365 / args.days)

    # Instrumentation: how much of the gate is GX validation, and how much of that is Data Docs.
    spent: dict[str, float] = defaultdict(float)
    factory.SuiteRunner.validate = timed(spent, "validate", factory.SuiteRunner.validate)
    factory.SuiteRunner._render = timed(spent, "docs", factory.SuiteRunner._render)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        config = WorldConfig(
            seed=args.seed,
            customers=guests,
            days=args.days,
            acquisition_days=args.days,
            start_date=date(2025, 1, 1),
        )
        print(f"Building a world of {guests:,} guests x {args.days} days ...", flush=True)
        build_world(config, scratch / "data")
        os.environ["REGULARS_WAREHOUSE"] = str(scratch / "warehouse.duckdb")
        os.environ["REGULARS_STATE_DIR"] = str(scratch / "var")
        settings = load_settings()

        print("Landing the events stream (dlt, landing pipeline alone) ...", flush=True)
        landing = landing_pipeline("events", settings)
        started = time.perf_counter()
        landing.run(events_source(bucket_url=str(scratch / "data" / "landing")))
        load_s = time.perf_counter() - started
        load_steps = step_seconds(landing)

        print("Gating the batch (read, GX suite, Data Docs, promote to the lake) ...", flush=True)
        started = time.perf_counter()
        result = promote("events", settings)
        gate_s = time.perf_counter() - started
        gate_steps = step_seconds(lake_pipeline("events", settings))
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
            (landed,) = connection.execute(
                "select count(*) from landing_events.messages"
            ).fetchone()
            (lake,) = connection.execute("select count(*) from raw_events.messages").fetchone()
        table = result.report.tables["messages"]
        assert table.reconciles and lake == table.promoted_rows, "the gate lost rows"

    millions = landed / 1_000_000
    held = table.quarantined_rows
    print(f"\nrows landed              {landed:>12,}  (lake {lake:,}, held {held:,})")
    print(
        f"landing load (dlt)       {load_s:>10.1f} s   {load_s / millions:>6.1f} s per million rows"
    )
    print(
        f"gate                     {gate_s:>10.1f} s   {gate_s / millions:>6.1f} s per million rows"
    )
    print(f"ratio gate / load        {gate_s / load_s:>12.2f}  (goal < 0.25)")
    print("\nwhere the time went (s):")
    print("  landing   " + "  ".join(f"{k} {v:.1f}" for k, v in load_steps.items()))
    print("  gate      " + "  ".join(f"{k} {v:.1f}" for k, v in gate_steps.items()))
    print(
        f"  gate extract = read the batch + GX validation {spent['validate']:.1f}"
        f" (of which Data Docs {spent['docs']:.1f}) + writing the promoted rows"
    )


if __name__ == "__main__":
    main()
