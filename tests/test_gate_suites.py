"""The ordering suites on batches read from a simulated ordering DB, then broken on purpose."""

from __future__ import annotations

import gc
import json
import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from expectations.bounds import SCHEMA_DRIFT_MIN_ROWS
from expectations.gate import HeldRows, suite_expectations
from expectations.suite_runner import (
    ROW_NUMBER,
    SuiteRunner,
    deferred_data_docs,
    describe,
    docs_index,
    rule_of,
    suite_runner,
)
from expectations.suites import TableSuite, VolumeRule
from expectations.suites.common import between, in_set
from expectations.suites.ordering import table_suites
from regulars.settings import Settings


class SqliteLanded:
    """The ordering DB standing in for its landing dataset (one version per row, load "1")."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def read(self, table_name: str, columns: Sequence[str], column: str, values: Sequence):
        frame = read_table(self.settings, table_name)[list(columns)]
        return frame[frame[column].isin(values)].assign(_dlt_load_id="1")


@pytest.fixture(autouse=True)
def simulated_currency(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated chain trades in rupiah: the gate holds money in any other currency."""
    monkeypatch.setenv("CHAIN__CURRENCY", "IDR")


def validate(table_name: str, frame: pd.DataFrame, settings: Settings | None = None, **options):
    suite = table_suites()[table_name]
    frame = suite.derive(frame.copy())
    if suite.derive_across is not None:
        frame = suite.derive_across(frame, SqliteLanded(settings))
    frame[ROW_NUMBER] = np.arange(len(frame))
    runner = SuiteRunner(suite.suite_name, suite_expectations(suite), **options)
    return runner.validate(frame)


def read_table(settings: Settings, table_name: str) -> pd.DataFrame:
    with sqlite3.connect(settings.ordering_db_path) as connection:
        frame = pd.read_sql(f"select * from {table_name}", connection)
    for column in frame.columns:
        if column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@pytest.mark.parametrize("table_name", list(table_suites()))
def test_a_clean_simulated_table_passes_whole(tiny_world: Settings, table_name: str):
    verdict = validate(table_name, read_table(tiny_world, table_name), tiny_world)
    assert verdict.batch_passed, verdict.batch_failures
    assert verdict.row_failures == {}


def test_each_kind_of_bad_order_is_caught_on_its_own_row(tiny_world: Settings):
    orders = read_table(tiny_world, "orders").head(10).reset_index(drop=True)
    orders.loc[0, "order_id"] = None
    orders.loc[1, "order_id"] = orders.loc[2, "order_id"]  # duplicate key: both rows held
    orders.loc[3, "status"] = "teleported"
    orders.loc[4, "currency"] = "USD"
    orders.loc[5, "total_idr"] = orders.loc[5, "total_idr"] + 1  # the total no longer adds up
    orders.loc[6, "placed_at"] = pd.Timestamp("2099-01-01", tz="UTC")
    # Subtotal and total moved together: only the items (another table) say it is wrong.
    orders.loc[7, ["subtotal_idr", "total_idr"]] += 1_000
    orders.loc[8, "placed_at"] = pd.Timestamp("1970-01-01", tz="UTC")  # an epoch, not an order

    verdict = validate("orders", orders, tiny_world)

    assert verdict.batch_passed
    reasons = {row: " ".join(found) for row, found in verdict.row_failures.items()}
    assert set(reasons) == {0, 1, 2, 3, 4, 5, 6, 7, 8}
    assert "not_be_null(column=order_id)" in reasons[0]
    assert "be_unique(column=order_id)" in reasons[1] and "be_unique" in reasons[2]
    assert "column=status" in reasons[3]
    assert "column=currency" in reasons[4]
    assert "column=_total_mismatch" in reasons[5]
    assert "column=placed_at" in reasons[6]
    assert reasons[7] == (
        "expect_column_values_to_be_in_set(column=_items_minus_subtotal, value_set=[0])"
    )
    assert "column=placed_at" in reasons[8]


@pytest.mark.parametrize(
    ("chain_currency", "held"), [("USD", {0, 1, 2, 3, 5, 6, 7, 8, 9}), (None, set())]
)
def test_the_currency_a_chain_holds_is_any_but_its_own(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch, chain_currency, held
):
    """A dollar chain holds the rupiah orders; a chain that names no currency holds none."""
    orders = read_table(tiny_world, "orders").head(10).reset_index(drop=True)
    orders.loc[4, "currency"] = "USD"
    if chain_currency:
        monkeypatch.setenv("CHAIN__CURRENCY", chain_currency)
    else:
        monkeypatch.delenv("CHAIN__CURRENCY")

    verdict = validate("orders", orders, tiny_world)

    assert {
        row for row, found in verdict.row_failures.items() if "column=currency" in " ".join(found)
    } == held


