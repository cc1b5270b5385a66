"""The whole slice through Dagster's API: simulator -> dlt -> GX gate -> dbt -> marts.

Figures are checked against the ordering DB itself, so a bug anywhere along the way (a dropped
batch, a double merge, a wrong revenue rule) changes a number here.

One scenario per lake destination, run once and read by the tests below: the tiny world as its
first materialisation left it, a rerun with nothing new, then three simulated days (two of whose
new orders, and a new dish a third names, are broken in the ordering DB) and another run. The
reruns leave the statistical fits out (`materialize(..., analytics=False)`): nothing here reads
them, and the marts world tests them.

Two parts run on one destination only, each a run's worth of time saved. The rerun with nothing
new runs on the filesystem lake, the one that appends, where a second copy of unchanged rows
could be stored; the DuckDB lake merges on keys, and every source with nothing new in the
advance (the POS export) still goes through its run. The BI tool's reads run on the DuckDB lake:
the serving copy is published from the warehouse's marts, the same whichever lake fed them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG as PARTITION_RANGE_END,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_START_TAG as PARTITION_RANGE_START,
)

from regulars.serving import serving_path
from regulars.settings import Settings
from tests import processes
from tests.conftest import DESTINATIONS, TINY_WORLD, materialize, point_at
from tests.serving_reader import INTERVAL_SECONDS

# The destination each one-destination part of the scenario runs on (module docstring).
RERUN_ON = "filesystem"
BI_READS_ON = "duckdb"

SOURCE_REVENUE_SQL = """
    select coalesce(sum(total_idr), 0), count(*) from orders
    where status = 'completed' and deleted_at is null
"""


def source_figures(settings: Settings, held: tuple[int, ...] = ()) -> tuple[int, int]:
    """Completed orders and revenue in the ordering DB, less the orders the gate holds back."""
    sql = SOURCE_REVENUE_SQL
    if held:
        sql += f" and order_id not in ({', '.join('?' * len(held))})"
    with sqlite3.connect(settings.ordering_db_path) as connection:
        return connection.execute(sql, held).fetchone()


def warehouse_query(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def mart_figures(settings: Settings) -> tuple[int, int]:
    """Revenue and completed orders of the ordering platform's rows (the POS export's are not in
    the ordering DB; test_marts_crm checks them against the simulator's truth)."""
    ((revenue, orders),) = warehouse_query(
        settings,
        "select coalesce(sum(net_revenue), 0)::bigint, count(*) filter (is_completed) "
        "from marts.fct_orders where source_system = 'ordering'",
    )
    return revenue, orders


def table_counts(settings: Settings) -> dict[str, int]:
    rows = warehouse_query(
        settings,
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema in ('raw_ordering', 'raw_order_history', 'marts') order by 1",
    )
    return {
        name: warehouse_query(settings, f"select count(*) from {name}")[0][0] for (name,) in rows
    }


def physical_lake_rows(settings: Settings, table: str) -> int:
    """Rows stored for a lake table, every version counted (the filesystem lake appends)."""
    if settings.destination == "duckdb":
        return warehouse_query(settings, f"select count(*) from {table}")[0][0]
    dataset, name = table.split(".")
    files = f"{settings.lake_bucket_url}/{dataset}/{name}/*.parquet"
    return warehouse_query(settings, f"select count(*) from read_parquet('{files}')")[0][0]


def lake_figures(settings: Settings) -> dict[str, float]:
    ((events, deliveries, calls, ga4_sessions, spend, quarantined),) = warehouse_query(
        settings,
        """
        select
            (select count(*) from raw_events.messages),
            (select count(*) from raw_messaging.delivery_events),
            (select count(*) from raw_telemetry.api_calls),
            (select sum(sessions) from raw_ga4.traffic_daily),
            (select round(sum(spend), 2) from raw_meta_ads.insights),
            (select count(*) from information_schema.tables t
             where t.table_name like 'quarantine_%'
                and t.table_schema like 'raw_%' and t.table_schema not like '%_staging')
        """,
    )
    return {
        "events": events,
        "deliveries": deliveries,
        "calls": calls,
        "ga4_sessions": ga4_sessions,
        "spend": float(spend),
        "quarantine_tables": quarantined,
    }


def truth_figures(settings: Settings) -> dict[str, float]:
    truth = json.loads((settings.data_dir / "truth.json").read_text())
    webhooks = truth["messaging"]["webhooks"]
    return {
        "events": truth["events"]["distinct_message_ids"],
        "deliveries": webhooks["deliveries"] - webhooks["duplicate_deliveries"],
        "calls": truth["telemetry"]["calls"],
        "ga4_sessions": truth["ga4"]["sessions"],
        "spend": round(truth["ads"]["spend"], 2),
        "quarantine_tables": 0,  # a clean simulated world quarantines nothing
    }


