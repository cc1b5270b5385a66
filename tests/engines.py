"""The same dbt project built on DuckDB and on Spark over one Parquet lake, and the marts compared.

The lake comes from materialising the tiny world with REGULARS_DESTINATION=filesystem (Dagster, as
`regulars materialize` runs it); then `dbt build` of every model runs on each engine over that
lake, in this process, and every mart is compared: keys, row counts, null counts and the sum of
every numeric and boolean column to the cent. The lifetime value fits (clv_model_runs) must
agree on their parameters within LTV_RELATIVE, run by run.

The Python models (lifetime value, clusters, experiment readouts) run on Spark in dbt's own
session (regulars/spark_python_models.py, registered here before dbt starts).

Run by hand for the wall times: `python -m tests.engines [folder] [--compare-only]`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regulars.cli.demo import SIMULATED_CHAIN
from regulars.settings import Chain
from tests.conftest import TINY_WORLD, materialize, point_at

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"

# The simulated chain's vars, as every run of the demo passes them.
CHAIN_VARS = json.dumps(Chain(**SIMULATED_CHAIN).dbt_vars())

# Sums agree to the cent; doubles may differ in their last bits between engines.
CENT = 0.005
# The lifetime value fit's parameters (clv_model_runs) agree within this, relative, fit by fit,
# rather than summed to the cent: they run to 10^5 (spend_v is in money; an unreliable fit's a
# and b on the tiny world), where a cent is no tolerance an optimiser keeps.
LTV_RELATIVE = 1e-6
LTV_PARAMETERS = ("r", "alpha", "a", "b", "spend_p", "spend_q", "spend_v")
# Columns no sum is compared of: the fit's parameters (above) and its wall time, which two
# builds on one engine do not share either.
UNSUMMED = {"clv_model_runs": {*LTV_PARAMETERS, "fit_seconds"}}


def spark_unavailable() -> str | None:
    """Why dbt cannot run on Spark here, or None when it can."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark and dbt-spark are not installed: pip install -e '.[spark]'"
    java = shutil.which("java")
    if java is None:
        return "no Java: Spark 4 needs Java 17 (make java)"
    version = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    if 'version "17' not in version and 'version "21' not in version:
        return f"Spark 4 needs Java 17 or 21, found: {version.splitlines()[0]}"
    return None


def build_lake_world(root: Path) -> None:
    """The tiny world under `root`, materialised with its lake as Parquet files."""
    from simulator import WorldConfig, build_world

    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = point_at(monkeypatch, root, "filesystem")
        build_world(WorldConfig(**TINY_WORLD), settings.data_dir)
        result = materialize(settings)
        assert result.success, "materialising the tiny world on the filesystem lake failed"


def engine_env(root: Path, engine: str) -> dict[str, str]:
    """What points dbt at the world under `root` on `engine`."""
    return {
        "REGULARS_ENGINE": engine,
        "REGULARS_DESTINATION": "filesystem",
        "REGULARS_WAREHOUSE": str(root / "warehouse" / "regulars.duckdb"),
        "DESTINATION__FILESYSTEM__BUCKET_URL": str(root / "warehouse" / "lake"),
        "REGULARS_SPARK_DIR": str(root / "var" / "spark"),
    }


@dataclass(frozen=True)
class Build:
    engine: str
    seconds: float
    target: Path
    failures: list[str]