def test_a_batch_missing_a_required_column_is_rejected_whole(tiny_world: Settings):
    orders = read_table(tiny_world, "orders").drop(columns=["status"])
    verdict = validate("orders", orders, tiny_world)
    assert not verdict.batch_passed
    assert any("expect_column_to_exist(column=status)" in f for f in verdict.batch_failures)


def test_a_column_emptied_upstream_holds_a_big_batch_and_quarantines_a_small_one(
    tiny_world: Settings,
):
    # dlt keeps a dropped or renamed source column, filled with nulls from then on.
    orders = read_table(tiny_world, "orders").assign(status=None)
    assert len(orders) >= SCHEMA_DRIFT_MIN_ROWS
    big = validate("orders", orders, tiny_world)
    assert not big.batch_passed
    assert any("non_null_values" in f and "column=status" in f for f in big.batch_failures)

    small = validate("orders", orders.head(SCHEMA_DRIFT_MIN_ROWS - 1), tiny_world)
    assert small.batch_passed
    assert len(small.row_failures) == SCHEMA_DRIFT_MIN_ROWS - 1
    assert all("not_be_null(column=status)" in " ".join(r) for r in small.row_failures.values())


def load_id(day: int, hour: int) -> str:
    """A dlt load id (the load's Unix time): `day` days after 10 January 2025, at `hour` UTC."""
    landed = datetime(2025, 1, 10, hour, 7, tzinfo=UTC) + timedelta(days=day)
    return str(landed.timestamp())


def test_the_volume_rule_compares_with_the_median_of_the_same_hour():
    rule = VolumeRule(min_share=0.1, history=5, min_history=3)
    nights = [(load_id(day, 3), rows) for day, rows in enumerate([50, 60, 40, 50, 70])]
    days = [(load_id(day, 12), 5_000) for day in range(5)]
    tonight = load_id(6, 3)
    assert rule.min_rows([], tonight) == 0
    assert rule.min_rows(nights[:2] + days, tonight) == 0  # too little history at that hour
    # 03:00 is compared with earlier 03:00s, not with the busy middle of the day.
    assert rule.min_rows(nights + days, tonight) == 5
    assert rule.min_rows(nights + days, load_id(6, 12)) == 500
    # A median: one odd batch does not move it; only the last `history` batches count.
    backfill = [(load_id(-1, 3), 1_000_000)]
    assert rule.min_rows(backfill + nights, tonight) == 5


def test_every_validation_renders_into_data_docs(tiny_world: Settings):
    orders = read_table(tiny_world, "orders").head(20).reset_index(drop=True)
    orders.loc[0, "status"] = "teleported"
    validate("orders", orders, tiny_world, docs_dir=tiny_world.gx_docs_dir)
    validate("customers", read_table(tiny_world, "customers"), docs_dir=tiny_world.gx_docs_dir)

    index = docs_index(tiny_world.gx_docs_dir)
    pages = list((tiny_world.gx_docs_dir / "site" / "validations").rglob("*.html"))
    assert index.exists() and len(pages) == 2
    html = index.read_text()
    assert "lake_orders" in html and "lake_customers" in html
    # The pages say what failed and how often, never the values: a quarantined value may be a
    # guest's contact, and a static page is out of `regulars forget`'s reach.
    files = [path for path in tiny_world.gx_docs_dir.rglob("*") if path.is_file()]
    assert len(files) >= 5
    assert [path.name for path in files if b"teleported" in path.read_bytes()] == []
    (page,) = [path for path in pages if "lake_orders" in str(path)]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text()))
    assert "1 unexpected values found. 5% of 20 total rows." in text


