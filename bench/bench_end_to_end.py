"""Where a run's time and memory go: each step of a full materialisation, then of a day's advance.

    .venv/bin/python bench/bench_end_to_end.py --customers 2000 --days 180

Builds a simulated world in a temporary folder (`regulars simulate build`, in its own process as
in `make run`), materialises everything through Dagster as `regulars materialize` does (a
persistent instance, the demo's API fakes), advances the world one day (`regulars simulate
advance`) and materialises again. For each step it prints its seconds in the full run and in the
increment, the increment as a share of the full run (the baseline of this session), the rows the
step's materialisations report and their rate, and the peak resident memory of this process and
its children together while the step ran (sampled from /proc every 0.2 s: dbt runs as a child);
then each run's overall peak, and the simulator's time for the build and the advance. A full run
that fails stops the bench there, naming the steps that failed.

The figures are this machine's, now: read the ratios, not the seconds, across machines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from orchestration.progress import reported_rows
from regulars.cli.demo import demo_apis
from regulars.settings import Settings, export_environment, load_settings

PAGE = 4096


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command may hold spaces and parentheses: the ppid follows the last ')'.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class PeakMemory:
    """The largest resident memory this process and its descendants held at once, overall and
    within any span of time (a step's)."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak = every, 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = sum(_rss_bytes(pid) for pid in {me, *_descendants(me)})
            self.peak = max(self.peak, total)
            self.samples.append((time.time(), total))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        return max((total for at, total in self.samples if start <= at <= end), default=0)


@dataclass
class Step:
    seconds: float = 0.0
    rows: int = 0
    failed: bool = False
    peak_bytes: int = 0


@dataclass
class RunProfile:
    wall: float
    peak_bytes: int
    success: bool
    steps: dict[str, Step] = field(default_factory=dict)


def profile_run(
    instance: dg.DagsterInstance, run_id: str, memory: PeakMemory | None = None
) -> dict[str, Step]:
    """Each step's seconds (start to end, from the event log), the rows it reported and, with
    `memory`, the peak of the process tree while it ran (steps run one at a time, in process)."""
    started: dict[str, float] = {}
    steps: dict[str, Step] = defaultdict(Step)
    # A day-partitioned asset reports its whole table once per day: counted once.
    rows: dict[str, dict[dg.AssetKey, int]] = defaultdict(dict)
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            start = started.pop(event.step_key)
            steps[event.step_key].seconds += entry.timestamp - start
            if memory is not None:
                peak = memory.peak_between(start, entry.timestamp)
                steps[event.step_key].peak_bytes = max(steps[event.step_key].peak_bytes, peak)
            steps[event.step_key].failed |= event.event_type == dg.DagsterEventType.STEP_FAILURE
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            value = reported_rows(event.step_materialization_data.materialization)
            if value is not None:
                rows[event.step_key][event.asset_key] = value
    for step_key, per_asset in rows.items():
        steps[step_key].rows = sum(per_asset.values())
    return dict(steps)


def materialise(settings: Settings, instance: dg.DagsterInstance) -> RunProfile:
    from orchestration import dbt
    from orchestration.materialize import materialize_everything

    started = time.perf_counter()
    # As `regulars materialize` does: dbt's graph is the SQL as it is now, parsed with the run's
    # vars (a manifest left by another checkout or chain names tests this run does not have).
    dbt.prepare(dbt.dbt_project(settings), settings)
    with PeakMemory() as memory:
        result = materialize_everything(settings, instance, raise_on_error=False)
    wall = time.perf_counter() - started
    steps = profile_run(instance, result.run_id, memory)
    return RunProfile(wall, memory.peak, result.success, steps)


def print_profiles(full: RunProfile, increment: RunProfile) -> None:
    print(
        f"\n{'step':<44} {'full s':>8} {'+1 day s':>9} {'share':>6} {'rows':>10} {'rows/s':>9}"
        f" {'peak GiB':>9}"
    )
    names = sorted(
        set(full.steps) | set(increment.steps), key=lambda n: -full.steps.get(n, Step()).seconds
    )
    for name in names:
        one, more = full.steps.get(name, Step()), increment.steps.get(name, Step())
        share = f"{more.seconds / one.seconds:6.0%}" if one.seconds else "     -"
        rate = f"{one.rows / one.seconds:9,.0f}" if one.rows and one.seconds else "        -"
        print(
            f"{name[:44]:<44} {one.seconds:8.1f} {more.seconds:9.1f} {share} {one.rows:10,} {rate}"
            f" {one.peak_bytes / 2**30:9.2f}"
        )
    print(
        f"\n{'whole run':<44} {full.wall:8.1f} {increment.wall:9.1f} "
        f"{increment.wall / full.wall:6.0%}   (the increment as a share of the full run)"
    )
    print(
        f"peak resident memory, this process and its children: full {full.peak_bytes / 2**30:.2f} "
        f"GiB, increment {increment.peak_bytes / 2**30:.2f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_e2e_"))
    try:
        run_bench(args, root)
    finally:
        if args.keep is None:
            # A year of a 200,000-guest chain leaves about 20 GB here.
            shutil.rmtree(root, ignore_errors=True)


def simulate(*arguments: str) -> None:
    """`regulars simulate ...` in its own process, as `make run` runs it. Built in the bench's
    process, a 100,000-guest year peaked at 2.71 GiB there and left 1.15 GiB resident, which
    every step's peak then counted as the run's."""
    subprocess.run([sys.executable, "-m", "regulars.cli", "simulate", *arguments], check=True)


def run_bench(args: argparse.Namespace, root: Path) -> None:
    os.environ["REGULARS_DATA_DIR"] = str(root / "data")
    os.environ["REGULARS_WAREHOUSE"] = str(root / "warehouse" / "regulars.duckdb")
    os.environ["REGULARS_STATE_DIR"] = str(root / "var")
    os.environ["DAGSTER_HOME"] = str(root / "var" / "dagster_home")
    settings = load_settings()
    export_environment(settings)

    started = time.perf_counter()
    simulate(
        "build",
        *("--customers", str(args.customers), "--days", str(args.days)),
        *("--acquisition-days", str(args.days), "--seed", str(args.seed)),
        *("--out", str(settings.data_dir)),
    )
    built = time.perf_counter() - started
    print(f"world: {args.customers:,} guests x {args.days} days in {root}; simulator {built:.1f} s")

    with demo_apis(settings), dg.DagsterInstance.get() as instance:
        full = materialise(settings, instance)
        if not full.success:
            # An increment over a failed build measures nothing: say where and stop.
            failed = ", ".join(name for name, step in full.steps.items() if step.failed)
            raise SystemExit(
                f"The full run failed at {failed or 'its start'} after {full.wall:.0f} s: "
                "Dagster's STEP_FAILURE lines above say why."
            )
        started = time.perf_counter()
        simulate("advance", "--days", "1", "--out", str(settings.data_dir))
        advanced = time.perf_counter() - started
        print(f"simulator: advanced one day in {advanced:.1f} s")
    # The fakes serve the world as of its new day: started again for the increment.
    with demo_apis(settings), dg.DagsterInstance.get() as instance:
        increment = materialise(settings, instance)
    print_profiles(full, increment)
    if not (full.success and increment.success):
        print("A run failed: its steps' figures stop where it failed (make ui shows why).")


if __name__ == "__main__":
    main()
