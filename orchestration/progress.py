"""A run's progress as a person reads it: one line per step, with its rows, its seconds, the
run's elapsed time and, when an earlier run of the same job is on record, the time left.

It is a Dagster logger (`progress_logger`), so it sees the run's own events as they happen, in
the process that runs them; `regulars materialize` turns it on instead of Dagster's console
logger, whose every event (and dbt's every node) is a line. The UI's runs are unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import TextIO

import dagster as dg
from dagster._core.execution.api import create_execution_plan

# What a step's materialisations say they wrote: dlt's rows loaded (landing), the table's rows
# (lake, dbt), the audience's members (exports).
ROW_KEYS = ("rows_loaded", "dagster/row_count")
# How Dagster's warning about a step whose upstream failed or did not run begins.
NOT_RUN = "Dependencies for step"


def reported_rows(materialization: dg.AssetMaterialization) -> int | None:
    """The rows a materialisation says it wrote, if it says."""
    metadata = materialization.metadata
    value = next((metadata[key].value for key in ROW_KEYS if key in metadata), None)
    return value if isinstance(value, int) else None


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


class StepProgress(logging.Handler):
    """Writes a line to `stream` as each step ends; warnings and errors as they come.

    `expected` holds each step's seconds in the last successful run of the job: the time left is
    what the steps not yet finished took then.
    """

    def __init__(
        self,
        stream: TextIO,
        total_steps: int,
        expected: Mapping[str, float],
        still_running_every: float = 60.0,
    ):
        super().__init__(level=logging.DEBUG)
        self.stream, self.total_steps, self.expected = stream, total_steps, dict(expected)
        self.started = time.monotonic()
        self.step_started: dict[str, float] = {}
        self.finished: set[str] = set()
        self.rows: dict[str, dict[str, int]] = defaultdict(dict)
        # A step that runs for minutes (dbt on a large world) says so, once a minute.
        self._run_over = threading.Event()
        self._ticker = threading.Thread(
            target=self._say_what_still_runs, args=(still_running_every,), daemon=True
        )

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", {})
        event: dg.DagsterEvent | None = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:
            said = meta.get("orig_message", record.getMessage())
            # Every step after a failed one says it did not run: a line each buried the failure
            # itself (25 of them when a source's landing failed), which the command prints last.
            if record.levelno >= logging.WARNING and not said.startswith(NOT_RUN):
                self._write(f"  {step}: {said}")
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self.step_started[step] = time.monotonic()
            if not self._ticker.is_alive() and not self._run_over.is_set():
                self._ticker.start()
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            self._run_over.set()
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            value = reported_rows(event.step_materialization_data.materialization)
            if value is not None:
                # A day-partitioned asset reports its whole table once per day: counted once.
                self.rows[step][event.asset_key.to_user_string()] = value
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            self.finished.add(step)
            self._write(self._step_line(step, failed=kind == dg.DagsterEventType.STEP_FAILURE))
        elif kind == dg.DagsterEventType.STEP_SKIPPED:
            self.finished.add(step)
            self._write(f"{self._prefix()}{step:<40} skipped")

    def finish(self) -> None:
        """The run is over: stop saying what still runs. Not `close()`, which logging calls on
        every handler of the process whenever anything calls `logging.config.dictConfig`, as
        Dagster does for each run on an instance with a dagster.yaml, before the run starts."""
        self._run_over.set()
        self.close()

    def _say_what_still_runs(self, every: float) -> None:
        while not self._run_over.wait(every):
            now = time.monotonic()
            for step, since in list(self.step_started.items()):
                if now - since >= every:
                    self._write(
                        f"{self._prefix()}{step:<40} running for {_clock(now - since)}"
                        f"   elapsed {_clock(now - self.started)}"
                    )

    def _prefix(self) -> str:
        width = len(str(self.total_steps))
        return f"[{len(self.finished):>{width}}/{self.total_steps}] "

    def _step_line(self, step: str, failed: bool) -> str:
        now = time.monotonic()
        seconds = now - self.step_started.pop(step, now)
        rows = sum(self.rows.pop(step, {}).values())
        figures = "  ".join(f for f in (f"{rows:,} rows" if rows else "", f"{seconds:.1f} s") if f)
        line = f"{self._prefix()}{step:<40} {figures:>22}   elapsed {_clock(now - self.started)}"
        if failed:
            return line + "   FAILED"
        left = sum(s for step, s in self.expected.items() if step not in self.finished)
        return line + (f", about {_clock(left)} left" if self.expected and left >= 1 else "")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def step_count(job: dg.JobDefinition, selection: list[dg.AssetKey] | None, tags: Mapping) -> int:
    """How many steps the run will execute (each multi-asset, check or export is one)."""
    subset = job.get_subset(asset_selection=set(selection)) if selection is not None else job
    return len(create_execution_plan(subset, tags=tags).step_keys_to_execute)


def last_step_seconds(instance: dg.DagsterInstance, job_name: str) -> dict[str, float]:
    """Each step's seconds in the latest successful run of `job_name`, empty when none."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not runs:
        return {}
    return {
        stats.step_key: stats.end_time - stats.start_time
        for stats in instance.get_run_step_stats(runs[0].run_id)
        if stats.start_time and stats.end_time
    }


def with_progress(job: dg.JobDefinition, handler: StepProgress) -> dg.JobDefinition:
    """`job` whose only logger is `handler`: turn it on with PROGRESS_RUN_CONFIG."""

    @dg.logger(description="One line per step: rows, seconds, elapsed, time left.")
    def progress(_init_context) -> logging.Logger:
        logger = logging.Logger("regulars.progress", level=logging.DEBUG)
        logger.addHandler(handler)
        return logger

    return job.with_logger_defs({"progress": progress})


PROGRESS_RUN_CONFIG = {"loggers": {"progress": {}}}