def dbt_build(root: Path, engine: str) -> Build:
    """`dbt build` of every model, on `engine`, in this process."""
    from dbt.cli.main import dbtRunner

    if engine == "spark":
        from regulars.spark_python_models import register

        register()

    target = root / f"dbt_{engine}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in engine_env(root, engine).items():
            monkeypatch.setenv(name, value)
        started = time.monotonic()
        result = dbtRunner().invoke(
            [
                "build",
                *("--vars", CHAIN_VARS),
                *("--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)),
                *("--target-path", str(target), "--log-path", str(target / "logs")),
                "--quiet",
            ]
        )
        seconds = time.monotonic() - started
    if engine == "duckdb":
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        # dbt-duckdb keeps the file open in the process; the comparison opens it again.
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()
    assert result.result is not None, f"dbt build on {engine} did not run: {result.exception}"
    failed = [r for r in result.result if getattr(r, "status", None) in ("error", "fail")]
    failures = [f"{r.node.unique_id}: {r.message}" for r in failed]
    return Build(engine=engine, seconds=seconds, target=target, failures=failures)


def project_marts(build: Build) -> set[str]:
    """Every mart of the project, built or not."""
    manifest = json.loads((build.target / "manifest.json").read_text())
    return {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }


def built_marts(build: Build) -> dict[str, list[str]]:
    """The marts a build made, each with the columns its unique tests hold unique."""
    manifest = json.loads((build.target / "manifest.json").read_text())
    results = json.loads((build.target / "run_results.json").read_text())
    built = {r["unique_id"] for r in results["results"] if r["status"] == "success"}
    marts = {
        node["unique_id"]: node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["schema"] == "marts"
        and node["unique_id"] in built
    }
    keys: dict[str, list[str]] = {name: [] for name in marts.values()}
    for node in manifest["nodes"].values():
        test = node.get("test_metadata") or {}
        attached = node.get("attached_node")
        if attached in marts and test.get("name") == "unique":
            keys[marts[attached]].append(node["column_name"])
    return keys


def read_duckdb_marts(root: Path, names) -> dict[str, pd.DataFrame]:
    import duckdb

    warehouse = engine_env(root, "duckdb")["REGULARS_WAREHOUSE"]
    with duckdb.connect(warehouse, read_only=True) as connection:
        return {name: connection.sql(f"select * from marts.{name}").df() for name in names}


def read_spark_marts(root: Path, names) -> dict[str, pd.DataFrame]:
    """From the session dbt-spark ran in, when it ran in this process, else from a session on
    the same metastore and warehouse folder (profiles.yml's spark target)."""
    from pyspark.sql import SparkSession

    spark_dir = engine_env(root, "spark")["REGULARS_SPARK_DIR"]
    spark = (
        SparkSession.builder.enableHiveSupport()
        .config("spark.sql.warehouse.dir", f"{spark_dir}/warehouse")
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={spark_dir}/metastore_db;create=true",
        )
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={spark_dir}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .getOrCreate()
    )
    # Rows, not toPandas(): pyspark 4.3 warns that it does not yet support pandas 3.
    marts = {}
    for name in names:
        table = spark.table(f"marts.{name}")
        rows = [row.asDict() for row in table.collect()]
        marts[name] = pd.DataFrame.from_records(rows, columns=table.columns)
    return marts


def _numeric(column: pd.Series) -> pd.Series | None:
    """A column's values as floats when it holds numbers or booleans, else None."""
    values = column.dropna()
    if pd.api.types.is_bool_dtype(column) or (len(values) and isinstance(values.iloc[0], bool)):
        return column.astype("float64")
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    if len(values) and isinstance(values.iloc[0], (Decimal, int, float)):
        return pd.to_numeric(column).astype("float64")
    return None


def differences(name: str, keys: list[str], duck: pd.DataFrame, spark: pd.DataFrame) -> list[str]:
    """How the same mart differs between the engines: empty when it does not."""
    found = []
    if sorted(duck.columns) != sorted(spark.columns):
        found.append(f"{name}: columns {sorted(duck.columns)} != {sorted(spark.columns)}")
        return found
    if len(duck) != len(spark):
        found.append(f"{name}: {len(duck)} rows on DuckDB, {len(spark)} on Spark")
    for key in keys:
        if set(duck[key].astype(str)) != set(spark[key].astype(str)):
            only = set(duck[key].astype(str)) ^ set(spark[key].astype(str))
            found.append(f"{name}: keys of {key} differ ({len(only)}, e.g. {sorted(only)[:3]})")
    for column in duck.columns:
        if duck[column].isna().sum() != spark[column].isna().sum():
            found.append(
                f"{name}.{column}: {duck[column].isna().sum()} nulls on DuckDB, "
                f"{spark[column].isna().sum()} on Spark"
            )
        left, right = _numeric(duck[column]), _numeric(spark[column])
        if left is None or right is None or column in UNSUMMED.get(name, ()):
            continue
        if abs(left.sum() - right.sum()) > CENT + 1e-12 * abs(left.sum()):
            found.append(f"{name}.{column}: sum {left.sum()!r} on DuckDB, {right.sum()!r} on Spark")
    return found


