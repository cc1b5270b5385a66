"""The source ymls describe the lake as it is: every declared column, with its type.

A channel a chain does not have is read as an empty table built from these declarations
(macros/lake_source.sql), so a yml that drifts from what dlt and the gate write would make the
marts of a chain without that channel differ in type, or fail, while every test of a chain with
it passes. Checked on both lake destinations.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from regulars.settings import Settings
from tests.conftest import DESTINATIONS

STAGING = Path(__file__).resolve().parent.parent / "dbt_project" / "models" / "staging"


def declared_columns() -> dict[tuple[str, str], dict[str, str]]:
    """(lake schema, table) -> {column: data_type} from every _<source>__sources.yml."""
    declared = {}
    for path in sorted(STAGING.glob("*/_*__sources.yml")):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                declared[(source["schema"], table["name"])] = {
                    column["name"]: column.get("data_type") for column in table["columns"]
                }
    return declared


def test_every_source_column_declares_its_type() -> None:
    untyped = [
        f"{schema}.{table}.{column}"
        for (schema, table), columns in declared_columns().items()
        for column, data_type in columns.items()
        if not data_type
    ]
    assert declared_columns(), "no source yml found"
    assert not untyped, f"columns without data_type: {untyped}"


@pytest.mark.parametrize("materialized_world", DESTINATIONS, indirect=True)
def test_the_lake_has_every_declared_column_with_its_type(materialized_world: Settings) -> None:
    with duckdb.connect(str(materialized_world.warehouse_path), read_only=True) as connection:
        actual: dict[tuple[str, str], dict[str, str]] = {}
        for schema, table, column, data_type in connection.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns where table_schema like 'raw_%'"
        ).fetchall():
            actual.setdefault((schema, table), {})[column] = data_type.lower()

    # Parquet has no JSON type: the filesystem lake's JSON columns read as text, which DuckDB's
    # JSON functions in staging take as well.
    same = {"json": {"json", "varchar"}} if materialized_world.destination == "filesystem" else {}
    drift = []
    for key, columns in declared_columns().items():
        if key not in actual:
            drift.append(f"{'.'.join(key)}: not in the lake")
            continue
        for column, data_type in columns.items():
            found = actual[key].get(column)
            if found not in same.get(data_type.lower(), {data_type.lower()}):
                drift.append(f"{'.'.join(key)}.{column}: yml says {data_type}, lake has {found}")
    assert not drift, "\n".join(drift)