@dataclass(frozen=True)
class Figures:
    """What the warehouse and the sources say at one point of the scenario."""

    run_succeeded: bool
    marts: tuple[int, int]
    source: tuple[int, int]
    customers: int
    source_customers: int
    history: tuple[int, int]
    pos_export: tuple[int, int]
    tables: dict[str, int]
    stored_orders: int
    orders: int
    duplicate_orders: int
    lake: dict[str, float]
    truth: dict[str, float]


def figures(settings: Settings, run_succeeded: bool = True, held: tuple[int, ...] = ()) -> Figures:
    with sqlite3.connect(settings.ordering_db_path) as connection:
        (source_customers,) = connection.execute(
            "select count(*) from customers where deleted_at is null"
        ).fetchone()
    pos_export = json.loads((settings.data_dir / "truth.json").read_text())["pos_export"]
    ((history_rows, history_revenue),) = warehouse_query(
        settings, "select count(*), sum(amount)::bigint from staging.stg_order_history__orders"
    )
    return Figures(
        run_succeeded=run_succeeded,
        marts=mart_figures(settings),
        source=source_figures(settings, held),
        customers=warehouse_query(
            settings,
            "select count(*) from marts.dim_customers where source_system = 'ordering'",
        )[0][0],
        source_customers=source_customers,
        history=(history_rows, history_revenue),
        pos_export=(pos_export["rows"], pos_export["revenue"]),
        tables=table_counts(settings),
        stored_orders=physical_lake_rows(settings, "raw_ordering.orders"),
        orders=warehouse_query(settings, "select count(*) from marts.fct_orders")[0][0],
        duplicate_orders=warehouse_query(
            settings, "select count(*) - count(distinct order_id) from raw_ordering.orders"
        )[0][0],
        lake=lake_figures(settings),
        # The held orders and the held dish (break_new_rows).
        truth=truth_figures(settings) | {"quarantine_tables": 2 if held else 0},
    )


@dataclass(frozen=True)
class HeldOrders:
    """Two new orders and a new dish broken at the source, and what the gate made of them."""

    bad_status_id: int
    negative_id: int
    quarantined: dict[str, str]  # primary key -> failed expectations
    lake_ids: set[int]
    source_ids: set[int]
    audit: tuple[int, int, int]  # landed, promoted, quarantined over every batch of orders
    dish_quarantined: dict[str, str]  # the held dish's key -> failed expectations
    # The line naming the held dish, as fct_order_items has it: (order_id, menu_item_name,
    # category, line_total), or None if the line did not reach the mart.
    line_of_held_dish: tuple | None


# A dish the platform lists at no price: the gate holds it (prices are 1 to 5 M IDR), while the
# order line that names it is good and must reach the marts without its dish's name.
HELD_DISH_ID = 999


def break_new_rows(settings: Settings, landed_before: int) -> tuple[int, int]:
    """An unknown status on one new order, a negative discount (total kept right) on another, and
    a third new order's first line re-pointed at a new dish listed at no price."""
    with sqlite3.connect(settings.ordering_db_path) as connection:
        bad_status_id, negative_id, with_held_dish = (
            order_id
            for (order_id,) in connection.execute(
                "select order_id from orders where order_id > ? order by order_id limit 3",
                (landed_before,),
            )
        )
        connection.execute(
            "update orders set status = 'teleported' where order_id = ?", (bad_status_id,)
        )
        connection.execute(
            "update orders set discount_idr = -5000, total_idr = total_idr + 5000 "
            "where order_id = ?",
            (negative_id,),
        )
        connection.execute(
            "insert into menu_items (menu_item_id, sku, name, category, price_idr, is_available, "
            "created_at, updated_at) select ?, 'TST-999', 'Es Teh Gratis', 'drinks', 0, 1, "
            "created_at, created_at from orders where order_id = ?",
            (HELD_DISH_ID, with_held_dish),
        )
        connection.execute(
            "update order_items set menu_item_id = ? where order_item_id = "
            "(select min(order_item_id) from order_items where order_id = ?)",
            (HELD_DISH_ID, with_held_dish),
        )
    return bad_status_id, negative_id


