"""The same dbt project and Dagster graph on DuckDB and on Spark over one Parquet lake, and the
marts compared.

A world materialised with REGULARS_DESTINATION=filesystem has its lake as Parquet files and its
marts built by dbt on DuckDB. Dagster then materialises dbt's assets and everything downstream
of them (audiences, their exports, the serving copy) again over that same lake with
REGULARS_ENGINE=spark: dbt runs on Spark (the Python models in dbt's own session,
regulars/spark_python_models.py), and the warehouse file's marts become views over the Parquet
files Spark wrote (regulars.warehouse.expose_spark_tables). Every mart is compared: keys, row
counts, null counts and the sum of every numeric and boolean column to the cent. The lifetime
value fits (clv_model_runs) must agree on their parameters within LTV_RELATIVE, run by run.

By hand, for the wall times of both engines (the tiny world, or a bigger one):
`python -m tests.engines [folder] [--customers N --days D]`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from regulars.settings import Settings

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


# dbt's own generic tests. On Spark they are dbt-spark's SQL as dbt-core writes it, and what they
# guard in the marts, compare() checks column by column against DuckDB's marts, which passed them:
# nulls, keys, row counts. They are 437 of the project's 511 tests, and at about a second each on
# a local Spark, most of the engine test's time.
DBT_BUILT_IN_TESTS = frozenset({"not_null", "unique", "accepted_values", "relationships"})


def built_in_test_names(manifest_path: Path) -> set[str]:
    """The names of the project's tests that are dbt's own generic tests (their check names)."""
    manifest = json.loads(manifest_path.read_text())
    return {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and (node.get("test_metadata") or {}).get("name") in DBT_BUILT_IN_TESTS
    }


def materialize_after_the_lake(settings: Settings, instance, built_in_tests: bool = True):
    """dbt's assets and everything downstream of them, in one Dagster run, over the lake as it
    is (nothing lands): what changes with the engine. `built_in_tests=False` leaves dbt's own
    generic tests out (DBT_BUILT_IN_TESTS); our generic and singular tests still run."""
    import dagster as dg

    from orchestration.assembly import build_definitions
    from orchestration.dbt import dbt_project
    from orchestration.materialize import materialize_everything
    from regulars.cli.demo import demo_apis

    left_out = dg.AssetSelection.all() - dg.AssetSelection.kind("dbt").downstream()
    if not built_in_tests:
        names = built_in_test_names(dbt_project(settings).manifest_path)
        graph = build_definitions(settings).resolve_asset_graph()
        left_out = left_out | dg.AssetSelection.checks(
            *(key for key in graph.asset_check_keys if key.name in names)
        )
    with demo_apis(settings):
        return materialize_everything(settings, instance, exclude=left_out)


def read_marts(settings: Settings) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every relation of the warehouse file's `marts` schema, and whether each is a table (built
    there by dbt on DuckDB) or a view (over what Spark built)."""
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        kinds = dict(
            connection.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'marts' order by table_name"
            ).fetchall()
        )
        marts = {name: connection.sql(f'select * from marts."{name}"').df() for name in kinds}
    return marts, kinds


def mart_keys(manifest_path: Path) -> dict[str, list[str]]:
    """Every mart of the project, each with the columns its `unique` tests hold unique."""
    manifest = json.loads(manifest_path.read_text())
    marts = {
        node["unique_id"]: node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    keys: dict[str, list[str]] = {name: [] for name in marts.values()}
    for node in manifest["nodes"].values():
        test = node.get("test_metadata") or {}
        attached = node.get("attached_node")
        if attached in marts and test.get("name") == "unique":
            keys[marts[attached]].append(node["column_name"])
    return keys


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


def compare(
    keys: dict[str, list[str]],
    on_duckdb: dict[str, pd.DataFrame],
    on_spark: dict[str, pd.DataFrame],
) -> Comparison:
    """Every mart of `keys` (its rows, keys and numeric columns), and how it differs."""
    found = [f"{name}: not built on DuckDB" for name in sorted(set(keys) - set(on_duckdb))]
    found += [f"{name}: not built on Spark" for name in sorted(set(keys) - set(on_spark))]
    both = sorted(set(keys) & set(on_duckdb) & set(on_spark))
    for name in both:
        found += differences(name, keys[name], on_duckdb[name], on_spark[name])
    ltv_relative = float("nan")
    if "clv_model_runs" in both:
        ltv_relative, apart = fit_differences(
            on_duckdb["clv_model_runs"], on_spark["clv_model_runs"]
        )
        found += apart
    shapes = {
        name: (
            len(on_duckdb[name]),
            keys[name],
            sum(_numeric(on_duckdb[name][column]) is not None for column in on_duckdb[name]),
        )
        for name in both
    }
    return Comparison(marts=shapes, differences=found, ltv_relative=ltv_relative)


def main(root: Path, customers: int | None, days: int | None) -> None:
    """The world under `root` (built when missing) through dbt and everything after it, on
    DuckDB and then on Spark, each timed, and the marts compared."""
    import dagster as dg
    import pytest

    from orchestration.dbt import dbt_project, prepare
    from regulars.cli.demo import SIMULATED_CHAIN
    from regulars.settings import environment, load_settings
    from simulator import WorldConfig, build_world
    from tests.conftest import TINY_WORLD, materialize, point_at

    world = {**TINY_WORLD}
    if customers is not None:
        world.update(customers=customers, start_date=date(2025, 1, 1))
    if days is not None:
        world.update(days=days, acquisition_days=days)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("REGULARS_GX_DATA_DOCS", "0")
        settings = point_at(monkeypatch, root, "filesystem")
        with environment({"CHAIN__TIMEZONE": SIMULATED_CHAIN["timezone"]}):
            prepare(dbt_project(settings), settings)
        if not (root / "warehouse" / "lake").exists():
            started = time.monotonic()
            build_world(WorldConfig(**world), settings.data_dir)
            assert materialize(settings).success, "materialising the world failed"
            built = time.monotonic() - started
            print(f"world built and materialised (lake, dbt on DuckDB): {built:.1f} s")
        seconds = {}
        for engine in ("duckdb", "spark"):
            monkeypatch.setenv("REGULARS_ENGINE", engine)
            engine_settings = load_settings()
            started = time.monotonic()
            with dg.DagsterInstance.ephemeral() as instance:
                result = materialize_after_the_lake(engine_settings, instance)
            seconds[engine] = time.monotonic() - started
            assert result.success, f"dbt and what follows it on {engine} failed"
            print(f"dbt and everything after it on {engine}: {seconds[engine]:.1f} s")
            if engine == "duckdb":
                on_duckdb, _ = read_marts(engine_settings)
        on_spark, _ = read_marts(settings)
        comparison = compare(mart_keys(dbt_project(settings).manifest_path), on_duckdb, on_spark)
    print(f"{len(comparison.marts)} marts compared (rows, unique keys, numeric columns summed):")
    for name, (rows, keys, numeric) in sorted(comparison.marts.items()):
        print(f"  {name}: {rows} rows, keys {keys}, {numeric} numeric columns")
    print(f"lifetime value parameters: at most {comparison.ltv_relative:.3g} apart, relative")
    print("\n".join(comparison.differences) or "no differences")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", nargs="?", default="var/engines", type=Path)
    parser.add_argument("--customers", type=int, help="the tiny world's by default")
    parser.add_argument("--days", type=int, help="the tiny world's by default")
    arguments = parser.parse_args()
    os.environ.setdefault("REGULARS_GX_DATA_DOCS", "0")
    main(arguments.folder.resolve(), arguments.customers, arguments.days)