def test_a_gate_run_builds_its_data_docs_once_at_the_end(
    tiny_world: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """Each Data Docs build rebuilds the index from the stored results: a gate run stores each
    table's result as it validates and builds the pages of all of them once, on leaving."""
    docs_dir = tmp_path / "gx_data_docs"
    builds = []
    build = gx.data_context.AbstractDataContext.build_data_docs

    def counted(context, *args, **kwargs):
        builds.append(kwargs.get("resource_identifiers"))
        return build(context, *args, **kwargs)

    monkeypatch.setattr(gx.data_context.AbstractDataContext, "build_data_docs", counted)
    with deferred_data_docs():
        orders = read_table(tiny_world, "orders").head(20)
        validate("orders", orders, tiny_world, docs_dir=docs_dir)
        validate("customers", read_table(tiny_world, "customers"), docs_dir=docs_dir)
        assert len(list((docs_dir / "validation_results").rglob("*.json"))) == 2
        assert builds == [] and not docs_index(docs_dir).exists()

    assert [len(keys) for keys in builds] == [2]
    pages = list((docs_dir / "site" / "validations").rglob("*.html"))
    assert len(pages) == 2
    html = docs_index(docs_dir).read_text()
    assert "lake_orders" in html and "lake_customers" in html

    validate("stores", read_table(tiny_world, "stores"), docs_dir=docs_dir)
    assert [len(keys) for keys in builds] == [2, 1]  # outside a gate run: built at once


def test_a_chain_that_says_when_it_opened_holds_older_rows(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch
):
    orders = read_table(tiny_world, "orders").head(3).reset_index(drop=True)
    orders.loc[1, "placed_at"] = pd.Timestamp("2024-12-31 16:59", tz="UTC")  # 23:59 in Jakarta
    orders.loc[2, "placed_at"] = pd.Timestamp("2024-12-31 17:00", tz="UTC")  # its first minute
    assert not validate("orders", orders, tiny_world).row_failures  # unset: 1990 is the floor

    monkeypatch.setenv("CHAIN__OPENED_ON", "2025-01-01")
    monkeypatch.setenv("CHAIN__TIMEZONE", "Asia/Jakarta")
    failures = validate("orders", orders, tiny_world).row_failures
    assert set(failures) == {1} and "column=placed_at" in " ".join(failures[1])


def test_a_reason_whose_bound_moves_with_the_clock_names_the_same_rule():
    opened = pd.Timestamp("2015-01-01", tz="UTC")
    today, tomorrow = (pd.Timestamp(day, tz="UTC") for day in ("2025-03-10", "2025-03-11"))
    yesterdays, todays = (
        describe(between("placed_at", opened, end).configuration) for end in (today, tomorrow)
    )
    assert yesterdays != todays
    assert (
        rule_of(yesterdays)
        == rule_of(todays)
        == ("expect_column_values_to_be_between(column=placed_at)")
    )
    # A value set with commas in it does not blur which column failed.
    assert rule_of(describe(in_set("status", ["a", "b"]).configuration)) != rule_of(
        describe(in_set("platform", ["a", "b"]).configuration)
    )


def held_row(key: str | None, value: int, now: str = "2025-03-10") -> dict:
    """A quarantine row of a batch, as `quarantine_rows` builds it (the parts that are compared)."""
    return {
        "primary_key_value": key,
        "record": f'{{"id": {json_key(key)}, "value": {value}}}',
        "failed_expectations": (
            f'["expect_column_values_to_be_between(column=value, max_value={now}, min_value=0)"]'
        ),
    }


def json_key(key: str | None) -> str:
    return "null" if key is None else f'"{key}"'


def test_a_held_row_is_not_held_again_until_a_newer_version_of_its_key_reaches_the_lake():
    held = HeldRows(None, TableSuite("t", "id", ["id"], []))

    def split(load_id: str, rows: list[dict]) -> tuple[list, int]:
        new, already = held.split(rows, [row["primary_key_value"] for row in rows], load_id)
        return [
            (row["primary_key_value"], json.loads(row["record"])["value"]) for row in new
        ], already

    # Both copies of a duplicated row, and both null-key rows, are held the first time.
    first = [held_row("a", -1), held_row("b", -1), held_row("b", -1), held_row(None, -1)]
    assert split("1", first) == ([("a", -1), ("b", -1), ("b", -1), (None, -1)], 0)
    # Re-pulled a day later: the same rows, the clock-bound of the reason moved on.
    again = [
        held_row(*row, now="2025-03-11") for row in [("a", -1), ("b", -1), ("b", -1), (None, -1)]
    ]
    assert split("2", again) == ([], 4)
    # A changed row is a newer version; the old one stays held, the new one is held too.
    assert split("3", [held_row("a", -2), held_row(None, -3)]) == ([("a", -2), (None, -3)], 0)
    assert split("4", [held_row("a", -1)]) == ([("a", -1)], 0)  # not the newest held version
    # b's good version reached the lake: its old bad version is stale, the same bad row is new.
    held.promote("5", pa.chunked_array([["b", "c"]]))
    assert split("6", [held_row("b", -1), held_row("a", -1)]) == ([("b", -1)], 1)


def test_a_validated_batch_is_not_kept_once_its_verdict_is_back():
    # GX's context outlives the step (one per process): a batch it kept would stay resident
    # in Dagster's process through every later step of the run.
    rows = 300_000
    runner = SuiteRunner(
        "lake_kept_batch_probe",
        [gx.expectations.ExpectColumnValuesToNotBeNull(column="order_id")],
    )
    frame = pd.DataFrame({"order_id": np.arange(rows), ROW_NUMBER: np.arange(rows)})
    frame.loc[7, "order_id"] = None
    verdict = runner.validate(frame)
    assert verdict.row_failures == {7: [verdict.row_failures[7][0]]}
    assert "order_id" in verdict.row_failures[7][0]

    del frame
    gc.collect()
    # By type, not isinstance: a dead weakref.proxy among the objects (another test's, in the same
    # worker) raises ReferenceError when isinstance asks it for its class.
    alive = [o for o in gc.get_objects() if issubclass(type(o), pd.DataFrame) and len(o) == rows]
    assert alive == []


def test_a_suite_is_registered_once_per_process_and_each_runner_validates_its_own_rules():
    def not_null(*columns: str) -> list:
        return [gx.expectations.ExpectColumnValuesToNotBeNull(column=c) for c in columns]

    name = "lake_runner_registry_probe"
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [1, None, 3], ROW_NUMBER: [0, 1, 2]})
    first = suite_runner(name, not_null("a"))
    # The next run's suites are new objects with the same rules: the same runner, not registered
    # again in GX's process-lived context.
    assert suite_runner(name, not_null("a")) is first
    # Another suite under the same name (a fixed rule, a test's own) registers in between; each
    # runner still validates with its own rules, not the other's, and GX finds each fresh.
    other = SuiteRunner(name, not_null("a", "b"))
    assert other.validate(frame).row_failures.keys() == {1}
    assert first.validate(frame).row_failures == {}
    assert other.validate(frame).row_failures.keys() == {1}
    assert suite_runner(name, not_null("a", "b")) is not other  # constructed apart: its own


