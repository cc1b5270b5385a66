"""Runs left behind by a crash: marked failed, their pool slots given back.

A process killed mid-run (SIGKILL, power loss, an OOM kill) cannot report its end: Dagster keeps
the run STARTED and the warehouse pool keeps the slot its step claimed, so the next run waits on
that slot for ever. `regulars materialize` clears such runs before starting its own. A run is
gone when it was started by `regulars materialize` (its tags say so) and the caller holds the
materialize lock, so no such command is alive; or when the process that executed its steps (the
pid of its in-process engine event) no longer exists on this machine. A live pid is trusted,
even if it might be a reused one: clearing a run that is still writing would be worse than
waiting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

# Tags `regulars materialize` puts on its runs: who started them, from which process.
COMMAND_TAG = "regulars/command"
PID_TAG = "regulars/pid"
MATERIALIZE = "materialize"

UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
FINISHED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


@dataclass(frozen=True)
class ClearedRun:
    run_id: str
    job_name: str
    pid: int | None
    started: str
    slots_freed: int
    # False for a run that had ended (terminated from the UI, say) but still held slots.
    marked_failed: bool = True

    def describe(self) -> str:
        slots = f"{self.slots_freed} pool slot{'s' if self.slots_freed != 1 else ''}"
        if not self.marked_failed:
            return f"Freed {slots} held by run {self.run_id} ({self.job_name}), which had ended."
        process = f"pid {self.pid}" if self.pid else "its process"
        return (
            f"Cleared run {self.run_id} ({self.job_name}, started {self.started}): {process} is "
            f"gone; marked failed and {slots} freed."
        )


def materialize_tags() -> dict[str, str]:
    """The tags that let a later `regulars materialize` recognise this process's runs."""
    return {COMMAND_TAG: MATERIALIZE, PID_TAG: str(os.getpid())}


def clear_crashed_runs(instance: dg.DagsterInstance, holds_lock: bool) -> list[ClearedRun]:
    """Mark failed every unfinished run whose process is gone, and free the pool slots of those
    and of any ended run that still holds some (one terminated from the UI after its process
    died).

    `holds_lock`: the caller holds the materialize lock, so every run another `regulars
    materialize` started is over, whatever its recorded state.
    """
    holding = _slot_holders(instance)
    cleared = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        started_by_materialize = run.tags.get(COMMAND_TAG) == MATERIALIZE
        pid = _recorded_pid(instance, run)
        if not (started_by_materialize and holds_lock) and (pid is None or _alive(pid)):
            continue
        instance.report_run_failed(
            run,
            message=(
                f"Its process (pid {pid or 'unknown'}) ended without reporting the run's end "
                "(killed or crashed); marked failed by `regulars materialize`."
            ),
        )
        started = record.start_time or record.create_timestamp.timestamp()
        cleared.append(
            ClearedRun(run.run_id, run.job_name, pid, _utc(started), holding.get(run.run_id, 0))
        )
    # RunsFilter takes no empty list of run ids: it would mean "any run".
    if others := sorted(holding.keys() - {run.run_id for run in cleared}):
        ended = instance.get_run_records(dg.RunsFilter(run_ids=others, statuses=FINISHED))
        for record in ended:
            run = record.dagster_run
            cleared.append(
                ClearedRun(run.run_id, run.job_name, None, "", holding[run.run_id], False)
            )
    # What Dagster's daemon does for ended runs that still hold slots, after a delay
    # (dagster._daemon.monitoring.concurrency): done now, or this run would wait on them.
    for run in cleared:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return cleared


def _recorded_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process that executed the run's steps: the tag `regulars materialize` set,
    else the pid Dagster's executor recorded in its first engine event."""
    if PID_TAG in run.tags:
        return int(run.tags[PID_TAG])
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.engine_event_data.metadata or {}
        if "pid" in metadata:
            return int(metadata["pid"].value)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _slot_holders(instance: dg.DagsterInstance) -> dict[str, int]:
    """Run id -> pool slots it holds, over every pool."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    holders: dict[str, int] = {}
    for pool in storage.get_concurrency_keys():
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            holders[slot.run_id] = holders.get(slot.run_id, 0) + 1
    return holders


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
