"""Dagster's overhead: materialising everything through Dagster against the same steps run directly.

    .venv/bin/python bench/bench_dagster_overhead.py --customers 300 --days 60

Builds one simulated world, then, in this process and on that world, alternates two ways of
doing the same work, each on a fresh warehouse, dlt state and Dagster instance at the same paths
(a user's next run has the same paths, and dbt re-parses the whole project when its profile's
warehouse path changes; both ways start from dbt's parse of the project as it is):

- dagster: what `regulars materialize` does: dbt's parse where the project changed, then
  `orchestration.materialize.materialize_everything` (build the definitions, one run of every
  asset, the day-partitioned facts over every day) on a persistent instance in the trial's
  DAGSTER_HOME, event-log writes included, with its progress lines (to a file) in place of
  Dagster's console log;
- direct: for every active source, its landing dlt pipeline run and the gate's `promote`, then
  `dbt build` as a subprocess (what `regulars ingest` does, plus dbt), then the audiences and
  their channel exports and the serving copy, which the Dagster graph also ends with.

The order alternates (direct, dagster, dagster, direct, ...) so that drift on a shared machine
falls on both sides. Imports (and the gate's registration of its suites in GX, once a process)
are paid before the first trial, and the demo GA4 and Meta fakes are served for the whole
session, so neither is in either time. Prints each trial, the mean of each way, and Dagster's
overhead as a ratio (dagster / direct); both ways must leave the same row counts in the lake and
the marts, or the comparison is void and the script says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import dagster as dg
import duckdb

from expectations.gate import runner_for
from expectations.promote import promote, suites_for
from ingestion.pipelines import landing_held_open, landing_pipeline, load_options
from ingestion.registry import configured_sources
from orchestration.dbt import PARSE_ARTIFACTS, chain_vars, dbt_project, prepare, prepare_if_changed
from regulars import warehouse
from regulars.activation.config import load_config
from regulars.activation.export import export_channel
from regulars.activation.meta_client import MetaCustomAudiences
from regulars.activation.selection import checked, store_audience
from regulars.cli.demo import demo_apis
from regulars.serving import mart_relations, publish, serving_path
from regulars.settings import Settings, beside_python, export_environment, load_settings
from simulator import WorldConfig, build_world

COUNTED_SCHEMAS = "table_schema like 'raw\\_%' escape '\\' or table_schema = 'marts'"


def trial_settings(world: Path, trial: Path) -> Settings:
    """Point Regulars at the shared world and at an emptied warehouse and state for one trial."""
    shutil.rmtree(trial, ignore_errors=True)
    os.environ["REGULARS_DATA_DIR"] = str(world)
    os.environ["REGULARS_WAREHOUSE"] = str(trial / "warehouse" / "regulars.duckdb")
    os.environ["REGULARS_STATE_DIR"] = str(trial / "var")
    # export_environment only sets DAGSTER_HOME when it is unset: each trial gets a new one.
    os.environ["DAGSTER_HOME"] = str(trial / "var" / "dagster_home")
    settings = load_settings()
    export_environment(settings)
    return settings


def through_dagster(settings: Settings, trial: Path, show_steps: bool = False) -> dict[str, float]:
    """Seconds of each Dagster run (as its event log has them) and of everything around them."""
    from orchestration.materialize import materialize_everything

    started = time.perf_counter()
    # As `regulars materialize` begins: dbt parses where something it reads changed since the
    # last parse (here nothing has), and the run's dbt step reuses that parse.
    prepare_if_changed(dbt_project(settings), settings)
    parsed = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        with (trial / "progress.log").open("w") as progress:
            result = materialize_everything(
                settings, instance, raise_on_error=False, progress=progress
            )
        if not result.success:
            failed = ", ".join(result.failed_steps)
            raise SystemExit(f"Dagster failed at {failed}: see the log above.")
        stats = instance.get_run_stats(result.run_id)
        job = instance.get_run_by_id(result.run_id).job_name
        parts = {"dbt parse": parsed - started, f"run {job}": stats.end_time - stats.start_time}
        if show_steps:
            steps = instance.get_run_step_stats(result.run_id)
            for step in sorted(steps, key=lambda step: step.start_time or 0):
                if step.start_time and step.end_time:
                    print(f"    {step.step_key:<56} {step.end_time - step.start_time:6.1f} s")
    parts["definitions, launch, teardown"] = time.perf_counter() - started - sum(parts.values())
    return parts


def directly(settings: Settings, trial: Path) -> dict[str, float]:
    """Seconds of the landing and gate of every source, and of `dbt build`."""
    started = time.perf_counter()
    for source in configured_sources(settings):
        with landing_held_open(settings):
            landing_pipeline(source.name, settings).run(
                source.build(settings), **load_options(settings)
            )
        promote(source.name, settings)
    landed = time.perf_counter()
    # dbt reuses the last parse, as in the project's own target folder, but leaves that folder
    # as the Dagster trials find it: a manifest written there is a change `prepare_if_changed`
    # parses again for.
    target = trial / "dbt_target"
    target.mkdir()
    shutil.copy2(settings.dbt_project_dir / "target" / PARSE_ARTIFACTS[0], target)
    subprocess.run(
        [
            beside_python("dbt"),
            "build",
            "--target-path",
            str(target),
            # As the Dagster assets build (orchestration/dbt.py BUILD).
            "--exclude-resource-type",
            "unit_test",
            # The chain's day, time zone and currency, as every Dagster dbt step passes them.
            *chain_vars(settings),
            "--quiet",
            "--log-path",
            str(trial / "dbt_logs"),
        ],
        cwd=settings.dbt_project_dir,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        check=True,
    )
    built = time.perf_counter()
    activate_and_serve(settings, target / "manifest.json")
    return {
        "dlt landing + gate": landed - started,
        "dbt build": built - landed,
        "audiences + serving copy": time.perf_counter() - built,
    }


def activate_and_serve(settings: Settings, manifest: Path) -> None:
    """What the graph's last assets do (orchestration/activation.py, orchestration/serving.py)."""
    config = load_config()
    with warehouse.connect(settings) as conn:
        for audience in config.audiences.values():
            checked(config, conn, audience.name)
            store_audience(conn, audience, datetime.now(UTC).replace(tzinfo=None))
            for channel in audience.channels:
                client = None
                if channel == "meta" and audience.meta_custom_audience_id:
                    client = MetaCustomAudiences.from_config()
                export_channel(conn, settings, config, audience, channel, client)
    relations = mart_relations(manifest)
    publish(settings.warehouse_path, serving_path(settings.warehouse_path), relations, "direct")


