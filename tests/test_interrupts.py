"""Ctrl-C stops a run, even when a library caught it first.

Dagster raises its interruption where the main thread is when the signal comes. Inside a DuckDB
query, DuckDB turns it into `RuntimeError: Query interrupted`, and dlt wraps that again: Dagster
then saw a step that failed, and ran the other steps to the end. The landing, gate and serving
steps raise the interruption behind such an error as itself (ingestion.failures), and
`regulars materialize` says the run was interrupted.
"""

from __future__ import annotations

import os
import signal
import threading
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.failures import interruption, interruptions_stop
from orchestration.materialize import Materialization

# Long enough that the signal, sent a moment after it starts, finds it running; bounded, so a
# query that was not interrupted ends and the test fails instead of hanging.
LONG_QUERY = "select count(*) from range(3000000000) where range % 7 = 3"


def interrupted_query() -> None:
    """A DuckDB query this process interrupts itself, as a person's Ctrl-C would."""
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    with duckdb.connect() as connection:
        connection.execute(LONG_QUERY).fetchall()


def run_until_interrupted(stop_on_interruption: bool) -> dg.ExecuteInProcessResult:
    ran_after: list[str] = []

    @dg.asset
    def landing() -> None:
        if stop_on_interruption:
            with interruptions_stop():
                interrupted_query()
        else:
            interrupted_query()

    @dg.asset
    def other_source() -> None:
        ran_after.append("other_source")

    result = dg.materialize([landing, other_source], raise_on_error=False)
    result.ran_after = ran_after  # type: ignore[attr-defined]
    return result


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's own SIGINT handler, whatever the test runner's worker set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interruption_inside_duckdb_is_found_behind_the_errors_that_wrap_it():
    with pytest.raises(RuntimeError) as caught:
        interrupted_query()
    assert "interrupted" in str(caught.value).lower()
    assert isinstance(interruption(caught.value), KeyboardInterrupt)
    # dlt's wrapper keeps the step's error in `exception`, not as a cause.
    pipeline = SimpleNamespace(pipeline_name="events_landing", has_pending_data=True)
    wrapped = PipelineStepFailed(pipeline, "extract", "1", caught.value)
    assert isinstance(interruption(wrapped), KeyboardInterrupt)
    assert interruption(RuntimeError("disk full")) is None


def test_ctrl_c_during_a_step_stops_the_run_and_says_so():
    """Without `interruptions_stop` the wrapped interruption fails its step and the run goes on
    to the next one; with it, the run stops there, and the run's result names the step."""
    went_on = run_until_interrupted(stop_on_interruption=False)
    assert not went_on.success
    assert went_on.ran_after == ["other_source"]

    stopped = run_until_interrupted(stop_on_interruption=True)
    assert not stopped.success
    assert stopped.ran_after == []
    assert Materialization(stopped, {}).interrupted_steps == ["landing"]


def test_a_step_that_fails_is_not_read_as_interrupted():
    @dg.asset
    def landing() -> None:
        with interruptions_stop(), duckdb.connect() as connection:
            connection.execute("select * from a_table_that_is_not_there")

    failed = dg.materialize([landing], raise_on_error=False)
    assert not failed.success
    assert Materialization(failed, {}).interrupted_steps == []
    assert Materialization(failed, {}).failed_steps == ["landing"]
