"""dbt on Spark builds every mart DuckDB builds, with the same figures, over one Parquet lake.

Opt-in for now (REGULARS_TEST_SPARK=1): the Spark build alone takes minutes on two cores, and
needs the `spark` extra and Java 17 (`make java`). The Python models (lifetime value, clusters,
experiment readouts) run on Spark in dbt's own session (regulars/spark_python_models.py).
"""

import os
import time

import pytest

from tests.engines import (
    LTV_RELATIVE,
    build_lake_world,
    compare,
    dbt_build,
    project_marts,
    spark_unavailable,
)

UNAVAILABLE = (
    "set REGULARS_TEST_SPARK=1 to build the marts on Spark"
    if os.environ.get("REGULARS_TEST_SPARK") != "1"
    else spark_unavailable()
)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))]


def test_spark_builds_the_same_marts_as_duckdb(tmp_path_factory: pytest.TempPathFactory) -> None:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("engines")
    build_lake_world(root)
    duck = dbt_build(root, "duckdb")
    spark = dbt_build(root, "spark")
    assert not duck.failures + spark.failures, "\n".join(duck.failures + spark.failures)
    comparison = compare(root, duck, spark)
    print(
        f"dbt build: {duck.seconds:.1f} s on DuckDB, {spark.seconds:.1f} s on Spark; "
        f"lifetime value parameters at most {comparison.ltv_relative:.3g} apart, relative; "
        f"{time.monotonic() - started:.1f} s in all"
    )
    assert not comparison.differences, "\n".join(comparison.differences)
    assert comparison.ltv_relative <= LTV_RELATIVE
    # Every mart, the Python models' and those built on them (kpi_scorecard, ...) included.
    assert set(comparison.marts) == project_marts(duck), sorted(
        project_marts(duck) - set(comparison.marts)
    )
