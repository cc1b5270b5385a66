"""The ordering suites on batches read from a simulated ordering DB, then broken on purpose."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from expectations.factory import ROW_NUMBER, SuiteRunner
from expectations.gate import suite_expectations
from expectations.suites.ordering import table_suites
from regulars.settings import Settings


def validate(table_name: str, frame: pd.DataFrame):
    suite = table_suites()[table_name]
    frame = suite.derive(frame.copy())
    frame[ROW_NUMBER] = np.arange(len(frame))
    return SuiteRunner(suite.suite_name, suite_expectations(suite)).validate(frame)


def read_table(settings: Settings, table_name: str) -> pd.DataFrame:
    with sqlite3.connect(settings.ordering_db_path) as connection:
        frame = pd.read_sql(f"select * from {table_name}", connection)
    for column in frame.columns:
        if column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@pytest.mark.parametrize("table_name", list(table_suites()))
def test_a_clean_simulated_table_passes_whole(tiny_world: Settings, table_name: str):
    verdict = validate(table_name, read_table(tiny_world, table_name))
    assert verdict.batch_passed, verdict.batch_failures
    assert verdict.row_failures == {}


def test_each_kind_of_bad_order_is_caught_on_its_own_row(tiny_world: Settings):
    orders = read_table(tiny_world, "orders").head(8).reset_index(drop=True)
    orders.loc[0, "order_id"] = None
    orders.loc[1, "order_id"] = orders.loc[2, "order_id"]  # duplicate key: both rows held
    orders.loc[3, "status"] = "teleported"
    orders.loc[4, "currency"] = "USD"
    orders.loc[5, "total_idr"] = orders.loc[5, "total_idr"] + 1  # items no longer add up
    orders.loc[6, "placed_at"] = pd.Timestamp("2099-01-01", tz="UTC")

    verdict = validate("orders", orders)

    assert verdict.batch_passed
    reasons = {row: " ".join(found) for row, found in verdict.row_failures.items()}
    assert set(reasons) == {0, 1, 2, 3, 4, 5, 6}
    assert "not_be_null(column=order_id)" in reasons[0]
    assert "be_unique(column=order_id)" in reasons[1] and "be_unique" in reasons[2]
    assert "column=status" in reasons[3]
    assert "column=currency" in reasons[4]
    assert "column=_total_mismatch_idr" in reasons[5]
    assert "column=placed_at" in reasons[6]


def test_a_batch_missing_a_required_column_is_rejected_whole(tiny_world: Settings):
    orders = read_table(tiny_world, "orders").drop(columns=["status"])
    verdict = validate("orders", orders)
    assert not verdict.batch_passed
    assert any("expect_column_to_exist(column=status)" in f for f in verdict.batch_failures)
