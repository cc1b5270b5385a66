"""What publishing the serving copy costs, against the run that built the marts.

    .venv/bin/python bench/bench_serving.py    # after `make run` (any CUSTOMERS / DAYS)

Two ratios, each against a baseline of the same session:
- the `serving/published` step of the latest run in the project's Dagster instance
  (var/dagster_home), against that run's wall time;
- the publish repeated here (median of three, into a temporary file), against copying the whole
  warehouse file with the OS (the I/O floor of moving that many bytes on this machine, now).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from orchestration.serving import SERVING_KEY
from regulars.serving import mart_relations, publish
from regulars.settings import export_environment, load_settings


def latest_run_figures(instance: dg.DagsterInstance) -> tuple[str, float, float] | None:
    """(run id, run seconds, serving step seconds) of the latest run that published."""
    event = instance.get_latest_materialization_event(SERVING_KEY)
    if event is None:
        return None
    run = instance.get_run_stats(event.run_id)
    steps = {s.step_key: s for s in instance.get_run_step_stats(event.run_id)}
    step = next(s for key, s in steps.items() if "serving" in key)
    return event.run_id, run.end_time - run.start_time, step.end_time - step.start_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    export_environment(settings)
    warehouse = settings.warehouse_path
    with dg.DagsterInstance.get() as instance:
        figures = latest_run_figures(instance)
    if figures:
        run_id, run_seconds, step_seconds = figures
        print(
            f"run {run_id[:8]}: {run_seconds:,.1f} s, serving/published {step_seconds:,.1f} s "
            f"= {step_seconds / run_seconds:.1%} of the run"
        )
    else:
        print("No run has published the serving copy in this instance yet: run `make run`.")
    relations = mart_relations(settings.dbt_project_dir / "target" / "manifest.json")
    with tempfile.TemporaryDirectory(dir=warehouse.parent) as scratch:
        copies = []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            shutil.copyfile(warehouse, Path(scratch) / "whole.duckdb")
            copies.append(time.perf_counter() - started)
            publication = publish(
                warehouse, Path(scratch) / "serving.duckdb", relations, f"b{repeat}"
            )
        publishes_median = statistics.median(
            publish(warehouse, Path(scratch) / "serving.duckdb", relations, f"m{n}").seconds
            for n in range(args.repeats)
        )
    copy_median = statistics.median(copies)
    rows = sum(publication.rows.values())
    print(
        f"publish: {len(publication.rows)} marts, {rows:,} rows, "
        f"{publication.bytes / 1e6:,.1f} MB, median {publishes_median:.2f} s; "
        f"copying the {warehouse.stat().st_size / 1e6:,.1f} MB warehouse file {copy_median:.2f} s; "
        f"ratio {publishes_median / copy_median:.2f}x"
    )


if __name__ == "__main__":
    main()
