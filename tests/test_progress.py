"""What `regulars materialize` prints while it runs, and where the rest of the output goes."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition.

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from orchestration.materialize import Materialization, innermost_line
from orchestration.progress import (
    PROGRESS_RUN_CONFIG,
    StepProgress,
    last_step_seconds,
    step_count,
    with_progress,
)
from regulars.cli.output import everything_else_to


@dg.asset
def landed() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows_loaded": 1234})


@dg.asset(deps=[landed])
def built(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.warning("the warehouse is busy; trying again in 1 s")
    time.sleep(1.2)
    return dg.MaterializeResult(metadata={"dagster/row_count": 56})


@dg.asset(deps=[built])
def published() -> None:
    pass


JOB = dg.Definitions(
    assets=[landed, built, published], jobs=[dg.define_asset_job("everything")]
).resolve_job_def("everything")


def run_with_progress(instance: dg.DagsterInstance, **options) -> list[str]:
    stream = io.StringIO()
    handler = StepProgress(
        stream, step_count(JOB, None, {}), last_step_seconds(instance, JOB.name), **options
    )
    try:
        result = with_progress(JOB, handler).execute_in_process(
            instance=instance, run_config=PROGRESS_RUN_CONFIG
        )
    finally:
        handler.finish()
    assert result.success
    return stream.getvalue().splitlines()


def test_each_step_is_a_line_with_its_rows_and_the_second_run_says_what_is_left():
    with dg.DagsterInstance.ephemeral() as instance:
        first = run_with_progress(instance, still_running_every=0.25)
        second = run_with_progress(instance)

    steps = [line for line in first if line.startswith("[") and "running for" not in line]
    assert [re.match(r"\[(\d)/3\] (\w+)", line).groups() for line in steps] == [
        ("1", "landed"),
        ("2", "built"),
        ("3", "published"),
    ]
    assert "1,234 rows" in steps[0] and "56 rows" in next(s for s in steps if "] built " in s)
    # The warning reaches the person, under its step's name.
    assert "  built: the warehouse is busy; trying again in 1 s" in first
    # The step that ran longer than the interval said it was still running.
    assert any(re.match(r"\[1/3\] built +running for 0:0\d +elapsed", line) for line in first)
    # Nothing on record the first time, so no time left; the second run has the first's.
    assert not any("left" in line for line in first)
    built_line = next(line for line in second if "] landed " in line)
    assert re.search(r"about 0:0[12] left$", built_line), built_line
    assert second[-1].startswith("[3/3] published") and "left" not in second[-1]


@dg.asset(name="landed")
def landing_that_fails() -> None:
    try:
        raise KeyError("'Total' is not a column of kasse.csv")
    except KeyError as error:
        # As dlt wraps what a source raised: the outer error says only where it happened.
        raise RuntimeError("Pipeline execution failed at `step=extract`") from error


def test_a_failed_step_is_one_line_and_its_innermost_error_is_what_the_command_prints():
    job = dg.Definitions(
        assets=[landing_that_fails, built, published], jobs=[dg.define_asset_job("everything")]
    ).resolve_job_def("everything")
    stream = io.StringIO()
    with dg.DagsterInstance.ephemeral() as instance:
        handler = StepProgress(stream, step_count(job, None, {}), {})
        try:
            result = with_progress(job, handler).execute_in_process(
                instance=instance, run_config=PROGRESS_RUN_CONFIG, raise_on_error=False
            )
        finally:
            handler.finish()

    # The steps after it said, a line each, that they did not run: nothing of that is printed.
    (line,) = stream.getvalue().splitlines()
    assert re.match(r"\[1/3\] landed +\d+\.\d s +elapsed 0:0\d +FAILED$", line), line
    errors = Materialization(result, {}).step_errors
    assert list(errors) == ["landed"]
    assert innermost_line(errors["landed"]) == "KeyError: \"'Total' is not a column of kasse.csv\""
    assert "Pipeline execution failed at `step=extract`" in errors["landed"].to_string()


def test_a_long_step_is_reported_on_an_instance_with_a_dagster_yaml():
    # Dagster reads the instance's python_logs settings with logging.config.dictConfig at the
    # start of each run, which closes every logging handler of the process, this one included:
    # `regulars materialize` printed no "running for" line, on any instance but an ephemeral one.
    with dg.instance_for_test(overrides={"telemetry": {"enabled": False}}) as instance:
        lines = run_with_progress(instance, still_running_every=0.25)

    assert any(re.match(r"\[1/3\] built +running for 0:0\d +elapsed", line) for line in lines)


def test_everything_else_goes_to_the_log_and_the_person_reads_the_progress(tmp_path: Path, capfd):
    log = tmp_path / "materialize.log"
    with everything_else_to(log) as console:
        print("dbt: 1 of 522 START test not_null_fct_orders_order_id")
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; print('a child'); print('its error', file=sys.stderr)",
            ],
            check=True,
        )
        console.write("[1/3] landed\n")
    print("after")

    printed = capfd.readouterr()
    assert "[1/3] landed" in printed.out and "after" in printed.out
    assert "START test" not in printed.out + printed.err and "a child" not in printed.out
    kept = log.read_text()
    for line in ("dbt: 1 of 522 START test", "a child", "its error"):
        assert line in kept
    assert "[1/3] landed" not in kept