@pytest.mark.parametrize("key_kind", [int, str])
@pytest.mark.parametrize("destination", ["duckdb", "filesystem"])
def test_a_cross_table_lookup_finds_the_same_rows_by_name_and_by_range(
    tmp_path, destination: str, key_kind: type, monkeypatch: pytest.MonkeyPatch
):
    # Past LOOKUP_BY_RANGE_FROM numeric keys the landing is read over the keys' range and filtered
    # in memory; text keys are named. Either way the rows must be those an `in` list names,
    # however the keys are spread.
    import dlt

    from expectations import gate

    items = [
        {
            "order_item_id": item,
            "order_id": None if item % 97 == 0 else key_kind(item // 3),
            "total": item,
        }
        for item in range(3_000)
    ]
    target = (
        dlt.destinations.duckdb(str(tmp_path / "landing.duckdb"))
        if destination == "duckdb"
        else dlt.destinations.filesystem(str(tmp_path / "lake"))
    )
    pipeline = dlt.pipeline(
        pipeline_name="lookup", destination=target, pipelines_dir=str(tmp_path / "pipelines")
    )
    pipeline.run(items, table_name="order_items", dataset_name="landing_ordering")
    landed = gate.LandingTables(pipeline.dataset())
    # Recent orders, a few old ones far below them, and orders with no items.
    wanted = [key_kind(order) for order in [*range(900, 1_000), 3, 40, 41, 5_000, 6_000]]
    columns = ["order_item_id", "order_id", "total"]

    def lookup(range_from: int) -> pd.DataFrame:
        monkeypatch.setattr(gate, "LOOKUP_BY_RANGE_FROM", range_from)
        rows = landed.read("order_items", columns, "order_id", wanted)
        return rows.sort_values("order_item_id").reset_index(drop=True)

    by_name, by_range = lookup(len(wanted) + 1), lookup(len(wanted))
    expected = [item for item in range(3_000) if item % 97 and key_kind(item // 3) in set(wanted)]
    assert by_range["order_item_id"].tolist() == expected
    pd.testing.assert_frame_equal(by_range, by_name)
    assert set(by_range.columns) == {*columns, "_dlt_load_id"}