def held_orders(settings: Settings, bad_status_id: int, negative_id: int) -> HeldOrders:
    with sqlite3.connect(settings.ordering_db_path) as connection:
        source_ids = {order_id for (order_id,) in connection.execute("select order_id from orders")}
    ((landed, promoted, held),) = warehouse_query(
        settings,
        "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows) "
        "from raw_ordering.gate_audit where table_name = 'orders'",
    )
    return HeldOrders(
        bad_status_id=bad_status_id,
        negative_id=negative_id,
        quarantined=dict(
            warehouse_query(
                settings,
                "select primary_key_value, failed_expectations from raw_ordering.quarantine_orders",
            )
        ),
        lake_ids={
            order_id
            for (order_id,) in warehouse_query(settings, "select order_id from raw_ordering.orders")
        },
        source_ids=source_ids,
        audit=(landed, promoted, held),
        dish_quarantined=dict(
            warehouse_query(
                settings,
                "select primary_key_value, failed_expectations "
                "from raw_ordering.quarantine_menu_items",
            )
        ),
        line_of_held_dish=next(
            iter(
                warehouse_query(
                    settings,
                    "select order_id, menu_item_name, category, line_total::bigint "
                    f"from marts.fct_order_items where menu_item_id = {HELD_DISH_ID}",
                )
            ),
            None,
        ),
    )


@dataclass(frozen=True)
class ServingReads:
    """What a BI tool polling the serving copy saw during the run after the advance."""

    before: str  # the run id the copy named when the reader started
    after: str  # the run that changed the marts
    reads: dict[str, list[dict]]  # per reader (fresh, held), one per poll
    # Published table -> (rows in the copy, rows of the warehouse's relation) after the run.
    tables: dict[str, tuple[int, int]]


@contextmanager
def bi_reader(settings: Settings, folder: Path) -> Iterator[dict[str, list[dict]]]:
    """Two tests/serving_reader.py processes polling the serving copy while the block runs: one
    reconnecting for every read, one holding the connection it opened first."""
    serving, stop = serving_path(settings.warehouse_path), folder / "serving_reads.stop"
    outs = {mode: folder / f"serving_reads_{mode}.jsonl" for mode in ("fresh", "held")}
    reads: dict[str, list[dict]] = {}
    readers = [
        processes.start(
            [sys.executable, "-m", "tests.serving_reader", str(serving), str(out), str(stop), mode],
            cwd=Path(__file__).resolve().parent.parent,
        )
        for mode, out in outs.items()
    ]
    try:
        deadline = time.monotonic() + 30
        while not all(out.exists() and out.read_text() for out in outs.values()):
            assert time.monotonic() < deadline, "the readers did not start reading"
            time.sleep(0.1)
        yield reads
        # The copy is published at the run's very end: a few more polls see it.
        time.sleep(10 * INTERVAL_SECONDS)
    finally:
        stop.touch()
        for reader in readers:
            try:
                reader.wait(timeout=10)  # it finishes its read and closes its connection
            finally:
                processes.stop(reader)
        for mode, out in outs.items():
            reads[mode] = [json.loads(line) for line in out.read_text().splitlines()]


def serving_tables(settings: Settings) -> dict[str, tuple[int, int]]:
    path = serving_path(settings.warehouse_path)
    with duckdb.connect(str(path), read_only=True) as serving:
        published = serving.execute(
            "select table_schema || '.' || table_name, row_count from published_tables"
        ).fetchall()
    return {
        name: (rows, warehouse_query(settings, f"select count(*) from {name}")[0][0])
        for name, rows in published
    }


def published_run(settings: Settings) -> str:
    path = serving_path(settings.warehouse_path)
    with duckdb.connect(str(path), read_only=True) as serving:
        return serving.execute("select run_id from published").fetchone()[0]


def incremental_difference(settings: Settings, folder: Path) -> dict[str, tuple[int, int]]:
    """Per incremental table, (rows only in the warehouse, rows only in a full refresh): the
    same tables rebuilt from scratch by dbt on a copy of the warehouse, with the run's vars."""
    from orchestration.dbt import chain_vars
    from regulars.cli.demo import demo_chain
    from regulars.settings import load_settings
    from tests.conftest import run_dbt

    copy = folder / settings.warehouse_path.name  # DuckDB names the catalog after the file
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(settings.warehouse_path, copy)
    with demo_chain(settings):
        run_vars = chain_vars(load_settings())
    # The sessions incremental by device, the messages incremental by load, and what stands
    # between them and the facts.
    selection = (
        "--select",
        "stg_events__messages",
        "int_messages_grouped",
        "int_identities_stitched",
        "int_sessions_split",
        "int_sessions_sessionised",
        "tag:day_partitioned",
    )
    run_dbt(copy, folder / "target", "run", "--full-refresh", *selection, *run_vars)
    differences = {}
    with duckdb.connect(str(copy), read_only=True) as full:
        full.execute(f"attach '{settings.warehouse_path}' as built (read_only)")
        catalog = copy.stem
        for table in (
            "staging.stg_events__messages",
            "intermediate.int_messages_grouped",
            "intermediate.int_identities_stitched",
            "intermediate.int_sessions_split",
            "marts.fct_sessions",
            "marts.service_levels",
        ):
            only = [
                full.execute(
                    f"select count(*) from (select * from {a}.{table} "
                    f"except all select * from {b}.{table})"
                ).fetchone()[0]
                for a, b in (("built", catalog), (catalog, "built"))
            ]
            differences[table.split(".")[1]] = (only[0], only[1])
    return differences