def row_counts(settings: Settings) -> dict[str, int]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        names = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where ({COUNTED_SCHEMAS}) and not table_schema like '%\\_staging' escape '\\' "
            "order by 1"
        ).fetchall()
        return {
            name: connection.execute(f"select count(*) from {name}").fetchone()[0]
            for (name,) in names
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=2, help="Trials of each way.")
    parser.add_argument("--steps", action="store_true", help="Print each Dagster step's seconds.")
    args = parser.parse_args()
    # The lake on the warehouse file, as `make run` has it; the filesystem lake is another bench.
    os.environ.pop("REGULARS_DESTINATION", None)
    os.environ.pop("SOURCES__ORDERING__CREDENTIALS", None)

    with tempfile.TemporaryDirectory(prefix="bench_dagster_") as scratch_name:
        scratch = Path(scratch_name)
        world = scratch / "world"
        print(f"Building a world of {args.customers:,} guests x {args.days} days ...", flush=True)
        build_world(
            WorldConfig(
                seed=args.seed,
                customers=args.customers,
                days=args.days,
                acquisition_days=args.days,
                start_date=date(2025, 1, 1),
            ),
            world,
        )
        ways: dict[str, Callable[[Settings, Path], dict[str, float]]] = {
            "direct": directly,
            "dagster": partial(through_dagster, show_steps=args.steps),
        }
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        parts: dict[str, dict[str, list[float]]] = {name: {} for name in ways}
        counts: dict[str, dict[str, int]] = {}
        trial = scratch / "trial"
        with demo_apis(trial_settings(world, scratch / "warmup")):
            # Importing the code location builds its definitions once (its module-level `defs`),
            # and dbt parses with the trials' profile: done here, so that no trial pays for them.
            import orchestration.materialize  # noqa: F401

            settings = trial_settings(world, trial)
            prepare(dbt_project(settings), settings)
            # The gate registers each suite in GX once per process (suite_runner): here, so
            # that the first trial, whichever way, does not pay for both.
            for source in configured_sources(settings):
                for suite in suites_for(source.name).values():
                    runner_for(suite, settings.data_docs_dir)

            for repeat in range(args.repeats):
                order = ["direct", "dagster"] if repeat % 2 == 0 else ["dagster", "direct"]
                for name in order:
                    settings = trial_settings(world, trial)
                    print(f"\n=== trial {repeat + 1}: {name} ===", flush=True)
                    started = time.perf_counter()
                    for part, value in ways[name](settings, trial).items():
                        parts[name].setdefault(part, []).append(value)
                    seconds[name].append(time.perf_counter() - started)
                    print(f"=== {name}: {seconds[name][-1]:.1f} s ===", flush=True)
                    trial_counts = row_counts(settings)
                    if counts.setdefault(name, trial_counts) != trial_counts:
                        raise SystemExit(f"Two {name} trials left different row counts.")

    print(f"\nDagster overhead on {args.customers:,} guests x {args.days} days")
    for name in ways:
        runs = "  ".join(f"{value:6.1f}" for value in seconds[name])
        print(f"  {name:<8} mean {statistics.mean(seconds[name]):6.1f} s   trials: {runs}")
        for part, values in parts[name].items():
            print(f"      {part:<38} mean {statistics.mean(values):6.1f} s")
    ratio = statistics.mean(seconds["dagster"]) / statistics.mean(seconds["direct"])
    added = statistics.mean(seconds["dagster"]) - statistics.mean(seconds["direct"])
    print(f"  ratio dagster / direct  {ratio:.2f}  ({added:+.1f} s per full materialisation)")
    relations = len(counts["direct"])
    if counts["direct"] == counts["dagster"]:
        print(f"  both ways left the same row counts in {relations} lake and mart tables")
    else:
        differing = sorted(
            name
            for name in counts["direct"].keys() | counts["dagster"].keys()
            if counts["direct"].get(name) != counts["dagster"].get(name)
        )
        raise SystemExit(f"The two ways did different work: row counts differ in {differing}")


if __name__ == "__main__":
    main()
