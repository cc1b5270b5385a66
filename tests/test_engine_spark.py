"""dbt on Spark builds every mart DuckDB builds, with the same figures, over one Parquet lake, and
Dagster runs the same graph on it, reading what Spark built (tests/engines.py says how). The run
on Spark leaves dbt's own generic tests out (tests.engines.DBT_BUILT_IN_TESTS): the marts'
comparison covers what they check, and our own tests, generic and singular, run on Spark.

Needs the `spark` extra and Java 17, which `make test` installs (`make spark`); without them it
skips and says what to install.
"""

from __future__ import annotations

import time

import dagster as dg
import duckdb
import pytest

from orchestration.dbt import dbt_project
from regulars.activation.selection import AUDIENCE_MEMBERS
from regulars.serving import serving_path
from regulars.settings import Settings, load_settings, spark_missing
from tests.engines import (
    LTV_RELATIVE,
    built_in_test_names,
    compare,
    mart_keys,
    materialize_after_the_lake,
    read_marts,
)

MISSING = spark_missing()

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]


def _audiences(settings: Settings) -> dict[str, list[int]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        rows = connection.execute(
            f"select audience, list(customer_id order by customer_id) from {AUDIENCE_MEMBERS} "
            "group by audience"
        ).fetchall()
    return dict(rows)


def _checks(instance: dg.DagsterInstance, run_id: str) -> set[tuple[str, str, bool]]:
    """Each asset check a run evaluated on dbt's assets and after: asset, check, passed."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000
    ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return {
        (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.passed)
        for evaluation in evaluations
    }


@pytest.mark.parametrize("materialized_world", ["filesystem"], indirect=True)
def test_dagster_on_spark_builds_the_same_marts_as_on_duckdb(
    materialized_world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_duckdb, kinds = read_marts(materialized_world)
    assert set(kinds.values()) == {"BASE TABLE"}, "the world's marts were not built on DuckDB"
    audiences_on_duckdb = _audiences(materialized_world)
    with dg.DagsterInstance.get() as world_instance:
        (duckdb_run,) = world_instance.get_runs(limit=1)
        checks_on_duckdb = _checks(world_instance, duckdb_run.run_id)

    monkeypatch.setenv("REGULARS_ENGINE", "spark")
    settings = load_settings()
    started = time.monotonic()
    # An instance of its own: every day of the partitioned facts is built again, on Spark.
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_after_the_lake(settings, instance, built_in_tests=False)
        assert result.success, result.failure_descriptions
        checks_on_spark = _checks(instance, result.run_id)
        materialized = {
            event.asset_key.to_user_string(): event.materialization.metadata
            for event in result.result.get_asset_materialization_events()
        }
    seconds = time.monotonic() - started

    on_spark, kinds = read_marts(settings)
    # Every mart in the warehouse file now reads Spark's files: none is left from DuckDB.
    assert set(kinds.values()) == {"VIEW"}, kinds
    # So does the staging table activation reads guests' contacts from: a view on DuckDB, a
    # table on Spark, exposed because the Spark invocation built it whatever Dagster loaded.
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as warehouse:
        (contacts_view,) = warehouse.execute(
            "select sql from duckdb_views() where schema_name = 'staging' "
            "and view_name = 'stg_ordering__customers'"
        ).fetchone()
    assert settings.spark_warehouse in contacts_view, contacts_view
    keys = mart_keys(dbt_project(settings).manifest_path)
    comparison = compare(keys, on_duckdb, on_spark)
    print(
        f"dbt and everything after it through Dagster on Spark: {seconds:.1f} s; "
        f"{len(comparison.marts)} marts compared; lifetime value parameters at most "
        f"{comparison.ltv_relative:.3g} apart, relative"
    )
    assert not comparison.differences, "\n".join(comparison.differences)
    assert comparison.ltv_relative <= LTV_RELATIVE
    # Every mart, the Python models' and those built on them (kpi_scorecard, ...) included.
    assert set(comparison.marts) == set(keys)

    # The same graph: every check the DuckDB run evaluated on these assets, with its verdict,
    # but dbt's own generic tests, left out of this run.
    built_in = built_in_test_names(dbt_project(settings).manifest_path)
    assert len(built_in) > 400
    assert checks_on_spark == {
        check for check in checks_on_duckdb if check[0] in materialized and check[1] not in built_in
    }
    assert len(checks_on_spark) > 60
    # What Dagster recorded is Spark's: each mart's row count, ...
    row_counts = {
        name.removeprefix("marts/"): metadata["dagster/row_count"].value
        for name, metadata in materialized.items()
        if name.startswith("marts/") and "dagster/row_count" in metadata
    }
    assert row_counts == {name: len(frame) for name, frame in on_spark.items()}
    # ... the audiences, selected from Spark's marts, ...
    assert _audiences(settings) == audiences_on_duckdb
    # ... and the serving copy, published from them: tables of the same rows.
    with duckdb.connect(str(serving_path(settings.warehouse_path)), read_only=True) as serving:
        for name, frame in on_spark.items():
            (rows,) = serving.execute(f'select count(*) from marts."{name}"').fetchone()
            assert rows == len(frame), name
