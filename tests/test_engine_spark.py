"""dbt on Spark builds the marts DuckDB builds, with the same figures, over one Parquet lake.

Opt-in for now (REGULARS_TEST_SPARK=1): the Spark build alone takes minutes on two cores, and
needs the `spark` extra and Java 17 (`make java`). The Python models and their descendants are
left out on Spark (tests/engines.py, SPARK_EXCLUDED).
"""

import os

import pytest

from tests.engines import build_lake_world, compare, dbt_build, spark_unavailable

UNAVAILABLE = (
    "set REGULARS_TEST_SPARK=1 to build the marts on Spark"
    if os.environ.get("REGULARS_TEST_SPARK") != "1"
    else spark_unavailable()
)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))]


def test_spark_builds_the_same_marts_as_duckdb(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("engines")
    build_lake_world(root)
    duck = dbt_build(root, "duckdb")
    spark = dbt_build(root, "spark")
    assert not duck.failures + spark.failures, "\n".join(duck.failures + spark.failures)
    marts, found = compare(root, duck, spark)
    print(f"dbt build: {duck.seconds:.1f} s on DuckDB, {spark.seconds:.1f} s on Spark")
    assert not found, "\n".join(found)
    # Every SQL mart but those built on the Python models (kpi_scorecard, customer_rfm, ...).
    assert len(marts) >= 13, f"too few marts compared: {sorted(marts)}"
