"""Replay: held rows move into the lake once the suite accepts them, and only once.

The chain starts using an order status the suite does not know; the gate holds those orders.
Once the suite learns the status, `regulars replay` moves them into the lake; running it again
moves nothing. An order that is still wrong in another way stays held with its reasons updated,
and an order whose newer version already reached the lake (fixed upstream) is not moved over it:
its held copy is marked superseded, kept with its reasons, and no longer counted held.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from typer.testing import CliRunner

from expectations.suites import ordering
from regulars.cli import app
from regulars.settings import Settings

runner = CliRunner()
NEW_STATUS = "on_hold"


@pytest.fixture(params=["duckdb", "filesystem"])
def lake_world(request: pytest.FixtureRequest, tiny_world: Settings, monkeypatch) -> Settings:
    """The tiny world, its lake on the warehouse file or on Parquet files: same replay expected."""
    monkeypatch.setenv("REGULARS_DESTINATION", request.param)
    return tiny_world


def query(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def ingest(settings: Settings) -> None:
    result = runner.invoke(app, ["ingest", "ordering"])
    assert result.exit_code == 0, result.output


def replay(*arguments: str) -> str:
    result = runner.invoke(app, ["replay", "ordering", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def audit_sums(settings: Settings) -> tuple[int, int, int, int]:
    ((landed, promoted, held, superseded),) = query(
        settings,
        "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows), "
        "coalesce(sum(superseded_rows), 0) "
        "from raw_ordering.gate_audit where table_name = 'orders'",
    )
    return landed, promoted, held, superseded


def test_replay_after_the_suite_is_fixed_moves_the_rows_once(
    lake_world: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = lake_world
    with sqlite3.connect(settings.ordering_db_path) as connection:
        (order_ids,) = zip(
            *connection.execute("select order_id from orders order by order_id limit 5"),
            strict=True,
        )
        moved, still_wrong, superseded = order_ids[:3], order_ids[3], order_ids[4]
        connection.execute(
            f"update orders set status = '{NEW_STATUS}' where order_id in {order_ids}"
        )
        connection.execute("update orders set currency = 'USD' where order_id = ?", (still_wrong,))
        (source_orders,) = connection.execute("select count(*) from orders").fetchone()
    ingest(settings)
    held = {
        key
        for (key,) in query(
            settings, "select primary_key_value from raw_ordering.quarantine_orders"
        )
    }
    assert held == {str(order_id) for order_id in order_ids}

    # The source moves one held order on: its newer version passes and reaches the lake.
    with sqlite3.connect(settings.ordering_db_path) as connection:
        connection.execute(
            "update orders set status = 'completed', "
            "updated_at = (select datetime(max(updated_at), '+1 hour') from orders) "
            "where order_id = ?",
            (superseded,),
        )
    ingest(settings)

    # The fix: the chain's new status is a real one.
    monkeypatch.setattr(ordering, "ORDER_STATUSES", [*ordering.ORDER_STATUSES, NEW_STATUS])
    output = replay("--table", "orders")
    assert "5 held -> 3 moved into the lake, 1 still failing, 1 superseded" in output
    assert "column=currency" in output

    lake = dict(query(settings, "select order_id, status from raw_ordering.orders"))
    assert len(lake) == source_orders - 1  # all but the one still wrong
    assert all(lake[order_id] == NEW_STATUS for order_id in moved)
    assert still_wrong not in lake
    assert lake[superseded] == "completed"  # the held older version did not overwrite it
    ((stored,),) = query(
        settings, "select count(*) - count(distinct order_id) from raw_ordering.orders"
    )
    assert stored == 0

    rows = {
        key: (replayed_at, json.loads(failed), superseded_at)
        for key, replayed_at, failed, superseded_at in query(
            settings,
            "select primary_key_value, replayed_at, failed_expectations, superseded_at "
            "from raw_ordering.quarantine_orders "
            "qualify row_number() over (partition by quarantine_id order by _dlt_load_id desc) = 1",
        )
    }
    assert all(rows[str(order_id)][0] is not None for order_id in moved)
    # Still held, with its reasons as the current suite sees them: the status is fine now.
    replayed_at, reasons, superseded_at = rows[str(still_wrong)]
    assert replayed_at is None and superseded_at is None
    assert len(reasons) == 1 and "column=currency" in reasons[0]
    # Kept, with what was wrong with it, and released: not moved, not held.
    replayed_at, reasons, superseded_at = rows[str(superseded)]
    assert replayed_at is None and superseded_at is not None
    assert any("column=status" in reason for reason in reasons)

    landed, promoted, held_rows, superseded_rows = audit_sums(settings)
    assert (promoted, held_rows, superseded_rows) == (len(lake), 1, 1)
    assert landed == promoted + held_rows + superseded_rows
    summary = runner.invoke(app, ["summary"])
    assert summary.exit_code == 0, summary.output
    assert re.search(r"raw_ordering\.quarantine_orders +1\n", summary.output), summary.output

    # Again: nothing left that passes, nothing moves, nothing changes.
    again = replay()
    assert "0 row(s) moved." in again and "superseded" not in again
    assert dict(query(settings, "select order_id, status from raw_ordering.orders")) == lake
    assert audit_sums(settings) == (landed, promoted, held_rows, superseded_rows)


def test_replay_of_an_unknown_table_says_which_tables_there_are(regulars_env: Settings):
    result = runner.invoke(app, ["replay", "ordering", "--table", "recipes"])
    assert result.exit_code != 0
    assert "order_items" in result.output


def copy_batch(settings: Settings, load_id: str, rows: int, tag: str) -> None:
    """A landed batch of `rows` messages under `load_id`: copies of landed ones, new ids."""
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        connection.execute(
            "insert into landing_events.messages select * replace "
            "(message_id || ? as message_id, ? as _dlt_load_id) "
            "from landing_events.messages where _dlt_load_id = "
            "(select min(_dlt_load_id) from landing_events.messages) "
            "order by message_id limit ?",
            [f"-{tag}", load_id, rows],
        )


def test_a_collapsed_batch_is_held_until_an_operator_accepts_it(tiny_world: Settings):
    from expectations.promote import promote
    from ingestion.events import events_source
    from ingestion.pipelines import landing_pipeline

    landing_pipeline("events", tiny_world).run(events_source(bucket_url=tiny_world.landing_url))
    # A week of daily batches landed at 03:00 UTC (load ids are the loads' Unix times).
    first = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0) + timedelta(2)
    days = [str((first + timedelta(days=day)).timestamp()) for day in range(9)]
    for day, load_id in enumerate(days[:7]):
        copy_batch(tiny_world, load_id, 200, f"day{day}")
    assert promote("events", tiny_world).report.tables["messages"].batch_failure is None

    copy_batch(tiny_world, days[7], 5, "collapsed")  # the collector lost most of a day
    copy_batch(tiny_world, days[8], 200, "next")
    table = promote("events", tiny_world).report.tables["messages"]

    assert "expect_table_row_count_to_be_between(min_value=20)" in table.batch_failure
    assert table.promoted_rows == 0  # the day after waits behind it, in load order
    lake = "select count(*) from raw_events.messages where message_id like '%-{}'"
    assert query(tiny_world, lake.format("collapsed")) == [(0,)]
    assert query(tiny_world, lake.format("next")) == [(0,)]
    # Run from the command line, the same state is an error, and the summary says what waits.
    ingested = runner.invoke(app, ["ingest", "events"])
    assert ingested.exit_code == 1, ingested.output
    assert "regulars replay events --accept-volume" in ingested.output
    held = runner.invoke(app, ["summary"]).output
    assert f"raw_events.messages  batch {days[7]}: " in held, held

    result = runner.invoke(app, ["replay", "events", "--table", "messages", "--accept-volume"])
    assert result.exit_code == 0, result.output
    assert "messages: 205 landed, 205 promoted, 0 quarantined" in result.output
    assert query(tiny_world, lake.format("collapsed")) == [(5,)]
    assert query(tiny_world, lake.format("next")) == [(200,)]
    ((reason,),) = query(
        tiny_world,
        f"select reason from raw_events.gate_audit where _landing_load_id = '{days[7]}' "
        "and status = 'promoted'",
    )
    assert reason == "volume rule waived by an operator"
    assert (
        "Held batches (rejected whole by the gate): none" in runner.invoke(app, ["summary"]).output
    )