def fit_differences(duck: pd.DataFrame, spark: pd.DataFrame) -> tuple[float, list[str]]:
    """The largest relative difference of a lifetime value parameter between the engines' fits
    (clv_model_runs, fit by fit), and each one above LTV_RELATIVE."""
    fits = duck.merge(spark, on="model_run_id", suffixes=("_duckdb", "_spark"))
    if fits.empty:
        return float("nan"), ["clv_model_runs: no fit on both engines (model_run_id differs)"]
    largest, found = 0.0, []
    for parameter in LTV_PARAMETERS:
        left = fits[f"{parameter}_duckdb"].astype("float64")
        right = fits[f"{parameter}_spark"].astype("float64")
        # 0 / 0 (both zero) is no difference.
        relative = ((left - right).abs() / np.maximum(left.abs(), right.abs())).fillna(0.0)
        largest = max(largest, float(relative.max()))
        for run, value in zip(fits["model_run_id"], relative, strict=True):
            if value > LTV_RELATIVE:
                found.append(f"clv_model_runs.{parameter} of {run}: {value:.3g} apart, relative")
    return largest, found


@dataclass(frozen=True)
class Comparison:
    # Per mart: rows, the columns held unique, and how many numeric columns were summed.
    marts: dict[str, tuple[int, list[str], int]]
    differences: list[str]
    # The largest relative difference of a lifetime value parameter (fit_differences).
    ltv_relative: float


def compare(root: Path, duck: Build, spark: Build) -> Comparison:
    """Every mart both builds made (its rows, keys and numeric columns), and how they differ."""
    keys = built_marts(duck)
    on_spark = built_marts(spark)
    assert set(keys) == set(on_spark), f"built on one engine only: {set(keys) ^ set(on_spark)}"
    duck_marts = read_duckdb_marts(root, keys)
    spark_marts = read_spark_marts(root, keys)
    found = []
    for name, key in sorted(keys.items()):
        found += differences(name, key, duck_marts[name], spark_marts[name])
    ltv_relative = float("nan")
    if "clv_model_runs" in keys:
        ltv_relative, apart = fit_differences(
            duck_marts["clv_model_runs"], spark_marts["clv_model_runs"]
        )
        found += apart
    shapes = {
        name: (
            len(frame),
            keys[name],
            sum(_numeric(frame[column]) is not None for column in frame.columns),
        )
        for name, frame in duck_marts.items()
    }
    return Comparison(marts=shapes, differences=found, ltv_relative=ltv_relative)


def main(root: Path, build: bool = True) -> None:
    """Build (unless `build` is false: compare the last builds) and compare."""
    if not (root / "warehouse" / "lake").exists():
        started = time.monotonic()
        build_lake_world(root)
        print(f"tiny world materialised on the Parquet lake: {time.monotonic() - started:.1f} s")
    if build:
        duck = dbt_build(root, "duckdb")
        print(f"dbt build on DuckDB: {duck.seconds:.1f} s", *duck.failures, sep="\n")
        spark = dbt_build(root, "spark")
        print(f"dbt build on Spark:  {spark.seconds:.1f} s", *spark.failures, sep="\n")
    else:
        duck, spark = (Build(e, 0.0, root / f"dbt_{e}", []) for e in ("duckdb", "spark"))
    comparison = compare(root, duck, spark)
    print(f"{len(comparison.marts)} marts compared (rows, unique keys, numeric columns summed):")
    for name, (rows, keys, numeric) in sorted(comparison.marts.items()):
        print(f"  {name}: {rows} rows, keys {keys}, {numeric} numeric columns")
    print(f"lifetime value parameters: at most {comparison.ltv_relative:.3g} apart, relative")
    print("\n".join(comparison.differences) or "no differences")


if __name__ == "__main__":
    os.environ.setdefault("REGULARS_GX_DATA_DOCS", "0")
    arguments = [a for a in sys.argv[1:] if a != "--compare-only"]
    main(
        Path(arguments[0] if arguments else "var/engines").resolve(),
        build="--compare-only" not in sys.argv,
    )