@dataclass(frozen=True)
class Scenario:
    destination: str
    first: Figures  # as the first materialisation left the world
    rerun: Figures | None  # after a second run with nothing new (filesystem lake only)
    advanced: Figures  # after three simulated days (late events, retries, edits) and a run
    held: HeldOrders  # the two new orders broken before that run
    serving: ServingReads | None  # a BI tool's reads during that run (DuckDB lake only)
    advanced_days: tuple[str, str]  # the first and last day the run after the advance rebuilt
    # Incremental table -> (rows only as the increment left it, only in a full refresh).
    increment_vs_full_refresh: dict[str, tuple[int, int]]


@pytest.fixture(scope="session")
def scenarios(saved_worlds) -> Callable[[str], Scenario]:
    """Each destination's scenario, played once per run on first request."""
    played: dict[str, Scenario] = {}

    def play(destination: str) -> Scenario:
        from simulator import advance_world

        world = saved_worlds(destination)
        world.restore()
        with pytest.MonkeyPatch.context() as monkeypatch:
            settings = point_at(monkeypatch, world.live, world.destination)
            first = figures(settings)
            rerun = None
            if destination == RERUN_ON:
                rerun = figures(
                    settings, materialize(settings, analytics=False, keep_history=True).success
                )
            ((landed_before,),) = warehouse_query(
                settings, "select max(order_id) from raw_ordering.orders"
            )
            advance_world(settings.data_dir, days=3)
            broken = break_new_rows(settings, landed_before)
            before = published_run(settings)
            reading = bi_reader(settings, world.live.parent) if destination == BI_READS_ON else None
            with reading or nullcontext() as reads:
                run = materialize(settings, analytics=False, keep_history=True)
            advanced = figures(settings, run.success, held=broken)
            held = held_orders(settings, *broken)
            serving = None
            if reads is not None:
                serving = ServingReads(before, run.run_id, reads, serving_tables(settings))
            tags = run.result.dagster_run.tags
            advanced_days = (tags[PARTITION_RANGE_START], tags[PARTITION_RANGE_END])
            difference = incremental_difference(settings, world.live.parent / "full_refresh")
        return Scenario(
            destination,
            first,
            rerun,
            advanced,
            held,
            serving,
            advanced_days,
            difference,
        )

    def get(destination: str) -> Scenario:
        if destination not in played:
            played[destination] = play(destination)
        return played[destination]

    return get


@pytest.fixture(params=DESTINATIONS)
def scenario(request: pytest.FixtureRequest, scenarios) -> Scenario:
    return scenarios(request.param)


def test_marts_match_the_ordering_db(scenario: Scenario):
    first = scenario.first
    assert first.source[1] > 100, "the tiny world should have enough orders to mean something"
    assert first.marts == first.source
    assert first.customers == first.source_customers
    assert first.history == first.pos_export


@pytest.mark.parametrize("scenario", [RERUN_ON], indirect=True)
def test_a_rerun_with_nothing_new_changes_nothing(scenario: Scenario):
    assert scenario.rerun.run_succeeded
    assert scenario.rerun.tables == scenario.first.tables
    # The filesystem lake appends: a rerun must not store a second copy of what it had.
    assert scenario.rerun.stored_orders == scenario.first.stored_orders


def test_advanced_days_flow_through_and_merge(scenario: Scenario):
    advanced = scenario.advanced
    assert advanced.run_succeeded
    assert advanced.marts == advanced.source
    assert advanced.orders > scenario.first.orders
    assert advanced.duplicate_orders == 0


def test_every_channel_lands_once_what_the_simulator_wrote(scenario: Scenario):
    first, advanced = scenario.first, scenario.advanced
    assert first.lake == first.truth
    assert first.lake["events"] > 1_000 and first.lake["deliveries"] > 100
    assert advanced.lake == advanced.truth
    assert advanced.lake["events"] > first.lake["events"]
    assert advanced.lake["calls"] > first.lake["calls"]


