"""A crashed run does not block the next one, and two runs never write the warehouse together.

From the cheapest up: the materialize lock, the clearing of crashed runs in a real Dagster
instance, and then real `regulars materialize` processes, one SIGKILLed while dbt builds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.events import EngineEventData
from dlt.pipeline.pipeline import Pipeline

from orchestration.pools import WAREHOUSE_POOL
from orchestration.recovery import clear_crashed_runs, materialize_tags
from regulars.runlock import LockHeld, exclusive, read_holder
from regulars.settings import Settings
from simulator import advance_world
from tests import processes

CHECKOUT = Path(__file__).resolve().parent.parent

# Holds the lock until its stdin closes; says "held" once it has it.
HOLD_LOCK = """
import sys
from pathlib import Path
from regulars.runlock import exclusive
with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def lock_holder(path: Path) -> subprocess.Popen:
    holder = processes.start(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=CHECKOUT,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_held_lock_is_refused_with_its_holder_and_a_killed_holder_frees_it(tmp_path: Path):
    path = tmp_path / "materialize.lock"
    holder = lock_holder(path)
    try:
        with pytest.raises(LockHeld) as refused, exclusive(path):
            pass
        assert refused.value.holder.pid == holder.pid
        assert f"(pid {holder.pid}, since " in str(refused.value)
        assert "regulars materialize --wait SECONDS" in str(refused.value)

        told = []
        with pytest.raises(LockHeld, match="after waiting 1s"), exclusive(path, 1, told.append):
            pass
        assert [h.pid for h in told] == [holder.pid]
    finally:
        # SIGKILL: no handler runs, the kernel alone releases the flock.
        holder.kill()
        holder.wait()
    with exclusive(path, wait_seconds=30) as mine:
        assert mine.pid == os.getpid()
        assert read_holder(path).pid == os.getpid()


def ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@dg.op(pool=WAREHOUSE_POOL)
def write_warehouse() -> None:
    pass


@dg.job
def warehouse_job() -> None:
    write_warehouse()


def started_run(instance: dg.DagsterInstance, tags: dict[str, str], engine_pid: int | None):
    """A run as a killed process leaves it: STARTED, holding the warehouse pool's slot."""
    run = instance.create_run_for_job(warehouse_job, status=dg.DagsterRunStatus.STARTED, tags=tags)
    if engine_pid is not None:
        instance.report_engine_event(
            f"Executing steps in process (pid: {engine_pid})",
            run,
            EngineEventData.in_process(engine_pid),
        )
    claim = instance.event_log_storage.claim_concurrency_slot(
        WAREHOUSE_POOL, run.run_id, "write_warehouse"
    )
    assert claim.is_claimed
    return run


def holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    return {slot.run_id for slot in info.claimed_slots}


def test_runs_whose_process_is_gone_are_failed_and_free_their_pool_slots():
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 8)
        # By an earlier `regulars materialize`: the caller holds the lock, so it is over even
        # though its pid (this process's, standing in for a reused one) is alive.
        by_materialize = started_run(instance, materialize_tags(), None)
        # By any other process (the UI's run worker) that is gone, and one still running.
        gone_pid = ended_pid()
        gone = started_run(instance, {}, gone_pid)
        alive = started_run(instance, {}, os.getpid())
        # Unknown process: no pid recorded, nothing to tell it is gone.
        unknown = started_run(instance, {}, None)
        # Terminated from the UI once its process was gone: ended, its slot still taken.
        terminated = started_run(instance, {}, None)
        instance.report_run_canceled(terminated)

        cleared = {c.run_id: c for c in clear_crashed_runs(instance, holds_lock=True)}

        assert cleared.keys() == {by_materialize.run_id, gone.run_id, terminated.run_id}
        assert all(c.slots_freed == 1 for c in cleared.values())
        assert (
            cleared[gone.run_id]
            .describe()
            .endswith(f"pid {gone_pid} is gone; marked failed and 1 pool slot freed.")
        )
        assert cleared[terminated.run_id].describe() == (
            f"Freed 1 pool slot held by run {terminated.run_id} (warehouse_job), which had ended."
        )
        status = {
            run.run_id: instance.get_run_by_id(run.run_id).status
            for run in (by_materialize, gone, alive, unknown)
        }
        assert status == {
            by_materialize.run_id: dg.DagsterRunStatus.FAILURE,
            gone.run_id: dg.DagsterRunStatus.FAILURE,
            alive.run_id: dg.DagsterRunStatus.STARTED,
            unknown.run_id: dg.DagsterRunStatus.STARTED,
        }
        assert holders(instance) == {alive.run_id, unknown.run_id}

        # Without the lock a materialize run with a live pid may be running: left alone.
        again = started_run(instance, materialize_tags(), None)
        assert clear_crashed_runs(instance, holds_lock=False) == []
        assert instance.get_run_by_id(again.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_lone_crashed_run_is_cleared():
    """The usual case after a crash: the only run holding a slot is the crashed one."""
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        crashed = started_run(instance, materialize_tags(), None)
        cleared = clear_crashed_runs(instance, holds_lock=True)
        assert [(c.run_id, c.slots_freed) for c in cleared] == [(crashed.run_id, 1)]
        assert not holders(instance)


def children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is `pid` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
        if int(parent.split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {seconds:.0f}s")


def regulars(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "regulars.cli", *arguments]


@pytest.mark.e2e
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_run_killed_while_dbt_builds_leaves_nothing_running_and_nothing_blocked(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch, fresh_dbt_manifest
):
    from tests.test_source_matrix import keep_only

    # Order history alone: the shortest world whose run still reaches a dbt build.
    keep_only(tiny_world.data_dir, {"order_history"}, monkeypatch)
    lock = tiny_world.state_dir / "materialize.lock"
    first = processes.start(
        regulars("materialize"),
        cwd=CHECKOUT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: read_holder(lock).pid == first.pid, 120, "lock taken by the first run")
        second = subprocess.run(
            regulars("materialize"), cwd=CHECKOUT, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"Another `regulars materialize` is running (pid {first.pid}, since" in (
            second.stderr
        )

        def dbt_build() -> int | None:
            return next((pid for pid, cmd in children(first.pid).items() if " build " in cmd), None)

        dbt = wait_for(dbt_build, 600, "dbt build started by the first run")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        wait_for(lambda: not running(dbt), 10, f"end of dbt (pid {dbt}) after its parent died")
    finally:
        processes.stop(first, signal.SIGKILL)

    # A run that waited on the crashed run's slot would never end: the timeout fails the test.
    third = subprocess.run(
        regulars("materialize"), cwd=CHECKOUT, capture_output=True, text=True, timeout=900
    )
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert f"): pid {first.pid} is gone; marked failed and 1 pool slot freed." in third.stdout
    assert "Materialized every asset" in third.stdout
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        crashed = [r for r in runs if r.tags.get("regulars/pid") == str(first.pid)]
        assert [r.status for r in crashed] == [dg.DagsterRunStatus.FAILURE]
        assert not holders(instance)


class Crash(BaseException):
    """Stands for the SIGKILL: raised where the process would have died."""


@pytest.mark.parametrize("crashed", ["landing", "lake"])
def test_ingest_after_a_crash_reports_what_the_pending_load_brought(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch, crashed: str
):
    """A crash between dlt's normalize and load leaves a package; the next ingest loads it,
    says what it held, and goes on to the new data and the gate."""
    from typer.testing import CliRunner

    from regulars.cli import app

    def calls(dataset: str) -> int:
        with duckdb.connect(str(tiny_world.warehouse_path), read_only=True) as warehouse:
            return warehouse.execute(f"select count(*) from {dataset}.api_calls").fetchone()[0]

    ingest = ["ingest", "telemetry"]
    assert CliRunner().invoke(app, ingest, catch_exceptions=False).exit_code == 0
    before = calls("landing_telemetry")
    advance_world(tiny_world.data_dir, days=1)

    load = Pipeline.load

    def dies_before_loading(pipeline: Pipeline, *args, **kwargs):
        if pipeline.pipeline_name == f"telemetry_{crashed}":
            raise Crash
        return load(pipeline, *args, **kwargs)

    with monkeypatch.context() as crashing:
        crashing.setattr(Pipeline, "load", dies_before_loading)
        with pytest.raises(Crash):
            CliRunner().invoke(app, ingest, catch_exceptions=False)

    result = CliRunner().invoke(app, ingest, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    new = calls("landing_telemetry") - before
    assert new > 0
    assert calls("raw_telemetry") == before + new, "every call promoted, once"
    dataset = f"{'raw' if crashed == 'lake' else 'landing'}_telemetry"
    assert "load an interrupted run left (" in result.output
    assert f"): {dataset}.api_calls {new} rows" in result.output
    # The gate then reports what it promotes now: nothing when the lake load was the one left,
    # the new batch when the landing load was.
    promoted_now = 0 if crashed == "lake" else new
    assert f"api_calls: {promoted_now} landed, {promoted_now} promoted" in result.output
