"""The two edges of a dbt Python model, the same on DuckDB and on Spark: what `dbt.ref` gives (a
DuckDB relation or a Spark DataFrame) as pandas, and the pandas a model computes as what the
engine writes.

Spark's rows cross both edges through DuckDB's own pandas conversion, the one a DuckDB build
uses: the analytics code sees the dtypes it is written and tested against (a decimal as float64,
a date as datetime64, an integer column with a null as Int64), and Spark's tables get the column
types DuckDB's get (a date stays a date, an all-null text column stays text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd


def to_pandas(
    relation: Any, *, where: str | None = None, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """`relation` as pandas: the rows `where` (a SQL condition) holds, `columns` (SQL
    expressions, `x as y` included) of them, both computed by the engine."""
    if not _on_spark(relation):
        if where is not None:
            relation = relation.filter(where)
        if columns is not None:
            relation = relation.project(", ".join(columns))
        return relation.df()
    if where is not None:
        relation = relation.filter(where)
    if columns is not None:
        relation = relation.selectExpr(*columns)
    arrow = relation.toArrow()
    with duckdb.connect() as connection:
        return connection.from_arrow(arrow).df()


def from_pandas(frame: pd.DataFrame, session: Any) -> Any:
    """What a Python model returns for `frame`: the frame itself on DuckDB (dbt-duckdb writes
    it), a Spark DataFrame with the column types DuckDB would give it on Spark."""
    if not _on_spark(session):
        return frame
    with duckdb.connect() as connection:
        arrow = connection.from_df(frame).to_arrow_table()
    # pyspark's warning about pandas 3 here is silenced in regulars/__init__.py.
    return session.createDataFrame(arrow)


def previous_rows(this: Any, session: Any, limit: int | None = None) -> pd.DataFrame | None:
    """The model's own table as the previous build left it (`dbt.this`, which a table model
    replaces only once its code has returned), at most `limit` rows; None before the first
    build."""
    if _on_spark(session):
        if not session.catalog.tableExists(f"{this.schema}.{this.identifier}"):
            return None
        table = session.table(f"{this.schema}.{this.identifier}")
        return to_pandas(table if limit is None else table.limit(limit))
    exists = session.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = ? and table_schema = ? and table_name = ?",
        [this.database, this.schema, this.identifier],
    ).fetchone()[0]
    if not exists:
        return None
    return session.sql(
        f"select * from {this!r}" + ("" if limit is None else f" limit {limit}")
    ).df()


def first_row(this: Any, session: Any) -> dict[str, Any] | None:
    """A row of the model's own table as the previous build left it, None before the first build
    or when it was empty."""
    rows = previous_rows(this, session, limit=1)
    if rows is None or rows.empty:
        return None
    return {name: (None if pd.isna(value) else value) for name, value in rows.iloc[0].items()}


def _on_spark(engine_object: Any) -> bool:
    """Whether a model's relation or session is Spark's. By module, not isinstance: pyspark is an
    optional extra, and dbt-duckdb hands models a wrapper of its connection, not the connection."""
    return type(engine_object).__module__.startswith("pyspark.")