def test_bad_rows_are_quarantined_with_their_reason_and_nothing_is_lost(scenario: Scenario):
    """The two broken orders wait in quarantine with their reasons, the rest flows on."""
    held = scenario.held
    bad_status, negative = str(held.bad_status_id), str(held.negative_id)
    assert scenario.advanced.run_succeeded
    assert set(held.quarantined) == {bad_status, negative}
    assert "expect_column_values_to_be_in_set(column=status" in held.quarantined[bad_status]
    assert "column=discount_idr" in held.quarantined[negative]
    assert held.bad_status_id not in held.lake_ids and held.negative_id not in held.lake_ids

    landed, promoted, quarantined = held.audit
    assert quarantined == 2
    assert promoted + quarantined == landed
    # Nothing lost: every order of the source is in the lake or in quarantine.
    assert held.lake_ids | {held.bad_status_id, held.negative_id} == held.source_ids


def test_a_line_whose_dish_is_held_reaches_the_marts_without_its_name(scenario: Scenario):
    """A dish the gate holds does not hold back the orders that name it: the run succeeds (the
    relationships tests warn), and the line is in fct_order_items with its amount, no name."""
    held = scenario.held
    assert scenario.advanced.run_succeeded
    assert list(held.dish_quarantined) == [str(HELD_DISH_ID)]
    assert (
        "expect_column_values_to_be_between(column=price_idr"
        in held.dish_quarantined[str(HELD_DISH_ID)]
    )
    assert held.line_of_held_dish is not None, "the line naming the held dish was dropped"
    order_id, name, category, line_total = held.line_of_held_dish
    assert order_id in held.lake_ids and (name, category) == (None, None) and line_total > 0


@pytest.mark.parametrize("scenario", [BI_READS_ON], indirect=True)
def test_bi_reads_the_serving_copy_while_the_marts_change(scenario: Scenario):
    """Dashboards polling every 0.2 s during a run never fail and never see two runs mixed."""
    reads = scenario.serving.reads
    for mode in ("fresh", "held"):
        assert len(reads[mode]) >= 20, f"{mode}: only {len(reads[mode])} reads during the run"
        failed = [read["error"] for read in reads[mode] if "error" in read]
        assert not failed, f"{mode}: {len(failed)} of {len(reads[mode])} reads failed: {failed[:1]}"
        for read in reads[mode]:
            assert read["read"]["mismatched"] == [], (mode, read)
            assert read["read"]["tables"] == len(scenario.serving.tables)
    fresh_runs = [read["read"]["run_id"] for read in reads["fresh"]]
    # The previous run's copy until the swap, the new run's after it, and nothing else.
    switched = fresh_runs.index(scenario.serving.after)
    assert set(fresh_runs[:switched]) == {scenario.serving.before}
    assert set(fresh_runs[switched:]) == {scenario.serving.after}
    # A connection opened before the swap keeps reading the file it opened.
    assert {read["read"]["run_id"] for read in reads["held"]} == {scenario.serving.before}
    # After the run the copy holds exactly what the warehouse's marts hold.
    assert "marts.fct_orders" in scenario.serving.tables
    assert {name: copy for name, (copy, _) in scenario.serving.tables.items()} == {
        name: warehouse for name, (_, warehouse) in scenario.serving.tables.items()
    }


def test_a_run_after_three_new_days_rebuilds_those_days_and_leaves_what_a_full_refresh_would(
    scenario: Scenario,
):
    """`regulars materialize` after `simulate advance --days 3`, on the instance that built the
    world: the day-partitioned facts are rebuilt from the last day built, not over every day, and
    they, the sessions (incremental by device) and the event messages and their identity groups
    (incremental by load) with the stitching that reads them end as a full refresh leaves them
    (late events, re-owned sessions on older days included)."""
    last_built = TINY_WORLD["start_date"] + timedelta(days=TINY_WORLD["days"] - 1)
    # The last day built (it was built while it filled), then the three new days.
    assert scenario.advanced_days == (
        last_built.isoformat(),
        (last_built + timedelta(days=3)).isoformat(),
    )
    assert scenario.increment_vs_full_refresh == {
        "stg_events__messages": (0, 0),
        "int_messages_grouped": (0, 0),
        "int_identities_stitched": (0, 0),
        "int_sessions_split": (0, 0),
        "fct_sessions": (0, 0),
        "service_levels": (0, 0),
    }
