"""Day partitions of the incremental event facts: a one-day run rewrites that day and no other."""

from __future__ import annotations

import dagster as dg
import duckdb

from regulars.settings import Settings

TAMPERED = -1  # a value no real session has, to see which days a run rewrote


def sessions_by_day(settings: Settings) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return dict(
            connection.execute(
                "select session_date, min(events) from marts.fct_sessions group by 1"
            ).fetchall()
        )


def test_a_one_day_partition_run_touches_only_that_day(materialized_world: Settings):
    from orchestration.assembly import EVENT_DAYS_JOB, build_definitions
    from regulars.cli.demo import demo_apis

    settings = materialized_world
    with demo_apis(settings), dg.DagsterInstance.ephemeral() as instance:
        before = sessions_by_day(settings)
        days = sorted(before)[5:7]
        assert len(days) == 2 and all(before[day] > 0 for day in days)
        rebuilt, untouched = days

        with duckdb.connect(str(settings.warehouse_path)) as connection:
            connection.execute(
                f"update marts.fct_sessions set events = {TAMPERED} where session_date in (?, ?)",
                [rebuilt, untouched],
            )

        job = build_definitions(settings).resolve_job_def(EVENT_DAYS_JOB)
        assert job.execute_in_process(instance=instance, partition_key=str(rebuilt)).success

    after = sessions_by_day(settings)
    assert after[rebuilt] == before[rebuilt]  # recomputed from the lake
    assert after[untouched] == TAMPERED  # outside the window: not rewritten
    assert {day: n for day, n in after.items() if day not in days} == {
        day: n for day, n in before.items() if day not in days
    }


DAYS = ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05"]


def test_a_run_rebuilds_from_the_last_day_built_or_the_first_day_missing():
    from orchestration.materialize import days_to_build

    # Nothing built yet (a first run, or a new partitioned asset): every day.
    assert days_to_build(DAYS, [set(), set()]) == DAYS
    # Built up to the 3rd: the 3rd again (it may have been built while it filled) and the rest.
    assert days_to_build(DAYS, [set(DAYS[:3]), set(DAYS[:3])]) == DAYS[2:]
    # Everything built (a re-run with nothing new): today's partition only.
    assert days_to_build(DAYS, [set(DAYS), set(DAYS)]) == DAYS[-1:]
    # One asset behind the other, or a day missing in the middle: from the earliest gap.
    assert days_to_build(DAYS, [set(DAYS), set(DAYS[:2])]) == DAYS[1:]
    assert days_to_build(DAYS, [set(DAYS) - {DAYS[1]}, set(DAYS)]) == DAYS[1:]
    # No partitioned asset in the run: the range is every day, as before.
    assert days_to_build(DAYS, []) == DAYS


def test_a_run_of_every_day_builds_every_dbt_model_in_one_dbt_step(regulars_env: Settings):
    """The day-partitioned facts share the dbt asset of the rest: a run over every day starts dbt
    once (a second invocation for them was 4-5 s of dbt's start and artifacts, at any size)."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from orchestration.assembly import ALL_DAYS_JOB, EVENT_DAYS_JOB, build_definitions
    from orchestration.dbt import daily_partitions

    definitions = build_definitions(regulars_env)
    graph = definitions.resolve_asset_graph()
    by_day = {
        key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).partitions_def
    }
    assert by_day == {"marts/fct_sessions", "marts/service_levels"}

    days = daily_partitions(regulars_env.chain).get_partition_keys()
    every_day = {ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1]}
    for job_name in (ALL_DAYS_JOB, EVENT_DAYS_JOB):
        plan = create_execution_plan(definitions.resolve_job_def(job_name), tags=every_day)
        assert [step for step in plan.step_keys_to_execute if "dbt" in step] == ["regulars_dbt"]
